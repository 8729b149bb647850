package loadtest

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
)

// TestProfile writes a CPU profile and a heap profile of steady-state
// /metrics work, the fleet's polling and the writing of the exposition,
// with the exporter in this process and the simulated devices in child
// processes, so that the profile holds the exporter's work only:
//
//	BASIP_LOAD_PROFILE=/tmp/basip BASIP_LOAD_DEVICES=10000 go test -count=1 -run TestProfile -v ./collector/loadtest
//	go tool pprof -top /tmp/basip.cpu
func TestProfile(t *testing.T) {
	prefix := os.Getenv("BASIP_LOAD_PROFILE")
	n := envInt("BASIP_LOAD_DEVICES", 0)
	if prefix == "" || n == 0 {
		t.Skip("set BASIP_LOAD_PROFILE=PATH-PREFIX and BASIP_LOAD_DEVICES=N to profile")
	}
	collect := os.Getenv("BASIP_LOAD_COLLECT")
	if collect == "" {
		collect = "[settings]"
	}
	latency := os.Getenv("BASIP_LOAD_LATENCY")
	if latency == "" {
		latency = "20ms"
	}
	scrapes := envInt("BASIP_LOAD_SCRAPES", 5)
	pbxs := envInt(pbxsEnv, 0)
	_, devices := startFleet(t, n, fleetOpts{latency: latency, pbxs: pbxs})
	y := exporterConfig(devices, "  timeout: 60s\n  min_poll_interval: 0s\n  collect: "+collect+"\n")
	if pbxs > 0 {
		y += pbxsConfig(t, n, pbxs)
	}
	cfg, err := config.Parse([]byte(y), "load.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := collector.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() {
		p := e.PollFleet(context.Background())
		bw := bufio.NewWriterSize(io.Discard, 64<<10)
		if err := p.WriteTo(bw); err != nil {
			t.Fatal(err)
		}
		_ = bw.Flush()
	}
	scrape() // logins and connections
	f, err := os.Create(prefix + ".cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range scrapes {
		scrape()
	}
	pprof.StopCPUProfile()
	t.Logf("%d steady scrapes of %d devices in %v", scrapes, n, time.Since(start).Round(time.Millisecond))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use %.1f MiB, sys %.1f MiB, goroutines %d", float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), runtime.NumGoroutine())
	h, err := os.Create(prefix + ".heap")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := pprof.Lookup("heap").WriteTo(h, 0); err != nil {
		t.Fatal(err)
	}
}
