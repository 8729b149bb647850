package collector

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testPolicies = `policies:
  default:
    enabled: true
    transports: [tls]
    registration_interval: {min: 60, max: 300}
    proxy: '^sip:pbx\.example\.com$'
    stun: required
  lobby:
    transports: [tls, tcp]
`

func TestPolicySeries(t *testing.T) {
	mon := monitor("101", "tcp") // SIP password s1p-101-pass: not weak
	weak := monitor("102", "tls")
	s := simulator.MonitorSettings("102", "tls")
	s["password"] = "123456"
	s["registration_interval"] = 20
	weak.SetSettings(s)
	f := startFleetWith(t, testPolicies, "",
		devSpec{name: "mon", dev: mon},
		devSpec{name: "lobby", dev: panel("1", "tcp"), extra: "    policy: lobby\n"},
		devSpec{name: "free", dev: weak, extra: "    policy: none\n"},
	)
	expected := `
# HELP basip_sip_policy_violation 1 if the device's settings violate the policy rule, else 0; absent when the device did not send the field.
# TYPE basip_sip_policy_violation gauge
basip_sip_policy_violation{device="mon",policy="default",rule="enabled"} 0
basip_sip_policy_violation{device="mon",policy="default",rule="proxy"} 0
basip_sip_policy_violation{device="mon",policy="default",rule="registration_interval"} 0
basip_sip_policy_violation{device="mon",policy="default",rule="stun"} 1
basip_sip_policy_violation{device="mon",policy="default",rule="transports"} 1
basip_sip_policy_violation{device="lobby",policy="lobby",rule="transports"} 0
# HELP basip_sip_policy_compliant 1 if no rule of the device's policy that could be evaluated is violated.
# TYPE basip_sip_policy_compliant gauge
basip_sip_policy_compliant{device="mon",policy="default"} 0
basip_sip_policy_compliant{device="lobby",policy="lobby"} 1
# HELP basip_sip_schema_violation 1 if a field the device sent is outside the vendor's documented constraints, else 0.
# TYPE basip_sip_schema_violation gauge
basip_sip_schema_violation{device="free",field="password"} 0
basip_sip_schema_violation{device="free",field="registration_interval"} 1
basip_sip_schema_violation{device="free",field="timeout"} 0
basip_sip_schema_violation{device="free",field="transport"} 0
basip_sip_schema_violation{device="free",field="user"} 0
basip_sip_schema_violation{device="free",field="user_id"} 0
basip_sip_schema_violation{device="lobby",field="registration_interval"} 0
basip_sip_schema_violation{device="lobby",field="transport"} 0
basip_sip_schema_violation{device="lobby",field="user"} 0
basip_sip_schema_violation{device="lobby",field="user_id"} 0
basip_sip_schema_violation{device="mon",field="password"} 0
basip_sip_schema_violation{device="mon",field="registration_interval"} 0
basip_sip_schema_violation{device="mon",field="timeout"} 0
basip_sip_schema_violation{device="mon",field="transport"} 0
basip_sip_schema_violation{device="mon",field="user"} 0
basip_sip_schema_violation{device="mon",field="user_id"} 0
# HELP basip_sip_password_weak 1 if the SIP password the device reveals is a known default, equals the SIP user, or is shorter than 8 characters.
# TYPE basip_sip_password_weak gauge
basip_sip_password_weak{device="free"} 1
basip_sip_password_weak{device="mon"} 0
`
	if err := testutil.GatherAndCompare(gathererFor(t, f), strings.NewReader(expected),
		"basip_sip_policy_violation", "basip_sip_policy_compliant", "basip_sip_schema_violation", "basip_sip_password_weak"); err != nil {
		t.Error(err)
	}
}

