package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mistakesHead is a valid start of a configuration: four lines of
// credentials, so the first line after it is line 5.
const mistakesHead = "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n"

// TestConfigMistakes: each mistake operators make is refused with the
// message they see, FILE:LINE: entry: field NAME: what is wrong, naming the
// line of the mistake itself. {dir} in a message is the configuration's
// directory.
func TestConfigMistakes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(secretPw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoDevices := mistakesHead + "devices:\n  - name: lobby-1\n    address: 192.0.2.10\n"
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"wrong indentation, reported where it is",
			twoDevices + "  - name: lobby-2\n    address: 192.0.2.11\n   labels:\n      site: hq\n  - name: lobby-3\n    address: 192.0.2.12\n",
			`c.yaml:10: device "lobby-2": did not find expected '-' indicator: check this line's indentation against the lines above it`},
		{"a key indented too far",
			twoDevices + "  - name: lobby-2\n    address: 192.0.2.11\n     labels:\n",
			`c.yaml:10: device "lobby-2": mapping values are not allowed in this context: check this line's indentation against the lines above it`},
		{"tab indentation",
			mistakesHead + "devices:\n\t- name: lobby-1\n",
			`c.yaml:6: found character that cannot start any token: this line is indented with a tab; YAML indents with spaces only`},
		{"a tab inside a device",
			twoDevices + "\t  labels: {site: hq}\n",
			`c.yaml:8: device "lobby-1": found a tab character that violates indentation: this line is indented with a tab; YAML indents with spaces only`},
		{"a duration without its unit",
			mistakesHead + "global:\n  timeout: 10\n",
			`c.yaml:6: global: field timeout: cannot unmarshal !!int into time.Duration: write a duration with its unit, such as 10s, 1m or 1h`},
		{"a duration in words",
			mistakesHead + "global: {info_ttl: an hour}\n",
			`c.yaml:5: global: field info_ttl: cannot unmarshal !!str into time.Duration: write a duration with its unit, such as 10s, 1m or 1h`},
		{"a typo'd key at top level",
			mistakesHead + "device:\n  - name: lobby-1\n",
			`c.yaml:5: field device: unknown key; did you mean devices?`},
		{"a typo'd key in a device",
			twoDevices + "    adress: 192.0.2.10\n",
			`c.yaml:8: device "lobby-1": field adress: unknown key; did you mean address?`},
		{"a typo'd key in tls_config",
			twoDevices + "    tls_config:\n      insecure_skip_verfy: true\n",
			`c.yaml:9: device "lobby-1": field tls_config.insecure_skip_verfy: unknown key; did you mean insecure_skip_verify?`},
		{"a typo'd key in global",
			mistakesHead + "global:\n  consurrency: 10\n",
			`c.yaml:6: global: field consurrency: unknown key; did you mean concurrency?`},
		{"a key that is nothing like the known ones",
			twoDevices + "    location: hall\n",
			`c.yaml:8: device "lobby-1": field location: unknown key`},
		{"a password where a mapping belongs",
			"credentials:\n  default: " + secretPw + "\n",
			`c.yaml:2: credentials "default": cannot unmarshal !!str into config.Credential`},
		{"a missing password file",
			"credentials:\n  default:\n    username: admin\n    password_file: nope\n",
			`c.yaml:4: credentials "default": field password_file: cannot read password file: open {dir}/nope: no such file or directory`},
		{"a duplicate device name",
			twoDevices + "  - name: lobby-1\n    address: 192.0.2.11\n",
			`c.yaml:8: device "lobby-1": field name: duplicate device name (first defined at c.yaml:6)`},
		{"two devices at one address",
			twoDevices + "  - name: lobby-2\n    address: http://192.0.2.10:80/\n",
			`c.yaml:9: device "lobby-2": field address: http://192.0.2.10:80 is also the address of device "lobby-1" (c.yaml:7)`},
		{"an invalid IPv4 address",
			mistakesHead + "devices:\n  - name: lobby-1\n    address: 192.0.2.300\n",
			`c.yaml:7: device "lobby-1": field address: "192.0.2.300" is not a valid IPv4 address`},
		{"an address with a path",
			mistakesHead + "devices:\n  - name: lobby-1\n    address: http://x/path\n",
			`c.yaml:7: device "lobby-1": field address: address must not contain a path: the API path is derived from api_version`},
		{"an unknown api_version",
			twoDevices + "    api_version: v2\n",
			`c.yaml:8: device "lobby-1": field api_version: "v2" is not one of v0, v1, auto`},
		{"an unknown credentials name",
			twoDevices + "    credentials: monitor\n",
			`c.yaml:8: device "lobby-1": field credentials: no credentials named "monitor"`},
		{"an unknown policy",
			twoDevices + "    policy: lobby\n",
			`c.yaml:8: device "lobby-1": field policy: no policy named "lobby"`},
		{"a bad regular expression in a policy",
			mistakesHead + "policies:\n  default:\n    proxy: '^sip:(pbx'\n",
			`c.yaml:7: policy "default": field proxy: bad regular expression: missing closing )`},
		{"an undocumented call timeout",
			mistakesHead + "policies:\n  default:\n    call_timeouts: [120, 121]\n",
			`c.yaml:7: policy "default": field call_timeouts: 121 is not a documented call timeout (120, 300, 600, 1200, 1800)`},
		{"a reserved label name",
			twoDevices + "    labels:\n      instance: hall\n",
			`c.yaml:9: device "lobby-1": field labels: label "instance" is set by the exporter and cannot be configured`},
		{"a negative duration",
			mistakesHead + "global:\n  timeout: -5s\n",
			`c.yaml:6: global: field timeout: must be positive`},
		{"a timeout of 0s",
			mistakesHead + "global:\n  timeout: 0s\n",
			`c.yaml:6: global: field timeout: must be positive`},
		{"an info_ttl of 0s",
			mistakesHead + "global:\n  info_ttl: 0s\n",
			`c.yaml:6: global: field info_ttl: must be positive`},
		{"a concurrency of 0",
			mistakesHead + "global:\n  concurrency: 0\n",
			`c.yaml:6: global: field concurrency: must be positive`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "c.yaml", dir)
			if err == nil {
				t.Fatal("accepted")
			}
			want := strings.ReplaceAll(c.want, "{dir}", dir)
			if err.Error() != want {
				t.Errorf("message\n got: %s\nwant: %s", err, want)
			}
			if strings.Contains(err.Error(), secretPw) {
				t.Errorf("the message shows the password")
			}
		})
	}
}

