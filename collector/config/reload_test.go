package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// gatheredValue is the value of the gauge name in reg; it fails t when reg
// has no such gauge.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// TestReloadNeverQueuesAndTimesOut: while a reload's load hangs (a file on
// a hung file system), a second reload is answered at once with
// ErrReloadInProgress; the hung reload fails at its deadline with
// last_reload_successful 0, and its late result is never applied; the next
// reload runs and succeeds.
func TestReloadNeverQueuesAndTimesOut(t *testing.T) {
	good := func() (*Config, error) {
		return Parse([]byte(mistakesHead+"devices:\n  - name: d1\n    address: 192.0.2.1\n"), "c.yaml", ".")
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	hang := true
	load := func() (*Config, error) {
		if hang {
			hang = false
			close(entered)
			<-release
		}
		return good()
	}
	var applied int
	reg := prometheus.NewRegistry()
	r := NewReloader(load, func(*Config) error { applied++; return nil }, reg, slog.New(slog.DiscardHandler))
	r.timeout = time.Second

	first := make(chan error, 1)
	start := time.Now()
	go func() { first <- r.Reload() }()
	<-entered
	second := make(chan error, 1)
	secondStart := time.Now()
	go func() { second <- r.Reload() }()
	select {
	case err := <-second:
		t.Logf("the second reload returned in %v: %v", time.Since(secondStart).Round(time.Microsecond), err)
		if !errors.Is(err, ErrReloadInProgress) {
			t.Errorf("the second reload: %v, want %v", err, ErrReloadInProgress)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second reload did not return within 5 s: it queued behind the hung one")
	}
	select {
	case err := <-first:
		t.Logf("the hung reload returned in %v: %v", time.Since(start).Round(time.Millisecond), err)
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Errorf("the hung reload: %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hung reload did not return within 10 s")
	}
	if v := gatheredValue(t, reg, "basip_exporter_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful %v after the timeout, want 0", v)
	}
	if applied != 0 {
		t.Errorf("%d configurations applied, want none", applied)
	}
	if err := r.Reload(); err != nil {
		t.Fatalf("the next reload: %v", err)
	}
	if v := gatheredValue(t, reg, "basip_exporter_config_last_reload_successful"); v != 1 || applied != 1 {
		t.Errorf("after the next reload: last_reload_successful %v, %d applied; want 1 and 1", v, applied)
	}
}

// TestReloadCountsDroppedDevices: basip_exporter_config_last_reload_dropped_devices
// is 0 after the first load and then the number of devices in force before
// the last successful reload that it no longer has; the log says how many
// and names them. A failed reload changes neither.
func TestReloadCountsDroppedDevices(t *testing.T) {
	names := []string{"d1", "d2", "d3", "d4", "d5", "d6"}
	fail := false
	load := func() (*Config, error) {
		if fail {
			return Parse([]byte(mistakesHead+"devices:\n  - name: x\n"), "c.yaml", ".")
		}
		var b strings.Builder
		b.WriteString(mistakesHead + "devices:\n")
		for i, n := range names {
			fmt.Fprintf(&b, "  - name: %s\n    address: 192.0.2.%d\n", n, i+1)
		}
		return Parse([]byte(b.String()), "c.yaml", ".")
	}
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	r := NewReloader(load, func(*Config) error { return nil }, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	r.InForce(first)
	dropped := func() float64 { return gatheredValue(t, reg, "basip_exporter_config_last_reload_dropped_devices") }
	if v := dropped(); v != 0 {
		t.Errorf("after the first load: %v, want 0", v)
	}
	steps := []struct {
		name  string
		keep  []string
		fail  bool
		want  float64
		inLog string
	}{
		{"one of six dropped", []string{"d1", "d2", "d3", "d4", "d5"}, false, 1, "dropped=1 devices=5 first_dropped=d6"},
		{"a failed reload", nil, true, 1, ""},
		{"two more dropped, one renamed", []string{"d1", "d2", "x3"}, false, 3, "dropped=3 devices=3 first_dropped=d3,d4,d5"},
		{"all back, the renamed one kept", []string{"d1", "d2", "x3", "d3", "d4", "d5", "d6"}, false, 0, "config reloaded"},
	}
	for _, s := range steps {
		logs.Reset()
		names, fail = s.keep, s.fail
		if err := r.Reload(); (err != nil) != s.fail {
			t.Fatalf("%s: %v", s.name, err)
		}
		if v := dropped(); v != s.want {
			t.Errorf("%s: dropped_devices %v, want %v", s.name, v, s.want)
		}
		if !strings.Contains(logs.String(), s.inLog) {
			t.Errorf("%s: the log lacks %q:\n%s", s.name, s.inLog, logs.String())
		}
		if s.want == 0 && strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("%s: a warning without dropped devices:\n%s", s.name, logs.String())
		}
	}
}
