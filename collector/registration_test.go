package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator"
)

const collectAll = "  collect: [settings, status, info]\n"

func TestRegistrationStatusAndInfo(t *testing.T) {
	ok := panel("1", "udp")
	ok.SetStatus(simulator.Status("OK", 1732600000))
	ok.SetInfo(simulator.Info("Entrance", "AV-08FB", "panel", "3.9.1", "v1"))
	failing := panel("2", "udp")
	failing.SetStatus(simulator.Status("ERROR", 1732600100))
	off := monitor("3", "udp")
	off.SetStatus(simulator.Status("OFFLINE", 0))
	f := startFleet(t, collectAll, devSpec{name: "ok", dev: ok}, devSpec{name: "failing", dev: failing}, devSpec{name: "off", dev: off})
	out := f.scrape(t)
	for _, l := range []string{
		`basip_sip_registered{device="ok"} 1`,
		`basip_sip_registration_status{device="ok",status="ok"} 1`,
		`basip_sip_registration_status{device="ok",status="error"} 0`,
		`basip_sip_registration_status{device="ok",status="offline"} 0`,
		`basip_sip_last_registration_attempt_timestamp_seconds{device="ok"} 1.7326e+09`,
		`basip_sip_registered{device="failing"} 0`,
		`basip_sip_registration_status{device="failing",status="error"} 1`,
		`basip_sip_registered{device="off"} 0`,
		`basip_sip_registration_status{device="off",status="offline"} 1`,
		`basip_device_info{api_version="v1",device="ok",firmware="3.9.1",model="AV-08FB",name="Entrance",serial="` + simulator.Info("Entrance", "", "", "", "")["device_serial_number"].(string) + `",type="panel",vendor="basip"} 1`,
	} {
		requireLine(t, out, l)
	}
	if strings.Contains(out, `basip_sip_last_registration_attempt_timestamp_seconds{device="off"}`) {
		t.Error("a null register_last_attempt gave a series")
	}
	if got := ok.Logins.Load(); got != 1 {
		t.Errorf("logins = %d, want 1 for settings and status together", got)
	}
}

func TestEndpointWithout404IsUnsupported(t *testing.T) {
	mon := monitor("1", "udp") // no status endpoint, no info endpoint: both 404
	f := startFleet(t, collectAll, devSpec{name: "m", dev: mon})
	for range 3 {
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="m"} 1`)
		for _, absent := range []string{"basip_sip_registered{", "basip_sip_registration_status{", "basip_device_info{", "basip_poll_errors_total{"} {
			if strings.Contains(out, absent) {
				t.Errorf("%s present for an unsupported endpoint:\n%s", absent, grep(out, "basip_"))
			}
		}
	}
	if got := mon.StatusRequests(); got != 1 {
		t.Errorf("status requests over 3 scrapes = %d, want 1: a 404 is not retried every scrape", got)
	}
	if got := mon.InfoRequests(); got != 1 {
		t.Errorf("info requests over 3 scrapes = %d, want 1", got)
	}
	if got := mon.SettingsRequests(); got != 3 {
		t.Errorf("settings requests = %d, want 3", got)
	}
	// An hour later the endpoints are tried again.
	d := f.exp.fleet.Load().byName["m"]
	for ep := range device.NumEndpoints {
		d.session.cache.unsupportedUntil[ep].Store(time.Now().Add(-time.Second).UnixNano())
	}
	mon.SetStatus(simulator.Status("OK", 0))
	requireLine(t, f.scrape(t), `basip_sip_registered{device="m"} 1`)
}

func TestInfoIsCached(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetInfo(simulator.Info("Entrance", "AV-08FB", "panel", "3.9.1", "v1"))
	f := startFleet(t, collectAll, devSpec{name: "p", dev: dev})
	for range 4 {
		if !strings.Contains(f.scrape(t), `basip_device_info{`) {
			t.Fatal("no basip_device_info")
		}
	}
	if got := dev.InfoRequests(); got != 1 {
		t.Errorf("info requests over 4 scrapes = %d, want 1 (info_ttl 1h)", got)
	}

	short := panel("2", "udp")
	short.SetInfo(simulator.Info("Garage", "AV-08FB", "panel", "3.9.1", "v1"))
	g := startFleet(t, collectAll+"  info_ttl: 1ms\n", devSpec{name: "p", dev: short})
	for range 3 {
		g.scrape(t)
		time.Sleep(5 * time.Millisecond)
	}
	if got := short.InfoRequests(); got != 3 {
		t.Errorf("info requests with an expired TTL = %d, want one per scrape (3)", got)
	}
}

func TestFailingStatusKeepsDeviceUp(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetStatus(simulator.Status("OK", 0))
	dev.SetInfo(simulator.Info("Entrance", "AV-08FB", "panel", "3.9.1", "v1"))
	f := startFleet(t, collectAll, devSpec{name: "p", dev: dev})
	requireLine(t, f.scrape(t), `basip_sip_registered{device="p"} 1`)
	// The status answer turns to garbage; settings still read.
	dev.SetStatus(map[string]any{"sip_status": 42})
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 1`)
	requireLine(t, out, `basip_poll_errors_total{device="p",endpoint="status",reason="decode"} 1`)
	if strings.Contains(out, "basip_sip_registered{") {
		t.Error("registered reported from an undecodable answer")
	}
	// The info answer stays what the device last said while it fails.
	requireLine(t, out, `basip_device_info{api_version="v1",device="p",firmware="3.9.1",model="AV-08FB",name="Entrance",serial="`+simulator.Info("Entrance", "", "", "", "")["device_serial_number"].(string)+`",type="panel",vendor="basip"} 1`)
}

func TestSettingsNotCollected(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetStatus(simulator.Status("ERROR", 0))
	f := startFleet(t, "  collect: [status]\n", devSpec{name: "p", dev: dev})
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 1`)
	requireLine(t, out, `basip_sip_registered{device="p"} 0`)
	if dev.SettingsRequests() != 0 || dev.InfoRequests() != 0 {
		t.Errorf("endpoints not collected were polled: settings %d, info %d", dev.SettingsRequests(), dev.InfoRequests())
	}
}
