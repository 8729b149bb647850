package collector

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

// leakCheck fails t if a goroutine started during t is still running once
// t's cleanups (servers, exporter) have run. Call it first, so its cleanup
// runs last.
func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// Hostile devices are scraped with a 1 s device timeout (hostileGlobal)
// under a Prometheus scrape timeout of 4 s. The scrape must answer before
// Prometheus gives up (it takes about the device's 1 s; the rest is room
// for a busy CI machine), and allocate far less than the 64 MiB a hostile
// device may send.
const (
	hostileGlobal        = "  timeout: 1s\n"
	hostileScrapeTimeout = 4 * time.Second
	hostileAllocLimit    = 16 << 20
)

// boundedScrape scrapes the fleet as /metrics does for Prometheus with a 4 s
// timeout and fails t unless it answers within that time and allocates less than
// hostileAllocLimit bytes while doing so.
func boundedScrape(t *testing.T, f *testFleet) string {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	out := f.scrapeWithin(t, hostileScrapeTimeout-500*time.Millisecond) // as the server's default offset leaves it
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("scrape took %v and allocated %.2f MiB", took.Round(time.Millisecond), float64(allocated)/(1<<20))
	if took >= hostileScrapeTimeout {
		t.Errorf("scrape took %v, past Prometheus' %v scrape timeout", took, hostileScrapeTimeout)
	}
	if allocated > hostileAllocLimit {
		t.Errorf("scrape allocated %d bytes, more than %d: a device's answer is held in memory", allocated, hostileAllocLimit)
	}
	return out
}

// deadAddress returns the address of a loopback port nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestHostileLabelValues checks that device strings and configured label
// values full of quotes, newlines, backslashes and invalid UTF-8 come out
// of /metrics as a valid exposition with the same values, invalid bytes
// replaced and overlong values cut, and the device still up.
func TestHostileLabelValues(t *testing.T) {
	leakCheck(t)
	dev := panel("1", "udp")
	s := dev.Settings()
	s["proxy"] = "sip:\"quoted\"\n\\back\\slash"
	s["realm"] = "a\xffb\xfe" // invalid UTF-8
	s["user"] = strings.Repeat("é", 400)
	s["user_id"] = "} 1\nbasip_up{device=\"forged\"} 1"
	s["transport"] = "UDP\"\n"
	dev.SetSettings(s)
	f := startFleet(t, hostileGlobal, devSpec{name: "d", dev: dev, extra: "    labels: {site: \"hq \\\"north\\\"\\n\\\\ floor 2\"}\n"})
	out := boundedScrape(t, f)

	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, out)
	}
	if n := len(mfs["basip_up"].GetMetric()); n != 1 {
		t.Fatalf("%d basip_up series, want 1 (a label value forged a series?)", n)
	}
	up := mfs["basip_up"].GetMetric()[0]
	if up.GetGauge().GetValue() != 1 {
		t.Errorf("basip_up = %v, want 1: the data is usable", up.GetGauge().GetValue())
	}
	info := mfs["basip_sip_info"].GetMetric()
	if len(info) != 1 {
		t.Fatalf("%d basip_sip_info series, want 1", len(info))
	}
	got := map[string]string{}
	for _, l := range info[0].GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	want := map[string]string{
		"device": "d",
		"site":   "hq \"north\"\n\\ floor 2",
		// Device text crosses the boundary escaped: a line break is the
		// two characters \n, invalid UTF-8 is replaced.
		"proxy":     `sip:"quoted"\n\back\slash`,
		"realm":     "a\uFFFDb\uFFFD",
		"user":      strings.Repeat("é", 128), // cut at 256 bytes, on a rune boundary
		"user_id":   `} 1\nbasip_up{device="forged"} 1`,
		"transport": `udp"`,
		"stun":      "stun.example.com:3478",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	for _, m := range mfs["basip_sip_transport"].GetMetric() {
		if m.GetGauge().GetValue() != 0 {
			t.Errorf("transport %q is not documented, yet a state is 1: %v", s["transport"], m)
		}
	}
}

// pollErrorLine is the exposition line of a device's settings poll errors
// for one reason.
func pollErrorLine(device, reason string, n int) string {
	return fmt.Sprintf(`basip_poll_errors_total{device=%q,endpoint="settings",reason=%q} %d`, device, reason, n)
}
