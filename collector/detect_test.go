package collector

import (
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// loggedReq is one request a simulated device saw: its path, the scheme
// of its Authorization header, and whether it had a query.
type loggedReq struct {
	path, auth string
	query      bool
}

func requestsOf(d *simulator.Device) []loggedReq {
	var got []loggedReq
	for _, r := range d.RequestLog() {
		got = append(got, loggedReq{r.Path, r.Auth, r.Query})
	}
	return got
}

func sameRequests(t *testing.T, name string, got, want []loggedReq) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: requests\n got %v\nwant %v", name, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: request %d is %v, want %v\n got %v", name, i, got[i], want[i], got)
		}
	}
}

// TestAPIVersionAutoTakesOnlyProof: a v0 device whose /api/v1 paths answer
// anything but the proof of a family (400 to the bare login with a token,
// 401 to the bare settings path with Basic) is found as v0: no login and
// no credential ever goes to /api/v1.
func TestAPIVersionAutoTakesOnlyProof(t *testing.T) {
	answers := map[string]simulator.ForeignAnswer{
		"200 html": simulator.ForeignHTML, "401": simulator.ForeignUnauthorized, "403": simulator.ForeignForbidden,
		"405": simulator.ForeignMethodNotAllowed, "redirect": simulator.ForeignRedirect, "hang": simulator.ForeignHang,
		"500": simulator.ForeignServerError, "404": simulator.ForeignNotFound,
	}
	for name, answer := range answers {
		t.Run("token/"+name, func(t *testing.T) {
			mon := monitor("101", "tcp") // v0
			mon.RecordRequests, mon.Foreign = true, answer
			f := startFleet(t, "  timeout: 3s\n", devSpec{name: "mon", dev: mon, api: "auto"})
			for range 3 {
				out := f.scrape(t)
				requireLine(t, out, `basip_up{device="mon"} 1`)
				requireLine(t, out, `basip_auth_failures_total{device="mon"} 0`)
			}
			sameRequests(t, name, requestsOf(mon), []loggedReq{
				{"/api/v1/login", "", false}, {"/api/v0/login", "", false}, // the probes, once each
				{"/api/v0/login", "", true}, {"/api/v0/device/sip/settings", "Bearer", false},
				{"/api/v0/device/sip/settings", "Bearer", false}, {"/api/v0/device/sip/settings", "Bearer", false},
			})
			if st := statusOf(t, f, "mon"); st.APIFamily != "v0" {
				t.Errorf("found %q", st.APIFamily)
			}
		})
		if answer == simulator.ForeignUnauthorized {
			continue // with Basic, 401 without credentials is the proof
		}
		t.Run("basic/"+name, func(t *testing.T) {
			d := panel("2", "udp")
			d.APIVersion, d.Auth, d.RecordRequests, d.Foreign = "v0", simulator.AuthBasic, true, answer
			f := startFleet(t, "  timeout: 3s\n", devSpec{name: "b", dev: d, api: "auto", extra: "    credentials: basic\n"})
			for range 3 {
				requireLine(t, f.scrape(t), `basip_up{device="b"} 1`)
			}
			sameRequests(t, name, requestsOf(d), []loggedReq{
				{"/api/v1/device/sip/settings", "", false}, {"/api/v0/device/sip/settings", "", false},
				{"/api/v0/device/sip/settings", "Basic", false}, {"/api/v0/device/sip/settings", "Basic", false},
				{"/api/v0/device/sip/settings", "Basic", false},
			})
		})
	}
}

// TestAPIVersionAutoFindsTheFamilyAgain: a detection that proves no family
// leaves it unknown, and the next poll detects again; a family that stops
// answering as the API does (the old paths answer HTML after a firmware
// upgrade) is found again after three failures in a row; a login refused
// with 401 on a family that changed is no rejection of the credentials.
func TestAPIVersionAutoFindsTheFamilyAgain(t *testing.T) {
	t.Run("no answer, then an answer", func(t *testing.T) {
		d := monitor("101", "tcp")
		d.RecordRequests = true
		d.SetFault(simulator.FaultHang)
		f := startFleet(t, "  timeout: 1500ms\n", devSpec{name: "m", dev: d, api: "auto"})
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="m"} 0`)
		st := statusOf(t, f, "m")
		if st.Reason != "timeout" || !strings.Contains(st.LastError, "no family answered GET /login without credentials with HTTP 400") {
			t.Errorf("reason %q, error %q", st.Reason, st.LastError)
		}
		d.SetFault(simulator.FaultNone)
		requireLine(t, f.scrape(t), `basip_up{device="m"} 1`)
		sameRequests(t, "m", requestsOf(d), []loggedReq{
			{"/api/v1/login", "", false}, {"/api/v0/login", "", false}, // both hang
			{"/api/v1/login", "", false}, {"/api/v0/login", "", false},
			{"/api/v0/login", "", true}, {"/api/v0/device/sip/settings", "Bearer", false},
		})
	})
	t.Run("old paths answer HTML", func(t *testing.T) {
		d := panel("1", "udp")
		f := startFleet(t, "", devSpec{name: "p", dev: d, api: "auto"})
		requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
		d.SetAPIVersion("v0")
		d.SetForeign(simulator.ForeignHTML)
		for i := range 3 {
			requireLine(t, f.scrape(t), `basip_up{device="p"} 0`)
			if st := statusOf(t, f, "p"); st.Reason != "decode" || st.APIFamily != "v1" && i < 2 {
				t.Errorf("scrape %d: reason %q, family %q", i, st.Reason, st.APIFamily)
			}
		}
		for range 2 {
			requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
		}
		logs := familyLogs(f)
		if len(logs) != 2 || !strings.Contains(logs[1], "api_version=v0") {
			t.Errorf("want v1 then v0:\n%s", strings.Join(logs, "\n"))
		}
	})
	t.Run("login answers 401", func(t *testing.T) {
		d := panel("1", "udp")
		f := startFleet(t, "", devSpec{name: "p", dev: d, api: "auto"})
		requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
		d.SetAPIVersion("v0")
		d.SetForeign(simulator.ForeignUnauthorized) // settings and login under v1: 401
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="p"} 0`)
		if st := statusOf(t, f, "p"); st.Reason != "http_status" || !strings.Contains(st.LastError, "login answered HTTP 401") {
			t.Errorf("reason %q, error %q", st.Reason, st.LastError)
		}
		for range 2 {
			out = f.scrape(t)
			requireLine(t, out, `basip_up{device="p"} 1`)
		}
		requireLine(t, out, `basip_auth_failures_total{device="p"} 0`)
		if n := d.RejectedLogins.Load(); n != 0 {
			t.Errorf("%d logins rejected", n)
		}
		if n := d.Logins.Load(); n != 4 { // v1, the refused v1 login, the v0 probe, the v0 login
			t.Errorf("%d requests to a login path, want 4", n)
		}
	})
}
