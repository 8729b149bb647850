package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parsedCollector serves parsed families as client_golang const metrics,
// the way the official exporters build theirs: a pedantic registry then
// checks them (label names consistent with the help and type of each
// family, no duplicate series, valid names and values).
type parsedCollector map[string]*dto.MetricFamily

func (c parsedCollector) Describe(chan<- *prometheus.Desc) {} // unchecked

func (c parsedCollector) Collect(ch chan<- prometheus.Metric) {
	for name, mf := range c {
		typ := prometheus.GaugeValue
		if mf.GetType() == dto.MetricType_COUNTER {
			typ = prometheus.CounterValue
		}
		descs := map[string]*prometheus.Desc{} // by label names
		for _, m := range mf.GetMetric() {
			var names, values []string
			for _, lp := range m.GetLabel() {
				names, values = append(names, lp.GetName()), append(values, lp.GetValue())
			}
			key := strings.Join(names, ",")
			d, ok := descs[key]
			if !ok {
				d = prometheus.NewDesc(name, mf.GetHelp(), names, nil)
				descs[key] = d
			}
			ch <- prometheus.MustNewConstMetric(d, typ, value(m), values...)
		}
	}
}

// hostile is a label value with everything the text format must escape or
// a parser could trip on.
const hostile = "q\"uote \\back\\slash\nnew line, {brace} =eq \u00e9\u4e2d #hash"

// TestWriterMatchesClientGolang renders every metric family through
// package textformat and through client_golang's const metrics and
// registry, for devices whose constant labels and settings carry quotes,
// backslashes, line feeds, cleaned invalid UTF-8 and empty values, and
// parses both back with expfmt: the results are identical, once empty
// label values (which Prometheus treats as absent) are dropped.
func TestWriterMatchesClientGolang(t *testing.T) {
	y := fmt.Sprintf(`credentials:
  default: {username: u, password: p}
policies:
  default:
    enabled: true
    transports: [udp]
    proxy: '^x$'
devices:
  - name: %q
    address: http://127.0.0.1:1
    labels: {site: %q, room: ""}
  - name: plain
    address: http://127.0.0.1:2
    labels: {floor: %q}
`, hostile, clean("bad\xff\xfeutf8"), "")
	cfg, err := config.Parse([]byte(y), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exp, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	f := exp.fleet.Load()
	str := func(s string) *string { return &s }
	i64 := func(v int64) *int64 { return &v }
	yes := true
	pw := device.Secret("123456")
	settings := &device.SIPSettings{Password: &pw,
		Enable: &yes, Proxy: str(hostile), Realm: str(""), User: str(clean("\xc3\x28user")),
		Transport: str("UDP"), UserID: str("\\"), RingCode: &yes, Timeout: i64(120),
		RegistrationInterval: i64(300), STUN: &device.STUN{IP: str("stun\"x"), Port: i64(3478)},
	}
	last := 1.7326e9
	outcomes := make([]*pollOutcome, len(f.members))
	for i, m := range f.members {
		o := &pollOutcome{}
		outcomes[i] = o
		o.settings = settings
		o.status = &device.SIPStatus{Status: str("OK"), LastAttempt: &last}
		o.info = &device.Info{Model: device.FlexString(hostile), Type: "panel", Firmware: "3.9.1", Serial: ""}
		o.check(m.cfg)
		m.rec.authFailures.Add(3)
		m.rec.countError(int(device.EndpointStatus), device.ReasonTimeout)
		m.rec.countError(int(device.EndpointStatus), device.ReasonTimeout)
		m.rec.fingerprint.Store(&fingerprint{sum: 1})
	}
	poll := &Poll{fleet: f, members: f.members, outcomes: outcomes}

	text := exposition(t, poll)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(parsedCollector(parsed))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lib strings.Builder
	enc := expfmt.NewEncoder(&lib, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}

	ours, theirs := parseNormalised(t, text), parseNormalised(t, lib.String())
	if len(ours) != len(families) {
		t.Errorf("the writer wrote %d families, want every one of the %d", len(ours), len(families))
	}
	for _, fam := range families {
		if ours[fam.name] == "" {
			t.Errorf("family %s has no sample in the test's data", fam.name)
		}
		if ours[fam.name] != theirs[fam.name] {
			t.Errorf("family %s differs:\nwriter:\n%s\nclient_golang:\n%s", fam.name, ours[fam.name], theirs[fam.name])
		}
	}
	if !strings.Contains(text, `\"uote \\back\\slash\nnew line`) {
		t.Errorf("the hostile value is not escaped as expected:\n%s", text)
	}
}

// parseNormalised parses a text exposition and renders each family as a
// canonical text: HELP, TYPE, then samples sorted, with empty label values
// dropped.
func parseNormalised(t *testing.T, text string) map[string]string {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	out := map[string]string{}
	for name, mf := range fams {
		var lines []string
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, lp := range m.GetLabel() {
				if lp.GetValue() != "" {
					pairs = append(pairs, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
				}
			}
			slices.Sort(pairs)
			lines = append(lines, fmt.Sprintf("{%s} %v", strings.Join(pairs, ","), value(m)))
		}
		slices.Sort(lines)
		out[name] = fmt.Sprintf("HELP %q TYPE %s\n%s", mf.GetHelp(), mf.GetType(), strings.Join(lines, "\n"))
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}
