package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReloadRefusesDroppingMostDevices: with RefuseDeviceDrop, a reload
// whose device_files glob matches nothing (an error of its own), or whose
// device file was emptied, is refused with the reason, last_reload_successful is 0 and the
// configuration in use is kept; dropping half of the devices or fewer is a
// normal reload, and so is restoring them.
func TestReloadRefusesDroppingMostDevices(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	writeFile := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	devices := func(names ...string) string {
		var b strings.Builder
		for i, n := range names {
			fmt.Fprintf(&b, "- name: %s\n  address: 192.0.2.%d\n", n, i+1)
		}
		return b.String()
	}
	writeFile("config.yaml", mistakesHead+"device_files: [devices/*.yaml]\n")
	if err := os.Mkdir(filepath.Join(dir, "devices"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile("devices/a.yaml", devices("d1", "d2", "d3", "d4"))

	load := func() (*Config, error) { return Load(cfgPath) }
	var applied []int
	apply := func(c *Config) error { applied = append(applied, len(c.Devices)); return nil }
	reg := prometheus.NewRegistry()
	r := NewReloader(load, apply, reg, slog.New(slog.DiscardHandler))
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	r.RefuseDeviceDrop(first)
	successful := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "basip_exporter_config_last_reload_successful" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("basip_exporter_config_last_reload_successful not gathered")
		return 0
	}

	steps := []struct {
		name    string
		change  func()
		wantErr string // empty: accepted
		applied int    // devices applied; -1: nothing applied
	}{
		{"a glob that matches nothing", func() {
			writeFile("config.yaml", mistakesHead+"device_files: [device/*.yaml]\n")
		}, `field device_files: pattern "device/*.yaml" matches no file`, -1},
		{"an emptied device file", func() {
			writeFile("config.yaml", mistakesHead+"device_files: [devices/*.yaml]\n")
			writeFile("devices/a.yaml", "")
		}, "refused: the new configuration drops 4 of the 4 devices in use (0 devices in all)", -1},
		{"three of four renamed", func() {
			writeFile("devices/a.yaml", devices("d1", "x2", "x3", "x4"))
		}, "refused: the new configuration drops 3 of the 4 devices in use (4 devices in all)", -1},
		{"half of them removed", func() {
			writeFile("devices/a.yaml", devices("d1", "d2"))
		}, "", 2},
		// Counted against the two now in use: one of two is not more than half.
		{"one more removed", func() {
			writeFile("devices/a.yaml", devices("d1"))
		}, "", 1},
		{"all back", func() {
			writeFile("devices/a.yaml", devices("d1", "d2", "d3", "d4"))
		}, "", 4},
	}
	for _, s := range steps {
		before := len(applied)
		s.change()
		err := r.Reload()
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: refused: %v", s.name, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr) ||
			strings.HasPrefix(s.wantErr, "refused") && !strings.Contains(err.Error(), "--config.allow-device-drop")):
			t.Fatalf("%s: error %v, want %q and the flag that allows it", s.name, err, s.wantErr)
		}
		if s.applied < 0 {
			if len(applied) != before {
				t.Errorf("%s: a refused configuration was applied", s.name)
			}
			if v := successful(); v != 0 {
				t.Errorf("%s: last_reload_successful %v, want 0", s.name, v)
			}
			continue
		}
		if len(applied) != before+1 || applied[before] != s.applied {
			t.Errorf("%s: applied %v, want %d devices last", s.name, applied, s.applied)
		}
		if v := successful(); v != 1 {
			t.Errorf("%s: last_reload_successful %v, want 1", s.name, v)
		}
	}
}

// TestReloadWithoutGuardAcceptsZeroDevices: without RefuseDeviceDrop
// (--config.allow-device-drop) the operator's empty configuration is
// applied.
func TestReloadWithoutGuardAcceptsZeroDevices(t *testing.T) {
	var applied []int
	n := 2
	load := func() (*Config, error) {
		if n == 0 {
			return Parse([]byte(mistakesHead+"devices: []\n"), "c.yaml", ".")
		}
		var b strings.Builder
		b.WriteString(mistakesHead + "devices:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: d%d\n    address: 192.0.2.%d\n", i, i+1)
		}
		return Parse([]byte(b.String()), "c.yaml", ".")
	}
	r := NewReloader(load, func(c *Config) error { applied = append(applied, len(c.Devices)); return nil },
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	n = 0
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 || applied[0] != 0 {
		t.Errorf("applied %v, want [0]", applied)
	}
}
