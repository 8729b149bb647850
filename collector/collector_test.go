package collector

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// gathererFor returns a Gatherer that scrapes f's /metrics over HTTP and
// parses the text, so tests assert on the exposition exactly as Prometheus
// receives it.
func gathererFor(t *testing.T, f *testFleet) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(f.scrape(t)))
		if err != nil {
			return nil, err
		}
		// Sorted as a registry would, which testutil's comparison expects.
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, mf := range fams {
			sort.Slice(mf.Metric, func(i, j int) bool {
				a, b := mf.Metric[i].GetLabel(), mf.Metric[j].GetLabel()
				if len(a) != len(b) {
					return len(a) < len(b)
				}
				return labelKey(mf.Metric[i]) < labelKey(mf.Metric[j])
			})
			out = append(out, mf)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
		return out, nil
	})
}

func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetValue())
	}
	return strings.Join(parts, "\x00")
}

func TestExposition(t *testing.T) {
	mon := monitor("101", "tcp")
	s := simulator.MonitorSettings("101", "tcp")
	s["stun"] = map[string]any{"ip": "stun.example.com", "port": 3478}
	mon.SetSettings(s)
	f := startFleet(t, "",
		devSpec{name: "monitor-101", dev: mon, extra: "    labels: {site: hq}\n"},
		devSpec{name: "panel-1", dev: panel("100", "udp")},
	)
	expected := `
# HELP basip_up 1 if the device's SIP settings were read this scrape, else 0.
# TYPE basip_up gauge
basip_up{device="monitor-101",site="hq"} 1
basip_up{device="panel-1"} 1
# HELP basip_sip_enabled 1 if SIP is enabled on the device (field enable).
# TYPE basip_sip_enabled gauge
basip_sip_enabled{device="monitor-101",site="hq"} 1
# HELP basip_sip_registration_interval_seconds SIP registration interval (field registration_interval).
# TYPE basip_sip_registration_interval_seconds gauge
basip_sip_registration_interval_seconds{device="monitor-101",site="hq"} 300
basip_sip_registration_interval_seconds{device="panel-1"} 120
# HELP basip_sip_call_timeout_seconds Call timeout (field timeout).
# TYPE basip_sip_call_timeout_seconds gauge
basip_sip_call_timeout_seconds{device="monitor-101",site="hq"} 120
# HELP basip_sip_transport SIP transport as a state set: 1 for the device's transport; all 0 for an undocumented value.
# TYPE basip_sip_transport gauge
basip_sip_transport{device="monitor-101",site="hq",transport="tcp"} 1
basip_sip_transport{device="monitor-101",site="hq",transport="tls"} 0
basip_sip_transport{device="monitor-101",site="hq",transport="udp"} 0
basip_sip_transport{device="panel-1",transport="tcp"} 0
basip_sip_transport{device="panel-1",transport="tls"} 0
basip_sip_transport{device="panel-1",transport="udp"} 1
# HELP basip_sip_ring_code_enabled 1 if the ring code is enabled (field is_enable_ring_code).
# TYPE basip_sip_ring_code_enabled gauge
basip_sip_ring_code_enabled{device="monitor-101",site="hq"} 0
# HELP basip_sip_stun_configured 1 if a STUN server address is set.
# TYPE basip_sip_stun_configured gauge
basip_sip_stun_configured{device="monitor-101",site="hq"} 1
basip_sip_stun_configured{device="panel-1"} 1
# HELP basip_sip_info SIP settings as labels; always 1.
# TYPE basip_sip_info gauge
basip_sip_info{device="monitor-101",outbound="",proxy="sip:pbx.example.com",realm="example.com",site="hq",stun="stun.example.com:3478",transport="tcp",user="101",user_id="101"} 1
basip_sip_info{device="panel-1",outbound="",proxy="sip:pbx.example.com",realm="example.com",stun="stun.example.com:3478",transport="udp",user="100",user_id="100"} 1
# HELP basip_auth_failures_total Logins the device rejected, and 401s that persisted right after a fresh login.
# TYPE basip_auth_failures_total counter
basip_auth_failures_total{device="monitor-101",site="hq"} 0
basip_auth_failures_total{device="panel-1"} 0
`
	c := gathererFor(t, f)
	names := []string{"basip_up", "basip_sip_enabled", "basip_sip_registration_interval_seconds", "basip_sip_call_timeout_seconds",
		"basip_sip_transport", "basip_sip_ring_code_enabled", "basip_sip_stun_configured", "basip_sip_info",
		"basip_auth_failures_total", "basip_poll_errors_total"}
	if err := testutil.GatherAndCompare(c, strings.NewReader(expected), names...); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestExpositionOfFailingDevice(t *testing.T) {
	bad := panel("1", "udp")
	bad.SetFault(simulator.FaultServerError)
	f := startFleet(t, "", devSpec{name: "broken", dev: bad})
	expected := `
# HELP basip_up 1 if the device's SIP settings were read this scrape, else 0.
# TYPE basip_up gauge
basip_up{device="broken"} 0
# HELP basip_poll_errors_total Failed requests to the device by endpoint (settings, status, info) and reason.
# TYPE basip_poll_errors_total counter
basip_poll_errors_total{device="broken",endpoint="settings",reason="http_status"} 1
`
	if err := testutil.GatherAndCompare(gathererFor(t, f), strings.NewReader(expected), "basip_up", "basip_poll_errors_total", "basip_sip_info"); err != nil {
		t.Error(err)
	}
}

func TestTokenReuseAcrossScrapes(t *testing.T) {
	dev := panel("1", "udp")
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	for range 3 {
		requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	}
	if got := dev.Logins.Load(); got != 1 {
		t.Errorf("logins = %d over 3 scrapes, want 1", got)
	}
	if got := dev.SettingsRequests(); got != 3 {
		t.Errorf("settings requests = %d, want 3", got)
	}
	if got := dev.Connections.Load(); got != 1 {
		t.Errorf("connections = %d over 3 scrapes, want 1 kept alive", got)
	}
}

func TestReloginOn401(t *testing.T) {
	dev := panel("1", "udp")
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	dev.ExpireTokens()
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 1`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 0`)
	if got := dev.Logins.Load(); got != 2 {
		t.Errorf("logins = %d, want 2 (initial, and once after the 401)", got)
	}
	if got := dev.SettingsRequests(); got != 3 {
		t.Errorf("settings requests = %d, want 3 (one, then the refused one and its retry)", got)
	}
}

