package collector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
)

// Tests of the polling core's guarantees over simulated devices on
// loopback, under the timings a client of the port controls. The scheduler
// itself is proven with a fake clock in package schedule; these check that
// the collector keeps its promises with real HTTP.

// A scrape's deadline that arrives while devices are being dispatched,
// many times over at every instant near the start margin, leaves no slot
// held: a normal scrape afterwards polls every device. Devices that refuse
// connections end their polls at once, so that slots free and devices are
// dispatched continuously while the deadline passes.
func TestDeadlineAtDispatchLosesNoSlot(t *testing.T) {
	specs := []devSpec{{name: "ok", dev: panel("1", "udp")}}
	for i := range 200 {
		specs = append(specs, devSpec{name: fmt.Sprintf("refused-%03d", i), addr: fmt.Sprintf("http://127.0.1.%d:1", i+1)})
	}
	f := startFleet(t, "  concurrency: 8\n  timeout: 100ms\n", specs...)
	for i := range 400 {
		// Around 20 ms, where the deadline meets the 10 ms start margin of
		// a 100 ms timeout once a write reserve of 10 ms is taken off, in
		// steps of half a microsecond.
		f.scrapeWithin(t, 20*time.Millisecond+time.Duration(i%200)*500*time.Nanosecond)
	}
	out := f.scrapeWithin(t, 5*time.Second)
	testutil.RequireLine(t, out, `basip_up{device="ok"} 1`)
}

// darkAhead serves silent devices (they accept connections and never
// answer) listed ahead of healthy ones.
func darkAhead(t *testing.T, silent, healthy int, global string) *testFleet {
	var specs []devSpec
	for i := range silent {
		d := panel(fmt.Sprint(i), "udp")
		d.SetFault(simulator.FaultHang)
		specs = append(specs, devSpec{name: fmt.Sprintf("dark-%04d", i), dev: d})
	}
	for i := range healthy {
		specs = append(specs, devSpec{name: fmt.Sprintf("ok-%02d", i), dev: panel(fmt.Sprint(9000+i), "udp")})
	}
	return startFleet(t, global, specs...)
}

func upCount(out, prefix string) int {
	return strings.Count(out, "basip_up{device=\""+prefix) - strings.Count(grep(out, "basip_up{device=\""+prefix), "} 0")
}

// A dark building ahead of healthy devices does not blind them: 150 silent
// then 10 healthy at concurrency 8 (the proportions of 300 ahead of 20 at
// 16), a 0.5 s device timeout and a 1 s budget (those of 5 s and 9.5 s).
func TestDarkBuildingAheadOfHealthyDevicesOverHTTP(t *testing.T) {
	f := darkAhead(t, 150, 10, "  concurrency: 8\n  timeout: 500ms\n  min_poll_interval: 0s\n")
	var ups []int
	for range 4 {
		out := f.scrapeWithin(t, time.Second)
		ups = append(ups, upCount(out, "ok-"))
		time.Sleep(500 * time.Millisecond) // the silent polls the scrape left behind end
	}
	t.Logf("healthy up per scrape: %v", ups)
	for i, n := range ups[1:] {
		if n != 10 {
			t.Errorf("scrape %d: %d of 10 healthy devices up", i+2, n)
		}
	}
}

