package collector

import (
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// The tests of this file run the exporter over simulated devices that
// behave as devices seen in the field do (see "Seen in the field" in the
// API notes): HTTP Basic instead of a login, one MD5 case only, Camdroid
// 401 bodies and UUID tokens, API families found by detection,
// millisecond timestamps, SIP passwords in clear.

func statusOf(t *testing.T, f *testFleet, name string) DeviceStatus {
	t.Helper()
	for _, s := range f.exp.Statuses() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return DeviceStatus{}
}

func TestBasicOnlyDevice(t *testing.T) {
	good := panel("1", "udp")
	good.Auth, good.RecordRequests = simulator.AuthBasic, true
	good.SetStatus(simulator.Status("OK", 1732600000))
	good.SetInfo(simulator.Info("Gate", "AA-07FB", "panel", "3.9.2", "2.0"))
	bad := panel("2", "udp")
	bad.Auth, bad.RecordRequests = simulator.AuthBasic, true
	bad.SetPassword("not-what-we-send")
	f := startFleet(t, "  collect: [settings, status, info]\n",
		devSpec{name: "basic", dev: good, extra: "    credentials: basic\n"},
		devSpec{name: "basic-wrong", dev: bad, extra: "    credentials: basic\n"})
	for range 3 {
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="basic"} 1`)
		requireLine(t, out, `basip_sip_registered{device="basic"} 1`)
		requireLine(t, out, `basip_up{device="basic-wrong"} 0`)
	}
	if n := good.Logins.Load(); n != 0 {
		t.Errorf("%d logins to a device configured for Basic auth", n)
	}
	log := good.RequestLog()
	if len(log) != 7 { // settings and status three times, info once
		t.Errorf("%d requests, want 7: %+v", len(log), log)
	}
	for _, r := range log {
		if r.Auth != "Basic" {
			t.Errorf("request to %s carried %q, not Basic", r.Path, r.Auth)
		}
	}
	// A rejected Basic password counts and backs off like a rejected login:
	// one request, then nothing until the back-off ends.
	out := f.scrape(t)
	requireLine(t, out, `basip_auth_failures_total{device="basic-wrong"} 1`)
	requireLine(t, out, `basip_poll_errors_total{device="basic-wrong",endpoint="settings",reason="auth"} 4`)
	if n := bad.RejectedBasicAuth(); n != 1 {
		t.Errorf("the wrong Basic password was sent %d times, want once", n)
	}
	if n := bad.Logins.Load(); n != 0 {
		t.Errorf("%d logins", n)
	}
	if st := statusOf(t, f, "basic-wrong"); !strings.Contains(st.LastError, "suspended") {
		t.Errorf("last error %q", st.LastError)
	}
}

func TestUnauthorizedObjectBodyAndOneUseTokens(t *testing.T) {
	mon := monitor("101", "tcp")
	mon.UnauthorizedBody, mon.TokenStyle, mon.OneUseTokens = simulator.UnauthorizedCamdroid, simulator.TokenUUID, true
	refused := monitor("102", "tcp")
	refused.UnauthorizedBody = simulator.UnauthorizedCamdroid
	refused.SetFault(simulator.FaultUnauthorized)
	f := startFleet(t, "", devSpec{name: "camdroid", dev: mon}, devSpec{name: "refused", dev: refused})
	for i := range 4 {
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="camdroid"} 1`)
		requireLine(t, out, `basip_auth_failures_total{device="camdroid"} 0`)
		if i == 0 {
			requireLine(t, out, `basip_up{device="refused"} 0`)
		}
	}
	// Each scrape after the first finds its token used up: 401 with the
	// object body, a new login, the request again.
	if n := mon.Logins.Load(); n != 4 {
		t.Errorf("%d logins, want 4", n)
	}
	if n := mon.SettingsRequests(); n != 7 {
		t.Errorf("%d settings requests, want 7", n)
	}
	for _, tok := range mon.IssuedTokens() {
		if len(tok) != 36 || strings.Count(tok, "-") != 4 {
			t.Errorf("token %q is not a UUID", tok)
		}
	}
	st := statusOf(t, f, "refused")
	if st.Reason != "auth" || !strings.Contains(st.LastError, "HTTP 401: invalid_authentication") {
		t.Errorf("refused: reason %q, last error %q", st.Reason, st.LastError)
	}
}

