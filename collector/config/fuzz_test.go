package config

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseAddress: ParseAddress never panics, and what it accepts is
// http or https, with a host, a numeric port from 1 to 65535, no user
// information, path, query or fragment, in its normal form: parsing its
// String() again gives the same.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"192.0.2.10", "192.0.2.10:8080", "HTTP://Panel.Example.COM/", "https://10.0.0.1", "https://10.0.0.1:443",
		"::1", "[::1]:8443", "https://[fe80::1%25eth0]:8443", "http://admin:pw@h", "http://h/?password=x", "http://h#f",
		"http://h:", "h:0", "h:65536", "ftp://h", "http://", "http://h/api", "//h", "h:+80", "http://[::1", "http://h%41",
		" h ", "a b", "http://ÄÖ.example", "http:h", "http:/h", "HtTpS://H:0443",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseAddress(s)
		if err != nil {
			if u != nil {
				t.Fatalf("%q: URL %v with error %v", s, u, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("%q: scheme %q", s, u.Scheme)
		}
		if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Path != "" || u.Opaque != "" || u.RawPath != "" {
			t.Fatalf("%q: %#v has more than scheme://host:port", s, u)
		}
		if u.Hostname() == "" || u.Hostname() != strings.ToLower(u.Hostname()) {
			t.Fatalf("%q: host %q", s, u.Hostname())
		}
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != u.Port() {
			t.Fatalf("%q: port %q", s, u.Port())
		}
		str := u.String()
		if strings.ContainsAny(str, "@?# \t\r\n") {
			t.Fatalf("%q: normal form %q", s, str)
		}
		again, err := ParseAddress(str)
		if err != nil {
			t.Fatalf("%q: its normal form %q does not parse: %v", s, str, err)
		}
		if again.String() != str {
			t.Fatalf("%q: normal form %q parses to %q", s, str, again)
		}
	})
}

// safeFileName is what a *_file value of a fuzzed configuration may be: a
// plain name in the fuzz's empty directory. Absolute paths and ".." could
// reach /dev/zero, a FIFO or a huge file, which says nothing of Parse.
var safeFileName = regexp.MustCompile(`^[A-Za-z0-9_.-]{0,32}$`)

// FuzzParse: the configuration loader never panics; its errors never quote
// a password of the configuration; an accepted configuration marshals
// without its passwords.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../config.example.yaml"); err == nil {
		f.Add(b)
	}
	head := "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n"
	for _, s := range []string{
		head + "devices:\n  - name: a\n    address: 192.0.2.10\n    labels: {site: hq}\n",
		head + "devices:\n  - name: a\n    address: http://admin:" + secretPw + "@h\n",
		head + "devices:\n  - name: a\n    address: h\n  - name: a\n    address: g\n",
		head + "global:\n  timeout: soon\n  concurrency: -1\n  api_version: v9\n  collect: [settings, nope]\n",
		"credentials:\n  default: " + secretPw + "\n",
		"credentials:\n  default:\n    username: admin\n    password: [" + secretPw + "]\n",
		"credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n    password_file: pw\n",
		"credentials:\n  default:\n    username: admin\n    password_file: pw\n",
		"credentials: {default: {username: a, password: &p " + secretPw + "}, b: {username: *p, password: *p}}\n",
		head + "policies:\n  p:\n    transports: [tls]\n    registration_interval: {min: 30, max: 10}\n    proxy: '(['\ndevices:\n  - name: a\n    address: h\n    policy: p\n",
		head + "devices:\n  - name: a\n    address: h\n    tls_config: {ca_file: ca.pem, insecure_skip_verify: true}\n",
		"x0: &x0 [a,a,a]\nx1: &x1 [*x0,*x0,*x0]\ndevices: *x1\n",
		"devices: [[[[[[[[[[]]]]]]]]]]\n", "{", "", "null", "- a\n- b\n", "devices:\n  -\n",
	} {
		f.Add([]byte(s))
	}
	dir, err := os.MkdirTemp("", "c")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	f.Fuzz(func(t *testing.T, data []byte) {
		// Alias fan-out makes single inputs take seconds, long enough for
		// the fuzzer to call its worker hung; TestYAMLBombs covers them.
		if len(data) > 64<<10 || bytes.Count(data, []byte("*")) > 32 {
			t.Skip("alias-heavy or large input")
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil && !filesAreSafe(&root) {
			t.Skip("names a file outside the fuzz's directory")
		}
		cfg, err := Parse(data, "c.yaml", dir)
		passwords := passwordsIn(&root, data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config with error %v", err)
			}
			for _, p := range passwords {
				if strings.Contains(err.Error(), p) {
					t.Fatalf("error quotes password %q: %v", p, err)
				}
			}
			return
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("cannot marshal an accepted config: %v", err)
		}
		for _, p := range passwords {
			if strings.Contains(string(out), p) {
				t.Fatalf("marshalled config shows password %q:\n%s", p, out)
			}
		}
	})
}

// filesAreSafe reports whether every *_file value of the document is a
// plain name.
func filesAreSafe(n *yaml.Node) bool {
	if n == nil {
		return true
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if strings.HasSuffix(k.Value, "_file") || k.Value == "<<" {
				if v.Kind != yaml.ScalarNode || v.Tag == "!!binary" || !safeFileName.MatchString(v.Value) || strings.Contains(v.Value, "..") {
					if k.Value != "<<" {
						return false
					}
				}
			}
		}
	}
	for _, c := range n.Content {
		if !filesAreSafe(c) {
			return false
		}
	}
	return true
}

// passwordsIn returns the password values of the document that could not
// appear in a message for another reason: at least 8 characters with a
// letter and a digit, nowhere else in the input, not anchored for use
// elsewhere.
func passwordsIn(n *yaml.Node, data []byte) []string {
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := v.Value
				if k.Value == "password" && v.Kind == yaml.ScalarNode && v.Anchor == "" && len(p) >= 8 &&
					strings.ContainsAny(p, "0123456789") && strings.IndexFunc(p, isLetter) >= 0 &&
					strings.Count(string(data), p) == 1 {
					out = append(out, p)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return out
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
