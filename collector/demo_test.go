package collector

import (
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// TestDemoFleetShowsEveryMetric runs the --demo fleet and checks that its mix
// shows every device series and every failure the README promises.
func TestDemoFleetShowsEveryMetric(t *testing.T) {
	out := scrapeDemo(t)
	for _, line := range []string{
		`basip_up{device="panel-entrance",site="hq"} 1`,
		`basip_sip_transport{device="panel-entrance",site="hq",transport="udp"} 1`,
		`basip_sip_transport{device="monitor-101",site="hq",transport="tcp"} 1`,
		`basip_sip_transport{device="monitor-102",site="tower",transport="tls"} 1`,
		`basip_sip_enabled{device="monitor-103-sip-off",site="tower"} 0`,
		`basip_sip_registration_interval_seconds{device="monitor-104-out-of-range",site="tower"} 3600`,
		`basip_sip_call_timeout_seconds{device="monitor-104-out-of-range",site="tower"} 90`,
		`basip_sip_transport{device="monitor-104-out-of-range",site="tower",transport="udp"} 0`,
		`basip_sip_ring_code_enabled{device="monitor-102",site="tower"} 1`,
		`basip_sip_stun_configured{device="monitor-101",site="hq"} 1`,
		`basip_up{device="panel-wrong-password"} 0`,
		`basip_auth_failures_total{device="panel-wrong-password"} 1`,
		`basip_poll_errors_total{device="panel-wrong-password",endpoint="settings",reason="auth"} 1`,
		`basip_up{device="panel-silent"} 0`,
		`basip_poll_errors_total{device="panel-silent",endpoint="settings",reason="timeout"} 1`,
		`basip_up{device="panel-https"} 1`,
		`basip_sip_registration_status{device="panel-entrance",site="hq",status="ok"} 1`,
		`basip_sip_registration_status{device="monitor-102",site="tower",status="error"} 1`,
		`basip_sip_registration_status{device="monitor-103-sip-off",site="tower",status="offline"} 1`,
		`basip_sip_registered{device="monitor-102",site="tower"} 0`,
		`basip_up{device="monitor-101",site="hq"} 1`, // has no status endpoint
		`basip_up{device="panel-basic"} 1`,           // HTTP Basic
		`basip_sip_password_exposed{device="panel-old-firmware"} 1`,
		`basip_sip_password_exposed{device="panel-basic"} 0`,
	} {
		requireLine(t, out, line)
	}
	if !strings.Contains(out, `basip_sip_info{device="monitor-104-out-of-range",outbound="",proxy="sip:pbx.example.com",realm="example.com",site="tower",stun="",transport="wss"`) {
		t.Errorf("undocumented transport not in basip_sip_info:\n%s", grep(out, "basip_sip_info"))
	}
	// panel-basic sends its last registration attempt in milliseconds.
	if l := grep(out, `basip_sip_last_registration_attempt_timestamp_seconds{device="panel-basic"}`); !strings.Contains(l, " 1.7") || !strings.Contains(l, "e+09") {
		t.Errorf("millisecond timestamp not in seconds: %q", l)
	}
	if strings.Contains(out, `basip_sip_registered{device="monitor-101"`) {
		t.Error("monitor-101 has no status endpoint but has basip_sip_registered")
	}
	for _, d := range []string{"panel-entrance", "monitor-101", "monitor-102", "monitor-103-sip-off", "monitor-104-out-of-range", "panel-wrong-password", "panel-https", "panel-basic", "panel-old-firmware"} {
		if !strings.Contains(out, `basip_device_info{api_version="v`) || !strings.Contains(grep(out, "basip_device_info{"), `device="`+d+`"`) {
			t.Errorf("no basip_device_info for reachable device %s", d)
		}
	}
	if !strings.Contains(out, "basip_poll_duration_seconds{") {
		t.Error("no basip_poll_duration_seconds")
	}
}

// scrapeDemo starts the --demo fleet, scrapes it once and returns the
// exposition.
func scrapeDemo(t *testing.T) string {
	t.Helper()
	demo, err := simulator.StartDemo()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(demo.Close)
	return scrapeExporter(t, newExporter(t, demo.Config), 0)
}