func TestMD5Case(t *testing.T) {
	for name, c := range map[string]struct {
		device      simulator.MD5Case
		credentials string
		up          bool
	}{
		"upper-only device, upper (default)": {simulator.MD5Upper, "default", true},
		"lower-only device, md5_case lower":  {simulator.MD5Lower, "lower", true},
		"lower-only device, upper":           {simulator.MD5Lower, "default", false},
		"upper-only device, md5_case lower":  {simulator.MD5Upper, "lower", false},
	} {
		t.Run(name, func(t *testing.T) {
			d := panel("1", "udp")
			d.MD5Case = c.device
			f := startFleet(t, "", devSpec{name: "p", dev: d, extra: "    credentials: " + c.credentials + "\n"})
			for range 3 {
				out := f.scrape(t)
				if c.up {
					requireLine(t, out, `basip_up{device="p"} 1`)
					continue
				}
				requireLine(t, out, `basip_up{device="p"} 0`)
				requireLine(t, out, `basip_auth_failures_total{device="p"} 1`)
			}
			wantLogins := int64(1)
			if n := d.Logins.Load(); n != wantLogins {
				t.Errorf("%d logins, want %d (a token, or a rejection and back-off)", n, wantLogins)
			}
			if !c.up {
				if st := statusOf(t, f, "p"); st.Reason != "auth" || !strings.Contains(st.LastError, "suspended") {
					t.Errorf("status %q %q", st.Reason, st.LastError)
				}
			}
		})
	}
}

// familyLogs returns the log lines that announce a found API family.
func familyLogs(f *testFleet) []string {
	var out []string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, "API family found") {
			out = append(out, l)
		}
	}
	return out
}

func TestAPIVersionAuto(t *testing.T) {
	mon := monitor("101", "tcp") // v0
	mon.RecordRequests = true
	pan := panel("1", "udp") // v1
	pan.RecordRequests = true
	basic := panel("2", "udp")
	basic.Auth, basic.RecordRequests = simulator.AuthBasic, true
	f := startFleet(t, "",
		devSpec{name: "mon", dev: mon, api: "auto"},
		devSpec{name: "pan", dev: pan, api: "auto"},
		devSpec{name: "basic", dev: basic, api: "auto", extra: "    credentials: basic\n"})
	for range 3 {
		out := f.scrape(t)
		for _, d := range []string{"mon", "pan", "basic"} {
			requireLine(t, out, `basip_up{device="`+d+`"} 1`)
		}
	}
	type req struct {
		path, auth string
		query      bool
	}
	for name, c := range map[string]struct {
		d    *simulator.Device
		want []req
	}{
		"mon": {mon, []req{
			{"/api/v1/login", "", false}, {"/api/v0/login", "", false}, // the probes, without credentials
			{"/api/v0/login", "", true}, {"/api/v0/device/sip/settings", "Bearer", false},
			{"/api/v0/device/sip/settings", "Bearer", false}, {"/api/v0/device/sip/settings", "Bearer", false},
		}},
		"pan": {pan, []req{
			{"/api/v1/login", "", false},
			{"/api/v1/login", "", true}, {"/api/v1/device/sip/settings", "Bearer", false},
			{"/api/v1/device/sip/settings", "Bearer", false}, {"/api/v1/device/sip/settings", "Bearer", false},
		}},
		"basic": {basic, []req{
			{"/api/v1/device/sip/settings", "", false}, // the probe: 401 without credentials
			{"/api/v1/device/sip/settings", "Basic", false}, {"/api/v1/device/sip/settings", "Basic", false},
			{"/api/v1/device/sip/settings", "Basic", false},
		}},
	} {
		var got []req
		for _, r := range c.d.RequestLog() {
			got = append(got, req{r.Path, r.Auth, r.Query})
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: requests\n got %v\nwant %v", name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: request %d is %v, want %v", name, i, got[i], c.want[i])
			}
		}
	}
	logs := familyLogs(f)
	if len(logs) != 3 {
		t.Fatalf("family logged %d times, want once per device:\n%s", len(logs), strings.Join(logs, "\n"))
	}
	for _, want := range []string{"device=mon api_version=v0", "device=pan api_version=v1", "device=basic api_version=v1"} {
		if !strings.Contains(strings.Join(logs, "\n"), want) {
			t.Errorf("no log with %s:\n%s", want, strings.Join(logs, "\n"))
		}
	}
	if !strings.Contains(logs[0], "level=INFO") {
		t.Errorf("not at info level: %s", logs[0])
	}
}

