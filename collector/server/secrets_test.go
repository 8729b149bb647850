package server

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
)

// TestNoSecretOnAnyEndpoint serves the exporter's routes, logging at debug
// level, over simulated devices that fail in the ways that handle
// credentials: a rejected password, an echo service that sends the login
// query back, a redirect of the token to another host, a 401 after a
// re-login, an answer quoting the password, a SIP password in clear. It
// fetches every page (/metrics, /probe, the landing page, /debug of every
// device, /config, /-/healthy, /-/ready, /-/reload with a good and a bad
// configuration) and searches them and the whole log for each password,
// its MD5 in both cases and each token the devices issued.
func TestNoSecretOnAnyEndpoint(t *testing.T) {
	const (
		user        = "admin"
		filePass    = "Kestrel-Mortar-3184" // from the password file
		inlinePass  = "Puffin-Ledger-5067"  // inline in the configuration
		devicePass  = "Device-Knows-8820"   // what the rejecting device expects
		sipPassword = "s1p-777-pass"        // revealed by the monitor
	)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(filePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elsewhere.Close() })
	echo, err := simulator.ServeRaw(simulator.Echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })

	var devices []*simulator.Device
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  timeout: 1s\ncredentials:\n  default:\n    username: %s\n    password_file: pw\n  inline:\n    username: %s\n    password: %q\ndevices:\n", user, user, inlinePass)
	add := func(name, api, creds string, settings map[string]any, setup func(d *simulator.Device)) *simulator.Device {
		pass := filePass
		if creds == "inline" {
			pass = inlinePass
		}
		d := &simulator.Device{Username: user, Password: pass, APIVersion: api}
		d.SetSettings(settings)
		d.SetStatus(simulator.Status("OK", time.Now().Unix()))
		d.SetInfo(simulator.Info(name, "AV-08FB", "panel", "3.9.1", api))
		if setup != nil {
			setup(d)
		}
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		devices = append(devices, d)
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n    credentials: %s\n", name, srv.URL, api, creds)
		return d
	}
	monitorSettings := simulator.MonitorSettings("777", "tls")
	add("monitor", "v0", "default", monitorSettings, nil)
	add("inline", "v1", "inline", simulator.PanelSettings("1", "udp"), nil)
	add("rejecting", "v1", "default", simulator.PanelSettings("2", "udp"), func(d *simulator.Device) { d.SetPassword(devicePass) })
	add("token-redirect", "v1", "inline", simulator.PanelSettings("3", "udp"), func(d *simulator.Device) {
		d.SetRedirect(elsewhere.URL)
		d.SetFault(simulator.FaultRedirectSettings)
	})
	relogin := add("relogin", "v1", "default", simulator.PanelSettings("4", "udp"), nil)
	add("quoting", "v1", "default", simulator.PanelSettings("5", "udp"), func(d *simulator.Device) {
		d.SetRawSettings([]byte(`{"proxy": 1, "realm": "` + filePass + `"`))
		d.SetFault(simulator.FaultRawSettings)
	})
	fmt.Fprintf(&y, "  - name: echo\n    address: %s\n    credentials: default\n", echo.URL)
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testutil.SyncBuffer{}
	level := promslog.NewLevel()
	if err := level.Set("debug"); err != nil {
		t.Fatal(err)
	}
	logger := promslog.New(&promslog.Config{Level: level, Writer: logs})
	load := func() (*config.Config, error) { return config.Load(cfgFile) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	exp, err := collector.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	reg := prometheus.NewRegistry()
	reloader := config.NewReloader(load, exp.Apply, reg, logger)
	srv := httptest.NewServer(New(exp, Options{TimeoutOffset: 500 * time.Millisecond, Self: reg, Registerer: reg, Reload: reloader.Reload, Logger: logger}))
	t.Cleanup(srv.Close)

	var seen strings.Builder
	fetch := func(method, path string) int {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(scrapeTimeoutHeader, "5")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&seen, "== %s %s: %d\n%s\n%s\n", method, path, resp.StatusCode, resp.Header, b)
		return resp.StatusCode
	}
	names := []string{"monitor", "inline", "rejecting", "token-redirect", "relogin", "quoting", "echo"}
	for i := range 2 {
		fetch(http.MethodGet, "/metrics")
		for _, n := range append(names, "nope") {
			fetch(http.MethodGet, "/probe?target="+n)
			fetch(http.MethodGet, "/debug?device="+n)
		}
		fetch(http.MethodGet, "/")
		fetch(http.MethodGet, "/config")
		fetch(http.MethodGet, "/-/healthy")
		fetch(http.MethodGet, "/-/ready")
		if code := fetch(http.MethodPost, "/-/reload"); code != http.StatusOK {
			t.Errorf("reload of a good configuration answered %d", code)
		}
		if i == 0 {
			relogin.SetFault(simulator.FaultUnauthorized)
		}
	}
	// A bad configuration, refused: its error names the file and line.
	bad := strings.Replace(y.String(), "password: \""+inlinePass+"\"", "password: \""+inlinePass+"\"\n    pasword: \""+inlinePass+"\"", 1)
	bad = strings.Replace(bad, "  inline:\n", "  broken: "+inlinePass+"\n  inline:\n", 1)
	if err := os.WriteFile(cfgFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := fetch(http.MethodPost, "/-/reload"); code != http.StatusInternalServerError {
		t.Errorf("reload of a bad configuration answered %d", code)
	}
	fetch(http.MethodGet, "/config")
	fetch(http.MethodGet, "/metrics")
	all := seen.String() + logs.String()

	var secrets []string
	for _, p := range []string{filePass, inlinePass, devicePass, sipPassword} {
		sum := md5.Sum([]byte(p))
		h := hex.EncodeToString(sum[:])
		secrets = append(secrets, p, h, strings.ToUpper(h), p[:7]+"...")
	}
	tokens := 0
	for _, d := range devices {
		for _, tok := range d.IssuedTokens() {
			secrets = append(secrets, tok)
			tokens++
		}
	}
	if tokens < 4 {
		t.Fatalf("only %d tokens were issued: the test exercises little", tokens)
	}
	for _, s := range secrets {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("secret %q leaked: %q", s[:4]+"...", all[max(0, i-100):min(len(all), i+len(s)+20)])
		}
	}
	// The paths were exercised: each device's failure shows, the debug
	// pages polled, the bad reload was refused with its reason.
	for _, want := range []string{
		`basip_up{device="monitor"} 1`, `basip_up{device="inline"} 1`,
		`device="rejecting",endpoint="settings",reason="auth"`, `device="token-redirect",endpoint="settings",reason="http_status"`,
		`device="relogin",endpoint="settings",reason="auth"`, `device="quoting",endpoint="settings",reason="decode"`,
		`device="echo",endpoint="settings",reason="connection"`,
		"== GET /debug?device=echo: 200", "== GET /config: 200", "reload failed", "config.yaml:",
		"level=DEBUG",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s: a path was not exercised", want)
		}
	}
	if n := elsewhere.Connections.Load(); n != 0 {
		t.Errorf("the other host received %d connections", n)
	}
}
