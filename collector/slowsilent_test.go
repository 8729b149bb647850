package collector

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/schedule"
	"github.com/basip/basip_exporter/collector/simulator"
)

// Devices known to answer slowly that go silent do not starve the healthy
// ones: at concurrency 8 (6 fast slots, 2 slow), 12 devices that answered
// in 0.7 s of a 2 s timeout go silent; a fleet scrape starts their polls,
// and probes of 5 healthy devices within 1.5 s, while those polls are in
// flight, are all up. The silent devices borrow at most half the fast
// slots, each until its patience.
func TestSlowDevicesGoingSilentDoNotStarveProbes(t *testing.T) {
	var specs []devSpec
	var slow []*simulator.Device
	for i := range 12 {
		d := panel(fmt.Sprint(i), "udp")
		d.Latency = 700 * time.Millisecond
		slow = append(slow, d)
		specs = append(specs, devSpec{name: fmt.Sprintf("slow-%02d", i), dev: d})
	}
	for i := range 5 {
		specs = append(specs, devSpec{name: fmt.Sprintf("ok-%d", i), dev: panel(fmt.Sprint(9000+i), "udp")})
	}
	// Met first with room for all of them in the slow slots (concurrency
	// 64: 16), they are known to answer slowly after one scrape; then the
	// concurrency goes down to 8.
	f := startFleet(t, "  concurrency: 64\n  timeout: 2s\n  min_poll_interval: 0s\n", specs...)
	f.scrape(t)
	fl := f.exp.fleet.Load()
	for i := range slow {
		if got := f.exp.sched.Class(fl.byName[fmt.Sprintf("slow-%02d", i)].key); got != schedule.Slow {
			t.Fatalf("slow-%02d, which answered in 0.7 s of 2 s, is %v, want slow", i, got)
		}
	}
	applyYAML(t, f, strings.Replace(f.yaml, "concurrency: 64", "concurrency: 8", 1))
	for _, d := range slow {
		d.SetFault(simulator.FaultHang)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // Prometheus scrapes the fleet: the silent devices' polls start
		defer wg.Done()
		f.scrapeWithin(t, 2*time.Second)
	}()
	time.Sleep(100 * time.Millisecond)
	ups := make([]int, 5)
	took := make([]time.Duration, 5)
	for i := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			out, err := f.probe(t, fmt.Sprintf("ok-%d", i), 1500*time.Millisecond)
			took[i] = time.Since(start).Round(time.Millisecond)
			if err != nil {
				t.Error(err)
				return
			}
			if testutil.HasLine(out, fmt.Sprintf(`basip_up{device="ok-%d"} 1`, i)) {
				ups[i] = 1
			}
		}()
	}
	wg.Wait()
	t.Logf("12 slow devices gone silent, concurrency 8: healthy up per probe %v, answered in %v", ups, took)
	for i, up := range ups {
		if up != 1 {
			t.Errorf("the probe of ok-%d: down after %v", i, took[i])
		}
	}
}