func TestAPIVersionAutoFollowsAFirmwareUpgrade(t *testing.T) {
	d := panel("1", "udp")
	f := startFleet(t, "  collect: [settings, status]\n", devSpec{name: "p", dev: d, api: "auto"})
	d.SetStatus(simulator.Status("OK", 1732600000))
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	// The upgrade moves the API to /api/v0; the old paths answer 404.
	d.SetAPIVersion("v0")
	for range 3 {
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="p"} 1`)
		requireLine(t, out, `basip_sip_registered{device="p"} 1`)
	}
	logs := familyLogs(f)
	if len(logs) != 2 || !strings.Contains(logs[0], "api_version=v1") || !strings.Contains(logs[1], "api_version=v0") {
		t.Errorf("want v1 then v0 logged once each:\n%s", strings.Join(logs, "\n"))
	}
	if st := statusOf(t, f, "p"); st.APIFamily != "v0" {
		t.Errorf("status shows API %q", st.APIFamily)
	}
	// A device that answers under no family is down, with a reason.
	d.SetAPIVersion("v9")
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 0`)
	if st := statusOf(t, f, "p"); !strings.Contains(st.LastError, "404 under every family") {
		t.Errorf("last error %q", st.LastError)
	}
}

func TestMillisecondTimestamps(t *testing.T) {
	ms := panel("1", "udp")
	ms.SetStatus(simulator.StatusMillis("OK", 1732600000250))
	s := panel("2", "udp")
	s.SetStatus(simulator.Status("OK", 1732600000))
	f := startFleet(t, "  collect: [settings, status]\n", devSpec{name: "ms", dev: ms}, devSpec{name: "s", dev: s})
	out := f.scrape(t)
	requireLine(t, out, `basip_sip_last_registration_attempt_timestamp_seconds{device="ms"} 1.73260000025e+09`)
	requireLine(t, out, `basip_sip_last_registration_attempt_timestamp_seconds{device="s"} 1.7326e+09`)
}

