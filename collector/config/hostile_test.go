package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parseBounded parses y and fails t if Parse panics, takes longer than
// maxTime or allocates more than maxAlloc bytes. It returns the error and
// logs what it cost.
func parseBounded(t *testing.T, y []byte, dir string, maxTime time.Duration, maxAlloc uint64) (cfg *Config, err error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Parse panicked: %v", r)
			}
		}()
		cfg, err = Parse(y, "c.yaml", dir)
	}()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("Parse of %d bytes took %v and allocated %.1f MiB", len(y), took.Round(time.Millisecond), float64(allocated)/(1<<20))
	if took > maxTime {
		t.Errorf("Parse took %v, more than %v", took, maxTime)
	}
	if allocated > maxAlloc {
		t.Errorf("Parse allocated %.1f MiB, more than %.1f MiB", float64(allocated)/(1<<20), float64(maxAlloc)/(1<<20))
	}
	return cfg, err
}

// TestYAMLBombs feeds alias bombs and deep nesting to Parse: each is
// refused with an error, without a panic, in bounded time and memory.
func TestYAMLBombs(t *testing.T) {
	head := "credentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n"

	// Labels fanned out by alias: every device decodes the whole map again.
	var fan strings.Builder
	fan.WriteString(head + "devices:\n  - name: d0\n    address: h\n    labels: &l {")
	for i := range 2000 {
		fmt.Fprintf(&fan, "k%d: v, ", i)
	}
	fan.WriteString("k: v}\n")
	for i := 1; i < 2000; i++ {
		fmt.Fprintf(&fan, "  - name: d%d\n    address: h\n    labels: *l\n", i)
	}

	// The billion laughs: nine levels of nine aliases each, 9^9 strings
	// if expanded, used where the configuration has lists and maps.
	laughs := func(use string) string {
		var b strings.Builder
		b.WriteString(`x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
		for i := 1; i < 9; i++ {
			p := fmt.Sprintf("*x%d", i-1)
			fmt.Fprintf(&b, "x%d: &x%d [%s,%s,%s,%s,%s,%s,%s,%s,%s]\n", i, i, p, p, p, p, p, p, p, p, p)
		}
		return b.String() + use + "\n"
	}
	bombs := map[string]struct {
		yaml string
		want string // in the error
	}{
		"labels fanned out by alias": {fan.String(), "excessive aliasing"},
		"billion laughs, unused":     {laughs(""), "field x0: unknown key"},
		"billion laughs as devices":  {laughs("devices: *x8"), "cannot unmarshal"},
		"billion laughs as collect":  {laughs("global:\n  collect: *x8"), "cannot unmarshal"},
		"billion laughs as labels":   {laughs("devices:\n  - name: a\n    address: h\n    labels: *x8"), "cannot unmarshal"},
		"billion laughs as a policy": {laughs("policies:\n  p:\n    transports: *x8"), "cannot unmarshal"},
		"deeply nested sequences":    {"devices: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", ""},
		"deeply nested mappings":     {"devices: " + strings.Repeat("{a: ", 20000) + "b" + strings.Repeat("}", 20000) + "\n", ""},
		"a long chain of anchors":    {chain(20000), ""},
	}
	for name, b := range bombs {
		t.Run(name, func(t *testing.T) {
			_, err := parseBounded(t, []byte(b.yaml), t.TempDir(), 30*time.Second, 512<<20)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if len(msg) > 300 {
				msg = msg[:300] + "..."
			}
			t.Logf("error: %s", msg)
			if !strings.Contains(err.Error(), b.want) {
				t.Errorf("error lacks %q", b.want)
			}
			if strings.Contains(err.Error(), secretPw) {
				t.Errorf("error contains the password")
			}
		})
	}
}

// chain is a document whose anchors each alias the previous one.
func chain(n int) string {
	var b strings.Builder
	b.WriteString("global:\n  collect: &a0 [settings]\ndevices:\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - &a%d {name: d%d, address: h, collect: *a%d}\n", i, i, i-1)
	}
	return b.String()
}

// TestHundredThousandDevices loads a file of 100k devices. It logs the time
// and memory it took; there is no timing assertion.
func TestHundredThousandDevices(t *testing.T) {
	const n = 100000
	var b strings.Builder
	b.WriteString("global:\n  timeout: 5s\ncredentials:\n  default:\n    username: admin\n    password: " + secretPw + "\n  monitors:\n    username: admin\n    password_file: pw\ndevices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: device-%06d\n    address: 10.%d.%d.%d\n", i, i>>16, (i>>8)&255, i&255)
		switch i % 4 {
		case 1:
			b.WriteString("    api_version: v0\n    credentials: monitors\n")
		case 2:
			fmt.Fprintf(&b, "    labels: {site: site-%d, building: b%d}\n", i%50, i%7)
		case 3:
			b.WriteString("    tls_config: {insecure_skip_verify: true}\n")
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("monitor-Pass1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseBounded(t, []byte(b.String()), dir, time.Hour, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) != n {
		t.Fatalf("%d devices loaded, want %d", len(cfg.Devices), n)
	}
	last := cfg.Devices[n-1]
	if last.Name != fmt.Sprintf("device-%06d", n-1) || last.URL.String() != "http://10.1.134.159:80" || last.Credential.Secret().Reveal() != secretPw {
		t.Errorf("last device %+v", last)
	}
	if got := strings.Join(cfg.LabelNames, ","); got != "building,site" {
		t.Errorf("label names %s", got)
	}
}

// TestPasswordFileProblems: a password file that is missing, a directory,
// unreadable, not a regular file, too large or empty is a clear error that
// names the file and the field, never the content, and never blocks.
func TestPasswordFileProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unreadable := write("unreadable", secretPw+"\n", 0o000)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"missing":                  {filepath.Join(dir, "nope"), "no such file"},
		"a directory":              {dir, "directory"},
		"unreadable":               {unreadable, "permission denied"},
		"a device that never ends": {"/dev/zero", "not a regular file"},
		"a named pipe":             {fifo, "not a regular file"},
		"larger than 4 KiB":        {write("large", secretPw+strings.Repeat("x", 5000), 0o600), "larger than 4096"},
		"empty":                    {write("empty", "", 0o600), "empty"},
		"only a newline":           {write("newline", "\n", 0o600), "empty"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.path == unreadable {
				if f, err := os.Open(unreadable); err == nil {
					f.Close()
					t.Skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not stop this process reading the file")
				}
			}
			y := "credentials:\n  default:\n    username: admin\n    password_file: " + c.path + "\n"
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(y), "c.yaml", dir)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Parse blocked on the password file")
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range []string{"c.yaml:4:", `credentials "default"`, "password_file", c.path, c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretPw) {
				t.Errorf("error contains the file's content: %q", err)
			}
		})
	}
	t.Run("a symlink to a file", func(t *testing.T) {
		// As Kubernetes mounts secrets.
		target := write("target", secretPw+"\n", 0o600)
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse([]byte("credentials:\n  default:\n    username: admin\n    password_file: link\n"), "c.yaml", dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Credentials["default"].Secret().Reveal(); got != secretPw {
			t.Errorf("password %q", got)
		}
	})
	t.Run("Load of a missing or unreadable config", func(t *testing.T) {
		for _, p := range []string{filepath.Join(dir, "nope.yaml"), dir} {
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("Load(%s): %v", p, err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) {
				t.Errorf("Load(%s): %T is not a *fs.PathError", p, err)
			}
		}
	})
}