func TestSettingsChangeTimestamp(t *testing.T) {
	dev := monitor("101", "tls")
	f := startFleet(t, "", devSpec{name: "m", dev: dev})
	started := float64(f.exp.started.UnixNano()) / 1e9
	value := func() float64 {
		t.Helper()
		for _, l := range strings.Split(f.scrape(t), "\n") {
			if strings.HasPrefix(l, `basip_sip_settings_last_change_timestamp_seconds{device="m"} `) {
				var v float64
				if _, err := fmt.Sscan(strings.Fields(l)[1], &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatal("no basip_sip_settings_last_change_timestamp_seconds")
		return 0
	}
	first := value()
	if first != started {
		t.Errorf("first sighting dated %v, want the exporter's start %v", first, started)
	}
	if again := value(); again != first {
		t.Errorf("unchanged settings moved the timestamp: %v -> %v", first, again)
	}
	fp := grep(f.scrape(t), `basip_sip_settings_fingerprint{device="m"}`)
	// Only the SIP password changes: the fingerprint leaves it out.
	s := simulator.MonitorSettings("101", "tls")
	s["password"] = "another-Secret-9"
	dev.SetSettings(s)
	if changed := value(); changed != first {
		t.Errorf("a change of the SIP password alone moved the timestamp: %v -> %v", first, changed)
	}
	if got := grep(f.scrape(t), `basip_sip_settings_fingerprint{device="m"}`); got != fp || fp == "" {
		t.Errorf("a change of the SIP password alone changed the fingerprint: %q -> %q", fp, got)
	}
	// A real change moves both.
	s["proxy"] = "sip:new-pbx.example.com"
	dev.SetSettings(s)
	if changed := value(); changed <= first {
		t.Errorf("a proxy change did not move the timestamp: %v -> %v", first, changed)
	}
	changedFP := grep(f.scrape(t), `basip_sip_settings_fingerprint{device="m"}`)
	if changedFP == fp {
		t.Errorf("a proxy change did not change the fingerprint: %q", fp)
	}
	// Another exporter (a replica, or this one restarted) publishes the
	// same fingerprint for the same settings.
	replica := startFleet(t, "", devSpec{name: "m", dev: dev})
	if got := grep(replica.scrape(t), `basip_sip_settings_fingerprint{device="m"}`); got != changedFP {
		t.Errorf("a second exporter publishes %q for the same settings, want %q", got, changedFP)
	}
	if strings.Contains(f.logs.String(), "another-Secret-9") {
		t.Error("the new SIP password was logged")
	}
}

// TestDemoFleetViolations proves that the demo fleet carries exactly the
// violations it is built with, and nothing more. (Its monitors send the SIP
// password in clear, as the monitors' API does; only panel-old-firmware's
// policy forbids that.)
func TestDemoFleetViolations(t *testing.T) {
	out := scrapeDemo(t)
	var got []string
	for _, l := range strings.Split(out, "\n") {
		for _, m := range []string{"basip_sip_policy_violation{", "basip_sip_schema_violation{", "basip_sip_password_weak{", "basip_sip_policy_compliant{"} {
			if strings.HasPrefix(l, m) {
				got = append(got, l)
			}
		}
	}
	var firing []string
	for _, l := range got {
		if strings.HasSuffix(l, " 1") && !strings.HasPrefix(l, "basip_sip_policy_compliant") {
			firing = append(firing, l)
		}
	}
	sort.Strings(firing)
	want := []string{
		`basip_sip_password_weak{device="monitor-103-sip-off",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-102",policy="default",rule="proxy",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-102",policy="default",rule="ring_code",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-103-sip-off",policy="default",rule="enabled",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-104-out-of-range",policy="default",rule="call_timeouts",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-104-out-of-range",policy="default",rule="registration_interval",site="tower"} 1`,
		`basip_sip_policy_violation{device="monitor-104-out-of-range",policy="default",rule="transports",site="tower"} 1`,
		`basip_sip_policy_violation{device="panel-old-firmware",policy="panels-cve",rule="firmware"} 1`,
		`basip_sip_policy_violation{device="panel-old-firmware",policy="panels-cve",rule="password_exposed"} 1`,
		`basip_sip_schema_violation{device="monitor-104-out-of-range",field="registration_interval",site="tower"} 1`,
		`basip_sip_schema_violation{device="monitor-104-out-of-range",field="timeout",site="tower"} 1`,
		`basip_sip_schema_violation{device="monitor-104-out-of-range",field="transport",site="tower"} 1`,
	}
	if strings.Join(firing, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(firing, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range []string{
		`basip_sip_policy_compliant{device="panel-entrance",policy="panels",site="hq"} 1`,
		`basip_sip_policy_compliant{device="monitor-101",policy="default",site="hq"} 1`,
		`basip_sip_policy_compliant{device="panel-https",policy="panels"} 1`,
		`basip_sip_policy_compliant{device="monitor-102",policy="default",site="tower"} 0`,
		`basip_sip_policy_compliant{device="panel-basic",policy="panels-cve"} 1`,
		`basip_sip_policy_compliant{device="panel-old-firmware",policy="panels-cve"} 0`,
	} {
		requireLine(t, out, l)
	}
}