func TestPasswordExposed(t *testing.T) {
	const sipPassword = "sip-Secret-4411"
	leaky := panel("1", "udp")
	leaky.SetSettings(simulator.LeakyPanelSettings("1", "udp", sipPassword))
	leaky.SetInfo(simulator.Info("Old", "AA-07BD", "panel", "3.8.0", "2.0"))
	masked := panel("2", "udp")
	masked.SetSettings(simulator.FieldPanelSettings("2", "udp"))
	masked.SetInfo(simulator.Info("New", "AA-07BD", "panel", "3.9.2", "2.0"))
	stars := panel("3", "udp")
	st := stars.Settings()
	st["password"] = "********"
	stars.SetSettings(st)
	policy := "policies:\n  default:\n    firmware: {min: \"3.9.2\"}\n    password_exposed: forbidden\n"
	f := startFleetWith(t, policy, "  collect: [settings, info]\n",
		devSpec{name: "leaky", dev: leaky}, devSpec{name: "masked", dev: masked},
		devSpec{name: "stars", dev: stars, extra: "    collect: [settings]\n"})
	out := f.scrape(t)
	for _, line := range []string{
		`basip_sip_password_exposed{device="leaky"} 1`,
		`basip_sip_password_exposed{device="masked"} 0`,
		`basip_sip_password_exposed{device="stars"} 0`,
		`basip_sip_policy_violation{device="leaky",policy="default",rule="firmware"} 1`,
		`basip_sip_policy_violation{device="leaky",policy="default",rule="password_exposed"} 1`,
		`basip_sip_policy_compliant{device="leaky",policy="default"} 0`,
		`basip_sip_policy_violation{device="masked",policy="default",rule="firmware"} 0`,
		`basip_sip_policy_violation{device="masked",policy="default",rule="password_exposed"} 0`,
		`basip_sip_policy_compliant{device="masked",policy="default"} 1`,
		`basip_sip_policy_violation{device="stars",policy="default",rule="password_exposed"} 0`,
		`basip_sip_info{device="leaky",outbound="sip:sbc.example.com:5060",proxy="sip:pbx.example.com",realm="example.com",stun="stun.example.com:3478",transport="udp",user="1",user_id="1"} 1`,
		`basip_sip_info{device="masked",outbound="sip:sbc.example.com:5060",proxy="sip:pbx.example.com",realm="example.com:5060",stun="127.0.0.1:3478",transport="udp",user="2",user_id="2"} 1`,
	} {
		requireLine(t, out, line)
	}
	// Without the firmware (info not collected) the rule has no series.
	if strings.Contains(out, `device="stars",policy="default",rule="firmware"`) {
		t.Errorf("firmware rule evaluated without a firmware:\n%s", grep(out, `device="stars"`))
	}
	if strings.Contains(out, sipPassword) || strings.Contains(f.logs.String(), sipPassword) {
		t.Error("the SIP password is in the exposition or the logs")
	}
	s := statusOf(t, f, "leaky")
	if !s.PasswordExposed || s.Firmware != "3.8.0" || strings.Join(s.Violations, ",") != "firmware,password_exposed" {
		t.Errorf("status %+v", s)
	}
}

func TestSIPInfoLabels(t *testing.T) {
	d := panel("1", "udp")
	d.SetSettings(simulator.FieldPanelSettings("1", "udp"))
	f := startFleet(t, "  sip_info_labels: [outbound, proxy]\n", devSpec{name: "p", dev: d})
	out := f.scrape(t)
	requireLine(t, out, `basip_sip_info{device="p",outbound="sip:sbc.example.com:5060",proxy="sip:pbx.example.com"} 1`)
}

func TestAuthAndMD5CaseArePartOfTheIdentity(t *testing.T) {
	d := panel("1", "udp") // accepts either case, Basic or a token
	d.Auth, d.RecordRequests = simulator.AuthBoth, true
	f := startFleet(t, "", devSpec{name: "p", dev: d, extra: "    credentials: default\n"})
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	applyYAML(t, f, f.yaml) // unchanged: the session and its token stay
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	if n := d.Logins.Load(); n != 1 {
		t.Fatalf("%d logins after an unchanged reload, want 1", n)
	}
	lower := strings.Replace(f.yaml, "    credentials: default\n", "    credentials: lower\n", 1)
	applyYAML(t, f, lower) // same user and password, another MD5 case: a new session
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	if n := d.Logins.Load(); n != 2 {
		t.Errorf("%d logins after md5_case changed, want 2", n)
	}
	basic := strings.Replace(f.yaml, "    credentials: default\n", "    credentials: basic\n", 1)
	applyYAML(t, f, basic)
	before := len(d.RequestLog())
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	if log := d.RequestLog()[before:]; len(log) != 1 || log[0].Auth != "Basic" || d.Logins.Load() != 2 {
		t.Errorf("after auth changed to basic: %+v, %d logins", log, d.Logins.Load())
	}
}
