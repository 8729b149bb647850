package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigFilesNeverBlock: every file the configuration names (the
// configuration file itself, a device file matched by a glob, a password
// file, a CA file) that is a named pipe, a symlink to /dev/zero or larger
// than its limit is refused at once with an error that names the file and
// why; a symlink to a regular file is read.
func TestConfigFilesNeverBlock(t *testing.T) {
	type spot struct {
		name  string
		limit int64
		// setup writes a configuration in dir that names the file at
		// path (relative to dir), and returns the configuration's path.
		setup func(t *testing.T, dir, path string) string
	}
	head := mistakesHead
	device := "devices:\n  - name: lobby-1\n    address: 192.0.2.10\n"
	writeConfig := func(t *testing.T, dir, y string) string {
		t.Helper()
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spots := []spot{
		{"the configuration file", MaxConfigFile, func(t *testing.T, dir, path string) string {
			return filepath.Join(dir, path)
		}},
		{"a device file matched by a glob", MaxConfigFile, func(t *testing.T, dir, path string) string {
			return writeConfig(t, dir, head+"device_files: ['"+strings.TrimSuffix(path, ".yaml")+"*.yaml']\n")
		}},
		{"a password file", MaxPasswordFile, func(t *testing.T, dir, path string) string {
			return writeConfig(t, dir, "credentials:\n  default:\n    username: admin\n    password_file: "+path+"\n"+device)
		}},
		{"a CA file", MaxTLSFile, func(t *testing.T, dir, path string) string {
			return writeConfig(t, dir, head+device+"    tls_config:\n      ca_file: "+path+"\n")
		}},
	}
	files := map[string]struct {
		make func(t *testing.T, path string, limit int64)
		want string
	}{
		"a named pipe": {func(t *testing.T, path string, _ int64) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file but a named pipe"},
		"a symlink to /dev/zero": {func(t *testing.T, path string, _ int64) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file but a character device"},
		"larger than the limit": {func(t *testing.T, path string, limit int64) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(limit + 1); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
		}, "larger than "},
	}
	for _, s := range spots {
		for fname, f := range files {
			t.Run(s.name+", "+fname, func(t *testing.T) {
				dir := t.TempDir()
				f.make(t, filepath.Join(dir, "bad.yaml"), s.limit)
				cfgPath := s.setup(t, dir, "bad.yaml")
				done := make(chan error, 1)
				start := time.Now()
				go func() {
					_, err := Load(cfgPath)
					done <- err
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Load did not return within 10 s")
				}
				t.Logf("Load returned in %v: %v", time.Since(start).Round(time.Millisecond), err)
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range []string{filepath.Join(dir, "bad.yaml"), f.want} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q", w)
					}
				}
			})
		}
	}
	t.Run("symlinks to regular files are read", func(t *testing.T) {
		dir := t.TempDir()
		link := func(name, content string) {
			target := filepath.Join(dir, "real-"+name)
			if err := os.WriteFile(target, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		link("pw", secretPw+"\n")
		link("devices.yaml", "- name: lobby-2\n  address: 192.0.2.11\n")
		link("config.yaml", "credentials:\n  default:\n    username: admin\n    password_file: pw\ndevice_files: [devices.yaml]\n"+device)
		cfg, err := Load(filepath.Join(dir, "config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Devices) != 2 || cfg.Credentials["default"].Secret().Reveal() != secretPw {
			t.Errorf("%d devices, password read: %v", len(cfg.Devices), cfg.Credentials["default"].Secret().Reveal() == secretPw)
		}
	})
}
