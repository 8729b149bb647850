package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/common/version"
)

// TestExampleConfigIsValid keeps config.example.yaml loadable.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "basip")
	if err := os.WriteFile(pw, []byte("example-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.ReplaceAll(string(b), "/run/secrets/basip", pw)
	cfg, err := config.Parse([]byte(y), "config.example.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) == 0 {
		t.Error("the example configures no device")
	}
}

// TestDemoURL checks the address --demo tells the user to open.
func TestDemoURL(t *testing.T) {
	cases := map[string]string{":9875": "http://localhost:9875/", "127.0.0.1:1234": "http://127.0.0.1:1234/", "[::1]:9875": "http://[::1]:9875/"}
	for in, want := range cases {
		if got := demoURL([]string{in}); got != want {
			t.Errorf("demoURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVersionWithoutLdflags: a plain `go build` reports the release, not
// an empty version (which would blank build_info and the dashboard).
func TestVersionWithoutLdflags(t *testing.T) {
	saved := version.Version
	t.Cleanup(func() { version.Version = saved })
	version.Version = ""
	stampVersion()
	if version.Version != releaseVersion {
		t.Errorf("version %q, want %q", version.Version, releaseVersion)
	}
	version.Version = "9.9.9" // set by -ldflags: kept
	stampVersion()
	if version.Version != "9.9.9" {
		t.Errorf("a stamped version was replaced by %q", version.Version)
	}
}
