//go:build linux

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
)

const (
	firstPassword  = "Cobalt-Meadow-3141"
	secondPassword = "Granite-Harbor-2718"
)

// serveDoor serves a simulated door panel (API v1) that accepts admin and
// firstPassword until told otherwise; it closes when t ends.
func serveDoor(t *testing.T) (*simulator.Device, *simulator.Server) {
	t.Helper()
	door := &simulator.Device{Username: "admin", Password: firstPassword, APIVersion: "v1"}
	// A SIP account of its own: doors sharing one are an alert
	// (BasipSIPAccountShared).
	door.SetSettings(simulator.PanelSettings(strconv.Itoa(100+int(doors.Add(1))), "udp"))
	srv, err := simulator.Serve(door)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return door, srv
}

// doors numbers the doors serveDoor serves.
var doors atomic.Int64

// TestReloadRereadsRotatedPassword rotates a device's password, then the
// password file, and checks that a SIGHUP to the running binary brings the
// device back; then that bad configurations are refused by SIGHUP (logged)
// and by POST /-/reload (500 with the reason), that a good one posted is
// applied, and that SIGTERM exits cleanly. That a refused configuration
// leaves the old one serving is the reloader's, proven in package collector.
func TestReloadRereadsRotatedPassword(t *testing.T) {
	t.Parallel()
	door, srv := serveDoor(t)

	dir := t.TempDir()
	cfgPath, pwPath := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "password")
	good := "global:\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: admin\n    password_file: password\ndevices:\n  - name: door\n    address: " + srv.URL + "\n"
	replaceFile(t, cfgPath, good)
	replaceFile(t, pwPath, firstPassword+"\n")

	p := startExporterBinary(t, "--config.file="+cfgPath)
	c := loopbackClient(nil)
	base := "http://" + p.addr
	scrape := func() string {
		t.Helper()
		code, body := fetchURL(t, c, http.MethodGet, base+"/metrics", "", "")
		if code != 200 {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		return body
	}
	up := func(want string) {
		t.Helper()
		m := scrape()
		if got := seriesValue(m, `basip_up{device="door"}`); got != want {
			t.Fatalf("basip_up = %q, want %s\n%s", got, want, m)
		}
	}
	sighup := func(wantMsg string) map[string]any {
		t.Helper()
		n := p.logCount()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		l := p.waitLogAfter(n, 10*time.Second, func(l map[string]any) bool {
			msg, _ := l["msg"].(string)
			return strings.HasPrefix(msg, "config reload")
		})
		if l == nil || l["msg"] != wantMsg {
			t.Fatalf("after SIGHUP: log %v, want %q", l, wantMsg)
		}
		return l
	}

	up("1")
	door.SetPassword(secondPassword)
	up("0")
	if m := scrape(); seriesValue(m, `basip_auth_failures_total{device="door"}`) == "0" {
		t.Errorf("the rejected login is not counted:\n%s", m)
	}
	replaceFile(t, pwPath, secondPassword+"\n")
	up("0") // the new password is not read until a reload
	sighup("config reloaded")
	up("1")
	if m := scrape(); seriesValue(m, "basip_exporter_config_last_reload_successful") != "1" {
		t.Errorf("reload not reported as successful:\n%s", m)
	}

	// A configuration with an unknown key: POST /-/reload answers 500 with
	// the reason.
	replaceFile(t, cfgPath, good+"    colour: red\n")
	code, body := fetchURL(t, c, http.MethodPost, base+"/-/reload", "", "")
	if code != http.StatusInternalServerError || !regexp.MustCompile(`config\.yaml:\d+: .*colour`).MatchString(body) {
		t.Errorf("POST /-/reload of a bad config = %d %q, want 500 naming the file, line and key", code, body)
	}
	// Its log line, read before the next SIGHUP, so that the SIGHUP's own
	// line is not taken from it: the answer can arrive before the log line
	// is read from the exporter's output.
	if p.waitLog(10*time.Second, func(l map[string]any) bool {
		e, _ := l["err"].(string)
		return l["msg"] == "config reload failed; keeping the previous configuration" && strings.Contains(e, "colour")
	}) == nil {
		t.Fatal("the refused reload was not logged")
	}

	// An empty password file, by SIGHUP: refused and logged.
	replaceFile(t, cfgPath, good)
	replaceFile(t, pwPath, "")
	l := sighup("config reload failed; keeping the previous configuration")
	if e, _ := l["err"].(string); !strings.Contains(e, "password file") || !strings.Contains(e, "empty") {
		t.Errorf("the failed reload logs %q", e)
	}

	// Fixed, with a second device: accepted.
	replaceFile(t, pwPath, secondPassword+"\n")
	door2, srv2 := serveDoor(t)
	door2.SetPassword(secondPassword)
	replaceFile(t, cfgPath, good+"  - name: door-2\n    address: "+srv2.URL+"\n")
	if code, body := fetchURL(t, c, http.MethodPost, base+"/-/reload", "", ""); code != 200 {
		t.Fatalf("POST /-/reload = %d %q", code, body)
	}
	if m := scrape(); seriesValue(m, "basip_exporter_devices") != "2" || seriesValue(m, `basip_up{device="door-2"}`) != "1" {
		t.Errorf("after a good reload:\n%s\n%s", testutil.Grep(m, "basip_up"), testutil.Grep(m, "basip_exporter_devices"))
	}
	if code, _ := fetchURL(t, c, http.MethodGet, base+"/-/reload", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}

	// SIGTERM: a clean exit, promptly.
	if code, took := p.terminate(10 * time.Second); code != 0 || took > 6*time.Second {
		t.Errorf("SIGTERM: exit code %d after %v", code, took)
	}
	for _, s := range []string{firstPassword, secondPassword} {
		if strings.Contains(p.output(), s) {
			t.Errorf("a password appears in the logs")
		}
	}
}

