package collector

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
)

// TestDemoFleetShowsEveryMetric runs the --demo fleet and checks that its mix
// shows every device series and every failure the README promises.
func TestDemoFleetShowsEveryMetric(t *testing.T) {
	demo, err := simulator.StartDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	cfg, err := config.Parse(demo.Config, "demo", ".")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	srv := httptest.NewServer(exp.MetricsHandler(prometheus.NewRegistry(), HandlerOpts{}))
	defer srv.Close()
	f := &testFleet{http: srv}
	out := f.scrape(t)
	for _, line := range []string{
		`basip_up{device="panel-entrance",site="hq"} 1`,
		`basip_sip_transport{device="panel-entrance",site="hq",transport="udp"} 1`,
		`basip_sip_transport{device="monitor-101",site="hq",transport="tcp"} 1`,
		`basip_sip_transport{device="monitor-102",site="",transport="tls"} 1`,
		`basip_sip_enabled{device="monitor-103-sip-off",site=""} 0`,
		`basip_sip_registration_interval_seconds{device="monitor-104-out-of-range",site=""} 3600`,
		`basip_sip_call_timeout_seconds{device="monitor-104-out-of-range",site=""} 90`,
		`basip_sip_transport{device="monitor-104-out-of-range",site="",transport="udp"} 0`,
		`basip_sip_ring_code_enabled{device="monitor-102",site=""} 1`,
		`basip_sip_stun_configured{device="monitor-101",site="hq"} 1`,
		`basip_up{device="panel-wrong-password",site=""} 0`,
		`basip_auth_failures_total{device="panel-wrong-password",site=""} 1`,
		`basip_poll_errors_total{device="panel-wrong-password",reason="auth",site=""} 1`,
		`basip_up{device="panel-silent",site=""} 0`,
		`basip_poll_errors_total{device="panel-silent",reason="timeout",site=""} 1`,
		`basip_up{device="panel-https",site=""} 1`,
	} {
		requireLine(t, out, line)
	}
	if !strings.Contains(out, `basip_sip_info{device="monitor-104-out-of-range",proxy="sip:pbx.example.com",realm="example.com",site="",stun="",transport="wss"`) {
		t.Errorf("undocumented transport not in basip_sip_info:\n%s", grep(out, "basip_sip_info"))
	}
	if !strings.Contains(out, "basip_poll_duration_seconds{") {
		t.Error("no basip_poll_duration_seconds")
	}
}
