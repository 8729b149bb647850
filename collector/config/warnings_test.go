package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupReadablePasswordFileOfTheExportersGroup: a password file that
// another user owns with the exporter's group and mode 0440 (a Kubernetes
// secret with fsGroup, root:basip_exporter 0640 on a host) is read through
// its group: no warning. Needs root to give the file away.
func TestGroupReadablePasswordFileOfTheExportersGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("a-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := "credentials:\n  default:\n    username: admin\n    password_file: pw\ndevices:\n  - name: a\n    address: 192.0.2.1\n"
	for _, c := range []struct {
		uid  int
		mode os.FileMode
		warn bool
	}{{65532, 0o440, false}, {65532, 0o640, false}, {65532, 0o444, true}, {0, 0o440, true}} {
		if err := os.Chown(pw, c.uid, os.Getegid()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pw, c.mode); err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse([]byte(y), "c.yaml", dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(cfg.Warnings) > 0; got != c.warn {
			t.Errorf("owner %d, mode %04o: warnings %q, want a warning: %v", c.uid, c.mode, cfg.Warnings, c.warn)
		}
	}
}

// TestWarningsOfExposedSecretsAndStaleReuse: Basic auth written in a
// credential set and sent over plain http, a password file readable by
// group or others (through a symlink too) and a min_poll_interval longer
// than Prometheus' default scrape interval load, each with a warning that
// says where and what to do; their safe neighbours load without one.
func TestWarningsOfExposedSecretsAndStaleReuse(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"private": 0o600, "group": 0o640, "world": 0o644} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("a-Passw0rd\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if err := os.Symlink("world", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	creds := func(set string) string {
		return "credentials:\n  default:\n    username: admin\n    password: a-Passw0rd\n" + set
	}
	basic := creds("  isp:\n    username: admin\n    password: a-Passw0rd\n    auth: basic\n")
	file := func(f string) string {
		return creds("  files:\n    username: admin\n    password_file: " + f + "\n")
	}
	dev := "devices:\n  - name: a\n    address: 192.0.2.1\n"
	var five strings.Builder
	for i := range 5 {
		fmt.Fprintf(&five, "  - name: d%d\n    address: 192.0.2.%d\n    min_poll_interval: 5m\n", i, i+10)
	}
	reuse := "is longer than 1m0s, Prometheus' default scrape interval (the exporter cannot know the interval it is scraped at): a scrape within it is served a poll up to %s old instead of a new one; set it just under the scrape interval"
	cases := map[string]struct {
		yaml string
		want []string
	}{
		"basic over http": {basic + dev + "  - name: b\n    address: http://192.0.2.2\n    credentials: isp\n", []string{
			`c.yaml:8: credentials "isp": field auth: basic sends the password unencrypted with every request, here over plain http to device "b" (c.yaml:13); give those devices https:// addresses`}},
		"basic over https": {basic + dev + "  - name: b\n    address: https://192.0.2.2\n    credentials: isp\n", nil},
		"basic set unused": {basic + dev, nil},
		// The vendor's default: no other choice was made.
		"a vendor that takes Basic only": {basic + dev + "  - name: b\n    address: 192.0.2.2\n    vendor: sokol\n", nil},
		"a password file of mode 0600":   {file("private") + dev, nil},
		"a password file of mode 0640": {file("group") + dev, []string{fmt.Sprintf(
			`c.yaml:7: credentials "files": field password_file: password file %s is readable by its group, which the exporter does not read it through (mode 0640); chmod 600 it`, filepath.Join(dir, "group"))}},
		"a password file of mode 0644": {file("world") + dev, []string{fmt.Sprintf(
			`c.yaml:7: credentials "files": field password_file: password file %s is readable by every user (mode 0644); chmod 600 it, or 640 owned by root and the exporter's group`, filepath.Join(dir, "world"))}},
		"a symlink to a file of mode 0644": {file("link") + dev, []string{fmt.Sprintf(
			`c.yaml:7: credentials "files": field password_file: password file %s is readable by every user (mode 0644); chmod 600 it, or 640 owned by root and the exporter's group`, filepath.Join(dir, "link"))}},
		"global reuse of 1m":  {creds("") + "global:\n  min_poll_interval: 1m\n" + dev, nil},
		"global reuse of 90s": {creds("") + "global:\n  min_poll_interval: 90s\n" + dev, []string{`c.yaml:6: global: field min_poll_interval: 1m30s ` + fmt.Sprintf(reuse, "1m30s")}},
		"device reuse of 5m, five times": {creds("") + dev + five.String(), []string{
			`c.yaml:10: device "d0": field min_poll_interval: 5m0s ` + fmt.Sprintf(reuse, "5m0s"),
			`c.yaml:13: device "d1": field min_poll_interval: 5m0s ` + fmt.Sprintf(reuse, "5m0s"),
			`c.yaml:16: device "d2": field min_poll_interval: 5m0s ` + fmt.Sprintf(reuse, "5m0s"),
			`c.yaml: field min_poll_interval: 2 more devices set it longer than 1m0s`,
		}},
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
