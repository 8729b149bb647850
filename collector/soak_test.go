package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
)

// soakDuration is how long TestSoak runs: BASIP_SOAK as a Go duration, or
// a minute for any other non-empty value. The test is skipped without it.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("BASIP_SOAK")
	if v == "" {
		t.Skip("set BASIP_SOAK=60s (or =1) to run the soak test")
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return time.Minute
}

// soakDevice is one simulated device of the soak fleet.
type soakDevice struct {
	name    string
	dev     *simulator.Device
	srv     *simulator.Server // nil while the device is off the network
	tls     bool
	rotated bool // its credentials come from the rotated password file
	present bool // in the configuration
}

// soakFleet is a fleet whose configuration lives in a file, reloaded as
// the tests change it.
type soakFleet struct {
	t        *testing.T
	dir      string
	devices  []*soakDevice
	password string // of the password file
	exp      *Exporter
	reloader *config.Reloader
}

func (s *soakFleet) serve(d *soakDevice) {
	var err error
	if d.tls {
		d.srv, err = simulator.ServeTLS(d.dev)
	} else {
		d.srv, err = simulator.Serve(d.dev)
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// writeConfig writes the configuration of the present devices; one that
// is off the network keeps an address of its own that nothing listens on.
func (s *soakFleet) writeConfig() {
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  timeout: 500ms\n  concurrency: 8\n  collect: [settings]\ncredentials:\n  default:\n    username: %s\n    password_file: pw\n  other:\n    username: %s\n    password: %q\ndevices:\n",
		testUser, testUser, otherPassword)
	for i, d := range s.devices {
		if !d.present {
			continue
		}
		addr := fmt.Sprintf("http://127.0.0.1:%d", i+1) // one each: two devices may not share an address
		if d.srv != nil {
			addr = d.srv.URL
		}
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n", d.name, addr, d.dev.APIVersion)
		if !d.rotated {
			y.WriteString("    credentials: other\n")
		}
		if d.tls {
			y.WriteString("    tls_config: {insecure_skip_verify: true}\n")
		}
		fmt.Fprintf(&y, "    labels: {group: g%d}\n", len(d.name)%3)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.yaml"), []byte(y.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "pw"), []byte(s.password+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// scrape scrapes /metrics within the hostile tests' Prometheus timeout and
// checks that every configured device is in the answer.
func (s *soakFleet) scrape() {
	t := s.t
	start := time.Now()
	out := scrapeExporter(t, s.exp, hostileScrapeTimeout-500*time.Millisecond)
	if took := time.Since(start); took >= hostileScrapeTimeout {
		t.Errorf("scrape took %v, past the %v scrape timeout", took, hostileScrapeTimeout)
	}
	want := 0
	for _, d := range s.devices {
		if d.present {
			want++
			if !strings.Contains(out, fmt.Sprintf("basip_up{device=%q,", d.name)) {
				t.Errorf("device %s is configured but not in the scrape", d.name)
			}
		}
	}
	if got := strings.Count(out, "\nbasip_up{"); got != want {
		t.Errorf("%d basip_up series, want %d", got, want)
	}
}

// sample returns the goroutines and the heap in use after a GC.
func sample() (goroutines int, heap uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapInuse
}

// TestSoak scrapes a changing simulated fleet for BASIP_SOAK: devices join
// and leave the configuration, go off the network and come back on another
// port, misbehave in every way of the hostile-device tests, and the
// password of most of them rotates with a reload (of the password file,
// through the Reloader and POST /-/reload). Goroutines and heap must end
// where they started, and no goroutine may be left behind.
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	leakCheck(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d, duration %v", seed, duration)

	s := &soakFleet{t: t, dir: t.TempDir(), password: "Rotated-Pass-0"}
	for i := range 16 {
		var dev *simulator.Device
		if i%2 == 0 {
			dev = panel(fmt.Sprint(100+i), "udp")
		} else {
			dev = monitor(fmt.Sprint(100+i), "tcp")
		}
		d := &soakDevice{name: fmt.Sprintf("dev-%02d", i), dev: dev, tls: i%5 == 0, rotated: i%4 != 3, present: true}
		if d.rotated {
			dev.SetPassword(s.password)
		} else {
			dev.SetPassword(otherPassword)
		}
		dev.SetTrickleDelay(100 * time.Millisecond)
		dev.SetRawSettings([]byte(`{"timeout": "120"}`))
		dev.SetHugeBody(4<<20, false)
		s.serve(d)
		s.devices = append(s.devices, d)
	}
	t.Cleanup(func() {
		for _, d := range s.devices {
			if d.srv != nil {
				d.srv.Close()
			}
		}
	})
	s.writeConfig()
	cfgPath := filepath.Join(s.dir, "config.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.exp, err = New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	s.reloader = config.NewReloader(func() (*config.Config, error) { return config.Load(cfgPath) }, s.exp.Apply, prometheus.NewRegistry(), logger)
	t.Cleanup(s.exp.Close)

	// The steady state: every device present and well, scraped a few times.
	steady := func() {
		for _, d := range s.devices {
			d.present = true
			d.dev.SetFault(simulator.FaultNone)
			if d.srv == nil {
				s.serve(d)
			}
		}
		s.writeConfig()
		if err := s.reloader.Reload(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			s.scrape()
		}
	}
	steady()
	g0, h0 := sample()
	gMax, hMax := g0, h0

	faults := []simulator.Fault{simulator.FaultHang, simulator.FaultServerError, simulator.FaultTrickle, simulator.FaultTrickleHeaders,
		simulator.FaultUnauthorized, simulator.FaultHugeBody, simulator.FaultCloseMidBody, simulator.FaultRawSettings}
	var scrapes, probes, reloads, rotations, restarts int
	end := time.Now().Add(duration)
	for i := 0; i < 1_000_000 && time.Now().Before(end) && !t.Failed(); i++ {
		switch rng.IntN(10) {
		case 0: // a device leaves or joins the configuration
			d := s.devices[rng.IntN(len(s.devices))]
			d.present = !d.present
			s.writeConfig()
			if err := s.reloader.Reload(); err != nil {
				t.Fatal(err)
			}
			reloads++
		case 1: // a device goes off the network, or comes back on another port
			d := s.devices[rng.IntN(len(s.devices))]
			if d.srv != nil {
				d.srv.Close()
				d.srv = nil
			} else {
				s.serve(d)
				restarts++
				s.writeConfig()
				if err := s.reloader.Reload(); err != nil {
					t.Fatal(err)
				}
				reloads++
			}
		case 2: // the password rotates: devices first, the file and a reload after
			s.password = fmt.Sprintf("Rotated-Pass-%d", i)
			for _, d := range s.devices {
				if d.rotated {
					d.dev.SetPassword(s.password)
				}
			}
			s.scrape() // devices refuse the old password for a scrape
			scrapes++
			s.writeConfig()
			if err := s.reloader.Reload(); err != nil {
				t.Fatalf("reload: %v", err)
			}
			rotations++
			reloads++
		case 3, 4: // a device misbehaves, or stops misbehaving
			d := s.devices[rng.IntN(len(s.devices))]
			if rng.IntN(2) == 0 {
				d.dev.SetFault(faults[rng.IntN(len(faults))])
			} else {
				d.dev.SetFault(simulator.FaultNone)
			}
		case 5: // a probe
			d := s.devices[rng.IntN(len(s.devices))]
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			_, err := s.exp.PollDevice(ctx, d.name)
			cancel()
			if d.present != (err == nil) {
				t.Errorf("probe of %s (present %v): %v", d.name, d.present, err)
			}
			probes++
		}
		s.scrape()
		scrapes++
		if i%10 == 0 {
			g, h := sample()
			gMax, hMax = max(gMax, g), max(hMax, h)
		}
	}
	steady()
	g1, h1 := sample()
	const mib = 1 << 20
	t.Logf("%d scrapes, %d probes, %d reloads, %d password rotations, %d restarts", scrapes, probes, reloads, rotations, restarts)
	t.Logf("goroutines: %d at the start, %d at the end, %d at most", g0, g1, gMax)
	t.Logf("heap in use: %.1f MiB at the start, %.1f MiB at the end, %.1f MiB at most", float64(h0)/mib, float64(h1)/mib, float64(hMax)/mib)
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if h1 > h0+8*mib {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB", float64(h0)/mib, float64(h1)/mib)
	}
	if scrapes < 10 || reloads == 0 {
		t.Errorf("the soak did little: %d scrapes, %d reloads", scrapes, reloads)
	}
}
