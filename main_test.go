package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"
)

// TestExampleConfigIsValid: config.example.yaml, copied with the password
// file the README's first run creates next to it, loads without errors or
// warnings.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte("example-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := check(path); code != checkOK {
		t.Fatalf("--config.check of the example exits %d", code)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) == 0 || len(cfg.Policies) == 0 {
		t.Error("the example shows no device or no policy")
	}
	if !strings.Contains(string(b), "device_files:") {
		t.Error("the example does not show device_files")
	}
}

// TestConfigCheckExitCodes: --config.check exits 0 when all is well, 1 on
// an error and 2 on warnings only.
func TestConfigCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	head := "credentials:\n  default:\n    username: admin\n    password: example-Passw0rd\n"
	cases := map[string]struct {
		yaml string
		want int
	}{
		"ok":                    {head + "devices:\n  - name: a\n    address: 192.0.2.1\n", checkOK},
		"an error":              {head + "devices:\n  - name: a\n    address: 192.0.2.300\n", checkErrors},
		"no devices":            {head, checkWarnings},
		"an empty glob":         {head + "device_files: [nothing/*.yaml]\ndevices:\n  - name: a\n    address: 192.0.2.1\n", checkErrors},
		"an error and a glob":   {head + "device_files: [nothing/*.yaml]\nglobal: {timeout: 0s}\n", checkErrors},
		"a missing config file": {"", checkErrors},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if c.yaml != "" {
				if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := check(path); got != c.want {
				t.Errorf("exit code %d, want %d", got, c.want)
			}
		})
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

// TestConfigCheckWarnsOfExposedSecrets: --config.check exits 2 (warnings
// only) for Basic auth over plain http, a password file readable by group
// or others, and a min_poll_interval longer than Prometheus' default
// scrape interval; the safe forms exit 0.
func TestConfigCheckWarnsOfExposedSecrets(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"private": 0o600, "world": 0o644} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("example-Passw0rd\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	creds := func(file, auth string) string {
		return "credentials:\n  default:\n    username: admin\n    password_file: " + file + "\n" + auth
	}
	dev := func(addr string) string { return "devices:\n  - name: a\n    address: " + addr + "\n" }
	cases := map[string]struct {
		yaml string
		want int
	}{
		"safe":                          {creds("private", "") + dev("192.0.2.1"), checkOK},
		"basic over https":              {creds("private", "    auth: basic\n") + dev("https://192.0.2.1"), checkOK},
		"basic over http":               {creds("private", "    auth: basic\n") + dev("192.0.2.1"), checkWarnings},
		"a world-readable password":     {creds("world", "") + dev("192.0.2.1"), checkWarnings},
		"reuse of 1m":                   {"global: {min_poll_interval: 1m}\n" + creds("private", "") + dev("192.0.2.1"), checkOK},
		"reuse longer than a scrape":    {"global: {min_poll_interval: 5m}\n" + creds("private", "") + dev("192.0.2.1"), checkWarnings},
		"a device's reuse of 2 minutes": {creds("private", "") + dev("192.0.2.1") + "    min_poll_interval: 2m\n", checkWarnings},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := check(path); got != c.want {
				t.Errorf("exit code %d, want %d", got, c.want)
			}
		})
	}
}

// TestSIGTERMDuringReload: SIGTERM sent to the process while a SIGHUP
// reload hangs on its configuration shuts the server down within the grace
// period; the reload does not hold the signal handler.
func TestSIGTERMDuringReload(t *testing.T) {
	// Delivered here too, so that no signal of this test ends the test
	// binary, whatever handleSignals does.
	own := make(chan os.Signal, 16)
	signal.Notify(own, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(own)

	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	load := func() (*config.Config, error) {
		select {
		case <-entered:
		default:
			close(entered)
		}
		<-release
		return nil, errors.New("released")
	}
	r := config.NewReloader(load, func(*config.Config) error { return nil }, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stopped := make(chan struct{})
	go handleSignals(srv, r, slog.New(slog.DiscardHandler), stopped)

	// Until the handler has registered and the reload has begun.
	deadline := time.Now().Add(10 * time.Second)
	for reloading := false; !reloading; {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case <-entered:
			reloading = true
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP started no reload within 10 s")
		}
	}
	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Logf("shut down %v after SIGTERM, the reload still hanging", time.Since(start).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown within 10 s of SIGTERM while a reload hangs")
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Second):
		t.Error("the server still serves after the shutdown")
	}
}