// TestReloadRefusesDroppingTheFleet: a device_files glob mistyped on
// reload is an error of its own; an emptied device file would drop both
// devices. POST /-/reload answers
// 500 with the reason and the flag that allows it, the exporter keeps
// polling both devices, and last_reload_successful is 0 until a good
// reload. With --config.allow-device-drop the same reload is applied.
func TestReloadRefusesDroppingTheFleet(t *testing.T) {
	t.Parallel()
	_, srv1 := serveDoor(t)
	_, srv2 := serveDoor(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	head := "global:\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: admin\n    password: " + firstPassword + "\n"
	good, typo := head+"device_files: [devices/*.yaml]\n", head+"device_files: [device/*.yaml]\n"
	if err := os.Mkdir(filepath.Join(dir, "devices"), 0o700); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(dir, "devices", "site.yaml")
	fleet := "- name: door-1\n  address: " + srv1.URL + "\n- name: door-2\n  address: " + srv2.URL + "\n"
	c := loopbackClient(nil)

	for _, allow := range []bool{false, true} {
		replaceFile(t, cfgPath, good)
		replaceFile(t, site, fleet)
		args := []string{"--config.file=" + cfgPath}
		if allow {
			args = append(args, "--config.allow-device-drop")
		}
		p := startExporterBinary(t, args...)
		base := "http://" + p.addr
		scrape := func() string {
			t.Helper()
			code, body := fetchURL(t, c, http.MethodGet, base+"/metrics", "", "")
			if code != 200 {
				t.Fatalf("/metrics: %d\n%s", code, body)
			}
			return body
		}
		if m := scrape(); seriesValue(m, "basip_exporter_devices") != "2" || seriesValue(m, `basip_up{device="door-2"}`) != "1" {
			t.Fatalf("before the reload:\n%s", testutil.Grep(m, "basip_"))
		}
		// A mistyped glob is an error whatever the flag says.
		replaceFile(t, cfgPath, typo)
		if code, body := fetchURL(t, c, http.MethodPost, base+"/-/reload", "", ""); code != http.StatusInternalServerError ||
			!strings.Contains(body, `pattern "device/*.yaml" matches no file`) {
			t.Errorf("POST /-/reload with a glob that matches nothing = %d %q, want 500 naming the pattern", code, body)
		}
		replaceFile(t, cfgPath, good)
		replaceFile(t, site, "")
		code, body := fetchURL(t, c, http.MethodPost, base+"/-/reload", "", "")
		m := scrape()
		if allow {
			if code != 200 || seriesValue(m, "basip_exporter_devices") != "0" || seriesValue(m, "basip_exporter_config_last_reload_successful") != "1" {
				t.Errorf("with --config.allow-device-drop: POST /-/reload = %d %q\n%s", code, body, testutil.Grep(m, "basip_exporter_"))
			}
			continue
		}
		if code != http.StatusInternalServerError || !strings.Contains(body, "drops 2 of the 2 devices in use (0 devices in all)") || !strings.Contains(body, "--config.allow-device-drop") {
			t.Errorf("POST /-/reload dropping every device = %d %q, want 500 with the reason and the flag", code, body)
		}
		if seriesValue(m, "basip_exporter_devices") != "2" || seriesValue(m, `basip_up{device="door-1"}`) != "1" || seriesValue(m, "basip_exporter_config_last_reload_successful") != "0" {
			t.Errorf("after the refused reload:\n%s", testutil.Grep(m, "basip_"))
		}
		replaceFile(t, site, fleet)
		if code, body := fetchURL(t, c, http.MethodPost, base+"/-/reload", "", ""); code != 200 {
			t.Errorf("POST /-/reload of the good configuration = %d %q", code, body)
		}
		if m := scrape(); seriesValue(m, "basip_exporter_config_last_reload_successful") != "1" {
			t.Errorf("after the good reload:\n%s", testutil.Grep(m, "basip_exporter_"))
		}
	}
}

// TestShutdownWithScrapeInFlight sends SIGTERM while a scrape waits on a
// device: a scrape that can finish within the grace period does, and its
// answer is complete; one stuck on a device that never answers is cancelled
// after the grace period, not after the device's 60 s deadline. Either way
// the exporter exits with status 0.
func TestShutdownWithScrapeInFlight(t *testing.T) {
	cases := map[string]struct {
		setup    func(d *simulator.Device)
		finishes bool
	}{
		"slow device":   {setup: func(d *simulator.Device) { d.Latency = time.Second }, finishes: true},
		"silent device": {setup: func(d *simulator.Device) { d.SetFault(simulator.FaultHang) }},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dev := &simulator.Device{Username: "admin", Password: firstPassword, APIVersion: "v1"}
			dev.SetSettings(simulator.PanelSettings("100", "udp"))
			c.setup(dev)
			srv, err := simulator.Serve(dev)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			cfgPath := filepath.Join(t.TempDir(), "config.yaml")
			replaceFile(t, cfgPath, "global:\n  timeout: 60s\n  collect: [settings]\ncredentials:\n  default:\n    username: admin\n    password: "+firstPassword+"\ndevices:\n  - name: d\n    address: "+srv.URL+"\n")
			p := startExporterBinary(t, "--config.file="+cfgPath)

			type result struct {
				code int
				body string
				err  error
			}
			scraped := make(chan result, 1)
			go func() {
				code, body, err := tryFetchURL(loopbackClient(nil), http.MethodGet, "http://"+p.addr+"/metrics", "", "")
				scraped <- result{code, body, err}
			}()
			for deadline := time.Now().Add(10 * time.Second); dev.Requests.Load() == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the scrape never reached the device")
				}
			}
			code, took := p.terminate(20 * time.Second)
			if code != 0 {
				t.Errorf("exit status %d after SIGTERM, want 0", code)
			}
			var r result
			select {
			case r = <-scraped:
			case <-time.After(5 * time.Second):
				t.Fatal("the in-flight scrape was still open after the exit")
			}
			t.Logf("exited %v after SIGTERM; scrape: %d %v", took.Round(time.Millisecond), r.code, r.err)
			if c.finishes {
				if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `basip_up{device="d"} 1`) {
					t.Errorf("the scrape in flight did not finish: %d %v\n%s", r.code, r.err, r.body)
				}
				return
			}
			if took < 4*time.Second || took > 10*time.Second {
				t.Errorf("exit took %v with a stuck scrape, want the 5 s grace period", took)
			}
		})
	}
}