// A caller with a short deadline (a /probe with a tiny header) does not
// cut the poll it started: the scrape that comes 20 ms later is served
// that poll's answer, and the short caller's timeout is recorded nowhere.
func TestShortCallerDoesNotPoisonTheNext(t *testing.T) {
	f, devs := slowFleet(t, 1, 300*time.Millisecond, "  min_poll_interval: 2s\n")
	out, err := f.probe(t, "d00", 120*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireLine(t, out, `basip_up{device="d00"} 0`)
	time.Sleep(20 * time.Millisecond)
	out = f.scrapeWithin(t, 5*time.Second)
	testutil.RequireLine(t, out, `basip_up{device="d00"} 1`)
	if strings.Contains(out, `basip_poll_errors_total{device="d00"`) {
		t.Errorf("the short caller's deadline was counted against the device:\n%s", grep(out, "basip_poll_errors_total"))
	}
	if got := devs[0].SettingsRequests(); got != 1 {
		t.Errorf("%d settings requests, want the one poll both callers shared", got)
	}
	if logs := f.logs.String(); strings.Contains(logs, "device down") {
		t.Errorf("a caller's deadline was logged as the device going down:\n%s", logs)
	}
	st := f.exp.Statuses()[0]
	if !st.Up {
		t.Errorf("the device's status says down: %s (%s)", st.Reason, st.LastError)
	}
	// A caller that goes away while the poll is in flight cancels nothing.
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	f.exp.PollFleet(ctx)
	out = f.scrapeWithin(t, 5*time.Second)
	testutil.RequireLine(t, out, `basip_up{device="d00"} 1`)
	if got := devs[0].SettingsRequests(); got != 2 {
		t.Errorf("%d settings requests, want 2", got)
	}
}

// A reload while a device's poll is in flight never starts a second poll
// beside it, whether it renames the device or changes its credentials; and
// reloads during scrapes never raise the polls in flight above the
// configured concurrency.
func TestReloadsKeepOnePollPerDeviceAndTheConcurrency(t *testing.T) {
	f, devs := slowFleet(t, 8, 100*time.Millisecond, "  concurrency: 4\n  min_poll_interval: 0s\n  timeout: 10s\n")
	peak := samplePeak(devs)
	base := f.yaml
	var wg sync.WaitGroup
	scrapes := func(n int) {
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); f.scrapeWithin(t, 20*time.Second) }()
		}
	}
	for i := range 4 {
		scrapes(2)
		time.Sleep(50 * time.Millisecond)
		y := base
		switch i % 2 {
		case 0: // every device renamed
			y = strings.ReplaceAll(base, "name: d", "name: renamed-d")
		case 1: // every device's credentials changed (the same password, another set)
			y = strings.ReplaceAll(base, "    address:", "    credentials: other\n    address:")
			for _, d := range devs {
				d.SetPassword(otherPassword)
			}
		}
		applyYAML(t, f, y)
		scrapes(2)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	for i, d := range devs {
		if got := d.MaxInFlight(); got != 1 {
			t.Errorf("d%02d saw %d requests at once", i, got)
		}
	}
	if most := peak(); most > 4 || most == 0 {
		t.Errorf("%d requests in flight at once with concurrency 4", most)
	}
}

// samplePeak samples, every millisecond, the requests devs have in flight
// together; the function it returns stops sampling and returns the most.
func samplePeak(devs []*simulator.Device) func() int64 {
	stop, peak := make(chan struct{}), make(chan int64)
	go func() {
		var most int64
		for {
			select {
			case <-stop:
				peak <- most
				return
			case <-time.After(time.Millisecond):
			}
			var now int64
			for _, d := range devs {
				now += d.InFlight()
			}
			most = max(most, now)
		}
	}()
	return func() int64 { close(stop); return <-peak }
}

// A device that answers within its timeout, slowly (0.2 s of a 0.5 s
// timeout), beside silent devices that keep every slot for slow devices
// busy, is up in every scrape once it has answered, and is cut at most
// once.
func TestSlowHealthyDeviceIsNotCut(t *testing.T) {
	var specs []devSpec
	for i := range 6 {
		d := panel(fmt.Sprint(i), "udp")
		d.SetFault(simulator.FaultHang)
		specs = append(specs, devSpec{name: fmt.Sprintf("dark-%d", i), dev: d})
	}
	slow := panel("100", "udp")
	slow.Latency = 200 * time.Millisecond
	specs = append(specs, devSpec{name: "slow", dev: slow})
	f := startFleet(t, "  concurrency: 4\n  timeout: 500ms\n  min_poll_interval: 0s\n", specs...)
	var ups []bool
	for range 6 {
		out := f.scrapeWithin(t, time.Second)
		ups = append(ups, testutil.HasLine(out, `basip_up{device="slow"} 1`))
	}
	t.Logf("slow device up per scrape: %v", ups)
	first := -1
	for i, up := range ups {
		if up && first < 0 {
			first = i
		}
		if first >= 0 && !up {
			t.Errorf("scrape %d: the slow device is down again after it answered (it flaps)", i+1)
		}
	}
	if first < 0 || first > 3 {
		t.Errorf("the slow device first up in scrape %d", first+1)
	}
	if n := strings.Count(f.logs.String(), "device down\" device=slow"); n > 1 {
		t.Errorf("the slow device went down %d times", n)
	}
}
