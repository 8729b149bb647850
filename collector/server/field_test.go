package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
)

// TestPagesShowFieldDevices checks the landing page's and the debug page's
// view of devices as seen in the field: both 401 bodies read as the
// device's reason, the API family found by api_version auto, HTTP Basic,
// the registration state, the firmware and an exposed SIP password.
func TestPagesShowFieldDevices(t *testing.T) {
	serveDev := func(d *simulator.Device) string {
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv.URL
	}
	dev := func(api string, settings map[string]any) *simulator.Device {
		d := &simulator.Device{Username: user, Password: password, APIVersion: api}
		d.SetSettings(settings)
		return d
	}
	logIn := dev("v1", simulator.PanelSettings("1", "udp"))
	logIn.SetFault(simulator.FaultUnauthorized)
	camdroid := dev("v0", simulator.MonitorSettings("2", "udp"))
	camdroid.UnauthorizedBody = simulator.UnauthorizedCamdroid
	camdroid.SetFault(simulator.FaultUnauthorized)
	leaky := dev("v1", simulator.LeakyPanelSettings("3", "udp", "sip-Clear-5512"))
	leaky.SetStatus(simulator.Status("ERROR", time.Now().Unix()))
	leaky.SetInfo(simulator.Info("Old", "AA-07BD", "panel", "3.8.0", "2.0"))
	basic := dev("v0", simulator.MonitorSettings("4", "udp"))
	basic.Auth = simulator.AuthBasic
	basic.SetInfo(simulator.Info("Flat", "AQ-07L", "monitor", "5.3.2", "1.0"))

	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  timeout: 2s\n  api_version: auto\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: %s\n    password: %q\n  basic:\n    username: %s\n    password: %q\n    auth: basic\ndevices:\n",
		user, password, user, password)
	for _, d := range []struct {
		name, extra string
		dev         *simulator.Device
	}{{"log-in", "", logIn}, {"camdroid", "", camdroid}, {"leaky", "", leaky}, {"basic", "    credentials: basic\n", basic}} {
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n%s", d.name, serveDev(d.dev), d.extra)
	}
	_, srv, _ := serve(t, y.String(), t.TempDir(), nil)
	if code, _, _ := get(t, srv.URL+"/metrics"); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	// Service discovery shows the configured api_version and the family
	// found.
	_, sd, _ := get(t, srv.URL+"/sd")
	if !strings.Contains(sd, `"__meta_basip_api_family":"v0","__meta_basip_api_version":"auto","__meta_basip_device":"basic"`) {
		t.Errorf("/sd: %s", sd)
	}
	_, body, _ := get(t, srv.URL+"/")
	tab := table(t, parse(t, body), "devices")
	want := map[string]map[string]string{
		"log-in":   {"state": "down", "error": "HTTP 401: Log In", "api": "v1 auto, token"},
		"camdroid": {"state": "down", "error": "HTTP 401: invalid_authentication", "api": "v0 auto, token"},
		"leaky":    {"state": "up", "registration": "error", "password": "exposed", "firmware": "3.8.0", "api": "v1 auto, token"},
		"basic":    {"state": "up", "registration": "unsupported", "password": "exposed", "firmware": "5.3.2", "api": "v0 auto, basic"},
	}
	for _, r := range tab.rows {
		name := r.attr["data-device"]
		for col, w := range want[name] {
			if got := r.text[col]; !strings.Contains(got, w) {
				t.Errorf("%s: column %s = %q, want it to contain %q", name, col, got, w)
			}
		}
	}
	for name, w := range map[string][]string{
		"camdroid": {"HTTP 401: invalid_authentication", "v0 (api_version auto)"},
		"log-in":   {"HTTP 401: Log In"},
		"basic":    {"v0 (api_version auto)", "basic"},
	} {
		_, body, _ := get(t, srv.URL+"/debug?device="+name)
		text := text(parse(t, body))
		for _, s := range w {
			if !strings.Contains(text, s) {
				t.Errorf("/debug?device=%s lacks %q", name, s)
			}
		}
		if strings.Contains(body, "sip-Clear-5512") {
			t.Errorf("/debug?device=%s shows the SIP password", name)
		}
	}
}