// TestConfigWarnings: what loads but is probably a mistake is a warning,
// not an error; a good configuration has none.
func TestConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	device := "devices:\n  - name: lobby-1\n    address: 192.0.2.10\n"
	cases := map[string]struct {
		yaml string
		want []string
	}{
		"none":          {mistakesHead + device, nil},
		"an empty file": {"", []string{"c.yaml: no devices configured: the exporter would serve none"}},
		"an empty device list": {mistakesHead + "devices: []\n",
			[]string{"c.yaml:5: no devices configured: the exporter would serve none"}},
		"left-out settings take their defaults silently": {mistakesHead + "global:\n  timeout:\n" + device, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := warningsOf(t, c.yaml, dir)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("warnings\n got: %q\nwant: %q", got, c.want)
			}
		})
	}
}

// TestManyMistakesLoadFast: a document with thousands of mistakes, or a
// large one with a syntax error at its end, is refused quickly, and the
// message stays short.
func TestManyMistakesLoadFast(t *testing.T) {
	var typos, types, syntax strings.Builder
	typos.WriteString(mistakesHead + "devices:\n")
	types.WriteString(mistakesHead + "devices:\n")
	syntax.WriteString(mistakesHead + "devices:\n")
	for i := range 5000 {
		fmt.Fprintf(&typos, "  - name: d%d\n    adress: 10.0.%d.%d\n", i, i>>8, i&255)
		fmt.Fprintf(&types, "  - name: d%d\n    address: 10.0.%d.%d\n    labels: [x]\n", i, i>>8, i&255)
		fmt.Fprintf(&syntax, "  - name: d%d\n    address: 10.0.%d.%d\n", i, i>>8, i&255)
	}
	syntax.WriteString("   labels: {site: x}\n")
	for name, y := range map[string]string{"unknown keys": typos.String(), "type errors": types.String(), "a syntax error at the end": syntax.String()} {
		t.Run(name, func(t *testing.T) {
			_, err := parseBounded(t, []byte(y), t.TempDir(), 30*time.Second, 512<<20)
			if err == nil {
				t.Fatal("accepted")
			}
			// The decoding's lines, then the validation's of what decoded.
			if n := strings.Count(err.Error(), "\n"); n > maxDecodeErrors+maxProblems {
				t.Errorf("%d lines of errors", n+1)
			}
			if !strings.HasPrefix(err.Error(), "c.yaml:") {
				t.Errorf("error %q", err)
			}
			if name == "a syntax error at the end" && !strings.HasPrefix(err.Error(), "c.yaml:10006: ") {
				t.Errorf("error %q is not at the wrongly indented last line", err)
			}
		})
	}
}