func TestPersistent401CountsAsAuthFailure(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetFault(simulator.FaultUnauthorized)
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 0`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 1`)
	requireLine(t, out, `basip_poll_errors_total{device="p",endpoint="settings",reason="auth"} 1`)
	if got := dev.Logins.Load(); got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}

func TestRejectedLoginIsNotRetried(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetPassword("something-else")
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 0`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 1`)
	if got := dev.Logins.Load(); got != 1 {
		t.Fatalf("logins in the first scrape = %d, want 1", got)
	}
	// Backing off: the next scrapes send nothing and say why.
	for range 2 {
		out = f.scrape(t)
	}
	requireLine(t, out, `basip_up{device="p"} 0`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 1`)
	requireLine(t, out, `basip_poll_errors_total{device="p",endpoint="settings",reason="auth"} 3`)
	if got := dev.Requests.Load(); got != 1 {
		t.Errorf("requests during the back-off = %d, want only the first login", got)
	}
}

func TestDeadlineHoldsWithHangingDevice(t *testing.T) {
	hang := panel("1", "udp")
	hang.SetFault(simulator.FaultHang)
	f := startFleet(t, "  timeout: 60s\n", devSpec{name: "hang", dev: hang}, devSpec{name: "ok", dev: panel("2", "udp")})
	start := time.Now()
	out := f.scrapeWithin(t, time.Second)
	took := time.Since(start)
	requireLine(t, out, `basip_up{device="hang"} 0`)
	requireLine(t, out, `basip_up{device="ok"} 1`)
	// The caller's deadline ends its wait, not the poll, which goes on under
	// the device's 60s timeout: nothing is counted against the device yet.
	if strings.Contains(out, `basip_poll_errors_total{device="hang"`) {
		t.Errorf("the scrape's deadline was counted as the device's error:\n%s", out)
	}
	if polls, slots := f.exp.sched.InFlight(); polls != 1 || slots != 1 {
		t.Errorf("after the scrape: %d polls in flight holding %d slots, want the hanging device's 1", polls, slots)
	}
	if took > 20*time.Second {
		t.Errorf("scrape took %v; the 1s budget did not hold", took)
	}
}

func TestSlowDeviceDoesNotDelayOthers(t *testing.T) {
	specs := []devSpec{}
	for _, n := range []string{"a", "b", "c"} {
		specs = append(specs, devSpec{name: n, dev: panel("1", "udp")})
	}
	hang := panel("9", "udp")
	hang.SetFault(simulator.FaultHang)
	specs = append(specs, devSpec{name: "hang", dev: hang})
	f := startFleet(t, "  timeout: 2s\n  concurrency: 2\n", specs...)
	fl := f.exp.fleet.Load()
	mfs, err := gathererFor(t, f).Gather()
	if err != nil {
		t.Fatal(err)
	}
	_ = fl
	for _, mf := range mfs {
		if mf.GetName() != "basip_poll_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			dev := m.GetLabel()[0].GetValue()
			d := m.GetGauge().GetValue()
			if dev == "hang" && d < 1.9 {
				t.Errorf("hanging device's poll took %.2fs, want its 2s deadline", d)
			}
			if dev != "hang" && d > 1 {
				t.Errorf("device %s took %.2fs: delayed by the hanging one", dev, d)
			}
		}
	}
}

func TestProbe(t *testing.T) {
	dev := panel("1", "udp")
	other := panel("2", "udp")
	f := startFleet(t, "", devSpec{name: "p", dev: dev}, devSpec{name: "q", dev: other})
	out, err := f.probe(t, "p", 0)
	if err != nil {
		t.Fatalf("probe by name: %v", err)
	}
	requireLine(t, out, `basip_up{device="p"} 1`)
	if strings.Contains(out, `device="q"`) || strings.Contains(out, "basip_exporter_") || strings.Contains(out, "go_goroutines") {
		t.Errorf("probe exposes more than its device:\n%s", out)
	}
	// By address, in another spelling of the same host:port.
	addr := strings.TrimPrefix(f.servers["p"].URL, "http://")
	out, err = f.probe(t, addr, 0)
	if err != nil {
		t.Fatalf("probe by address: %v", err)
	}
	requireLine(t, out, `basip_up{device="p"} 1`)
	if other.Requests.Load() != 0 {
		t.Errorf("probing p polled q")
	}
}

func TestProbeRefusesUnknownTargets(t *testing.T) {
	known := panel("1", "udp")
	stranger := panel("2", "udp") // served, not configured
	srv, err := simulator.Serve(stranger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := startFleet(t, "", devSpec{name: "p", dev: known})
	for _, target := range []string{"", "nope", srv.URL, strings.TrimPrefix(srv.URL, "http://"), "http://127.0.0.1:1/"} {
		if _, err := f.probe(t, target, 0); !errors.Is(err, ErrUnknownTarget) {
			t.Errorf("target %q: error %v, want ErrUnknownTarget", target, err)
		}
	}
	if n := stranger.Requests.Load(); n != 0 {
		t.Errorf("an unconfigured device received %d requests", n)
	}
	// A target with a password in it is refused without quoting it.
	_, err = f.probe(t, "http://admin:Sesame-1234@"+strings.TrimPrefix(srv.URL, "http://"), 0)
	if !errors.Is(err, ErrUnknownTarget) || strings.Contains(err.Error(), "Sesame") {
		t.Errorf("a target with user information: %v", err)
	}
}
