package collector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// slowFleet serves n panels that answer after latency, with min_poll_interval
// as given.
func slowFleet(t *testing.T, n int, latency time.Duration, global string) (*testFleet, []*simulator.Device) {
	t.Helper()
	var specs []devSpec
	var devs []*simulator.Device
	for i := range n {
		d := panel(fmt.Sprint(i), "udp")
		d.Latency = latency
		devs = append(devs, d)
		specs = append(specs, devSpec{name: fmt.Sprintf("d%02d", i), dev: d})
	}
	return startFleet(t, global, specs...), devs
}

// callers runs n scrapes, n probes of d00 and n debug views of d00 at once.
func callers(t *testing.T, f *testFleet, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(3)
		go func() { defer wg.Done(); f.scrapeWithin(t, 5*time.Second) }()
		go func() {
			defer wg.Done()
			if _, err := f.probe(t, "d00", 5*time.Second); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := f.exp.DebugPoll(context.Background(), "d00"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentCallersShareOnePollPerDevice(t *testing.T) {
	f, devs := slowFleet(t, 20, 200*time.Millisecond, "  min_poll_interval: 0s\n")
	callers(t, f, 20)
	for i, d := range devs {
		if got := d.SettingsRequests(); got != 1 {
			t.Errorf("d%02d: %d settings requests for 20 scrapes, 20 probes and 20 debug views arriving together, want 1", i, got)
		}
		if got := d.MaxInFlight(); got != 1 {
			t.Errorf("d%02d saw %d requests at once, want 1", i, got)
		}
		if got := d.Connections.Load(); got != 1 {
			t.Errorf("d%02d saw %d connections, want 1", i, got)
		}
	}
	out := gatherSelf(t, f.exp)
	requireLine(t, out, `basip_exporter_polls_total{outcome="fresh"} 20`)
	requireLine(t, out, fmt.Sprintf(`basip_exporter_polls_total{outcome="shared"} %d`, 20*20+20+20-20))
	requireLine(t, out, `basip_exporter_polls_total{outcome="reused"} 0`)
}

func TestMinPollIntervalReusesRecentResults(t *testing.T) {
	f, devs := slowFleet(t, 3, 0, "  min_poll_interval: 2s\n")
	first := f.scrape(t)
	for range 10 { // a refresh loop
		callers(t, f, 2)
	}
	if got := devs[0].SettingsRequests(); got != 1 {
		t.Errorf("%d settings requests within min_poll_interval, want 1", got)
	}
	again := f.scrape(t)
	stamp := grep(first, "basip_last_poll_timestamp_seconds{device=\"d01\"}")
	if stamp == "" || grep(again, "basip_last_poll_timestamp_seconds{device=\"d01\"}") != stamp {
		t.Errorf("a reused result must carry the time of its poll: %q, then %q", stamp, grep(again, "basip_last_poll_timestamp_seconds{device=\"d01\"}"))
	}
	rep, err := f.exp.DebugPoll(context.Background(), "d01")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Served != "reused" || rep.Age <= 0 || len(rep.Requests) != 0 {
		t.Errorf("debug view of a reused result: served %q, age %v, %d requests", rep.Served, rep.Age, len(rep.Requests))
	}
	requireLine(t, gatherSelf(t, f.exp), `basip_exporter_polls_total{outcome="fresh"} 3`)
	time.Sleep(2 * time.Second)
	f.scrape(t)
	if got := devs[0].SettingsRequests(); got != 2 {
		t.Errorf("%d settings requests after min_poll_interval passed, want 2", got)
	}
	rep, err = f.exp.DebugPoll(context.Background(), "d02")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Served != "reused" {
		t.Errorf("served %q right after a scrape, want reused", rep.Served)
	}
}

func TestConcurrencyBoundsPollsAcrossCallers(t *testing.T) {
	f, devs := slowFleet(t, 24, 100*time.Millisecond, "  concurrency: 4\n  min_poll_interval: 0s\n  timeout: 10s\n")
	peak := samplePeak(devs)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); f.scrapeWithin(t, 10*time.Second) }()
	}
	wg.Wait()
	if got := peak(); got > 4 || got == 0 {
		t.Errorf("%d requests in flight at once across 5 concurrent scrapes, want at most concurrency (4)", got)
	}
}

// gatherSelf returns the exporter's own metrics in the text format.
func gatherSelf(t *testing.T, e *Exporter) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