// TestEveryProblemIsReported: one load names every mistake, one a line, in
// the order of the file; a password file that cannot be read (the systemd
// layout's path, run by hand) does not hide the others.
func TestEveryProblemIsReported(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "more.yaml"), []byte("- name: lobby-9\n  address: 192.0.2.999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := "credentials:\n" +
		"  default:\n" +
		"    username: admin\n" +
		"    password_file: /etc/basip_exporter/nope\n" +
		"  flats:\n" +
		"    username: admin\n" +
		"    password: " + secretPw + "\n" +
		"    auth: ntlm\n" +
		"policies:\n" +
		"  default:\n" +
		"    transports: [carrier-pigeon]\n" +
		"device_files: [more.yaml]\n" +
		"devices:\n" +
		"  - name: lobby-1\n" +
		"    address: 192.0.2.300\n" +
		"  - name: lobby-2\n" +
		"    address: 192.0.2.11\n" +
		"    credentials: monitors\n" +
		"  - name: lobby-3\n" +
		"    address: 192.0.2.12\n"
	_, err := Parse([]byte(y), "c.yaml", dir)
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`c.yaml:11: policy "default": field transports: "carrier-pigeon" is not one of udp, tcp, tls`,
		`c.yaml:4: credentials "default": field password_file: cannot read password file: open /etc/basip_exporter/nope: no such file or directory`,
		`c.yaml:8: credentials "flats": field auth: "ntlm" is not one of token, basic, digest`,
		`c.yaml:15: device "lobby-1": field address: "192.0.2.300" is not a valid IPv4 address`,
		`c.yaml:18: device "lobby-2": field credentials: no credentials named "monitors"`,
		filepath.Join(dir, "more.yaml") + `:2: device "lobby-9": field address: "192.0.2.999" is not a valid IPv4 address`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("message\n got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), secretPw) {
		t.Error("the message shows the password")
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 11 {
		t.Errorf("errors.As gives %+v, want the first error as an *Error", e)
	}
}

// TestProblemsAreBounded: thousands of wrong devices give a bounded
// message that says how many more there are.
func TestProblemsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(mistakesHead + "devices:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - name: d%d\n    address: 10.0.0.%d\n", i, 300+i)
	}
	_, err := Parse([]byte(b.String()), "c.yaml", t.TempDir())
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 || lines[len(lines)-1] != "c.yaml: and 950 more errors" {
		t.Errorf("%d lines, the last %q", len(lines), lines[len(lines)-1])
	}
}

// TestEveryProblemAcrossFiles: one load names every problem of every file,
// whatever their kinds: unknown keys and values of the wrong type (in the
// configuration and in a device file) do not hide a duplicate address in
// another device file, a reference to credentials that do not exist, wrong
// values, or a second problem of the same entry.
func TestEveryProblemAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("c.yaml", "credentials:\n"+ // 1
		"  default:\n"+
		"    username: admin\n"+
		"    password: "+secretPw+"\n"+
		"  flats:\n"+ // 5
		"    password: "+secretPw+"\n"+
		"    auth: ntlm\n"+
		"policies:\n"+
		"  default:\n"+
		"    transports: [carrier-pigeon]\n"+ // 10
		"    stun: sometimes\n"+
		"global:\n"+
		"  timeout: abc\n"+
		"  colect: [settings]\n"+
		"device_files: [devices/*.yaml]\n"+ // 15
		"devices:\n"+
		"  - name: a\n"+
		"    address: 192.0.2.1\n"+
		"    labls: {x: y}\n")
	write("devices/one.yaml", "- name: b\n  adress: 192.0.2.2\n- name: c\n  address: 192.0.2.1\n  collect: [nope]\n  api_version: v9\n")
	write("devices/two.yaml", "- name: d\n  address: 192.0.2.1\n  credentials: nobody\n")
	_, err := Load(filepath.Join(dir, "c.yaml"))
	if err == nil {
		t.Fatal("accepted")
	}
	c, one, two := filepath.Join(dir, "c.yaml"), filepath.Join(dir, "devices", "one.yaml"), filepath.Join(dir, "devices", "two.yaml")
	want := []string{
		c + `:13: global: field timeout: cannot unmarshal !!str into time.Duration: write a duration with its unit, such as 10s, 1m or 1h`,
		c + `:14: global: field colect: unknown key; did you mean collect?`,
		c + `:19: device "a": field labls: unknown key; did you mean labels?`,
		c + `:10: policy "default": field transports: "carrier-pigeon" is not one of udp, tcp, tls`,
		c + `:11: policy "default": field stun: "sometimes" is not required or forbidden`,
		c + `:6: credentials "flats": field username: missing`,
		c + `:7: credentials "flats": field auth: "ntlm" is not one of token, basic, digest`,
		one + `:2: device "b": field adress: unknown key; did you mean address?`,
		one + `:1: device "b": field address: empty address`,
		one + `:6: device "c": field api_version: "v9" is not one of v0, v1, auto`,
		one + `:5: device "c": field collect: "nope" is not one of settings, status, info`,
		one + `:4: device "c": field address: http://192.0.2.1:80 is also the address of device "a" (` + c + `:18)`,
		two + `:3: device "d": field credentials: no credentials named "nobody"`,
		two + `:2: device "d": field address: http://192.0.2.1:80 is also the address of device "a" (` + c + `:18)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("message\n got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), secretPw) {
		t.Error("the message shows the password")
	}
}

// TestUnknownKeyDoesNotHideDuplicateInAnotherFile: the audit's case, an
// unknown key in one device file and, in another, a device at the address
// of one of the first file's devices; both are reported.
func TestUnknownKeyDoesNotHideDuplicateInAnotherFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"c.yaml":      mistakesHead + "device_files: [site-*.yaml]\n",
		"site-a.yaml": "- name: a\n  address: 192.0.2.5\n  bogus: 1\n",
		"site-b.yaml": "- name: b\n  address: 192.0.2.5\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(filepath.Join(dir, "c.yaml"))
	a, b := filepath.Join(dir, "site-a.yaml"), filepath.Join(dir, "site-b.yaml")
	want := a + `:3: device "a": field bogus: unknown key` + "\n" +
		b + `:2: device "b": field address: http://192.0.2.5:80 is also the address of device "a" (` + a + `:2)`
	if err == nil || err.Error() != want {
		t.Errorf("error\n got: %v\nwant: %s", err, want)
	}
}

// TestDevicePatternMatchingNothingIsAnError: each device_files pattern
// must match a file; a mistyped glob is an error naming it, even when other
// patterns or devices leave devices to poll.
func TestDevicePatternMatchingNothingIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site-a.yaml"), []byte("- name: a\n  address: 192.0.2.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := mistakesHead + "device_files: [site-a.yaml, sites/*.yaml]\ndevices:\n  - name: lobby-1\n    address: 192.0.2.10\n"
	_, err := Parse([]byte(y), "c.yaml", dir)
	want := `c.yaml:5: field device_files: pattern "sites/*.yaml" matches no file`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// warningsOf parses y as c.yaml in dir and returns its warnings, one a
// string.
func warningsOf(t *testing.T, y, dir string) []string {
	t.Helper()
	cfg, err := Parse([]byte(y), "c.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	return got
}
