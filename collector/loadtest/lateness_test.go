package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// spinLimit bounds a CPU spinner child however the test ends.
const spinLimit = 5 * time.Minute

// runSpin keeps every CPU busy until its standard input closes, or for
// spinLimit at most.
func runSpin() int {
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	for range runtime.NumCPU() {
		go func() {
			x := uint64(1)
			for {
				for range 1 << 20 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	select {
	case <-stop:
	case <-time.After(spinLimit):
	}
	return 0
}

// startSpin starts a child that keeps every CPU busy; the returned func
// stops it.
func startSpin(t *testing.T) func() {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), spinEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = stdin.Close()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// promTimeout is the scrape timeout the lateness test sends, as Prometheus
// does in X-Prometheus-Scrape-Timeout-Seconds: 10 s, or
// BASIP_LOAD_LATENESS_TIMEOUT.
var promTimeout = 10 * time.Second

// TestLateness measures how late /metrics answers come when some devices
// hang, so that scrapes run to their deadline: lateness is when the last
// byte of the answer arrived less (the request's time + the scrape
// timeout), positive when Prometheus would have given up. It prints
// figures and asserts only that every device is in every answer.
//
//	BASIP_LOAD_LATENESS=2000,10000 go test -count=1 -run TestLateness -v -timeout 60m ./collector/loadtest
//
// BASIP_LOAD_LATENESS_TIMEOUT sets the header (10s by default),
// BASIP_LOAD_LATENESS_OFFSETS the offsets tried ("default,0s").
func TestLateness(t *testing.T) {
	sizes := os.Getenv("BASIP_LOAD_LATENESS")
	if sizes == "" {
		t.Skip("set BASIP_LOAD_LATENESS=N[,N...] to run the lateness measurement")
	}
	if v := os.Getenv("BASIP_LOAD_LATENESS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("BASIP_LOAD_LATENESS_TIMEOUT: %q", v)
		}
		promTimeout = d
	}
	scrapes := envInt("BASIP_LOAD_LATENESS_SCRAPES", 10)
	hangEvery := envInt("BASIP_LOAD_HANG_EVERY", 20)
	latency := os.Getenv("BASIP_LOAD_LATENCY")
	if latency == "" {
		latency = "20ms"
	}
	bin := buildExporter(t)
	var summary strings.Builder
	fmt.Fprintf(&summary, "\nLATENESS (ms) of /metrics answers, scrape timeout header %v, 1 in %d devices hanging, %d scrapes each\n", promTimeout, hangEvery, scrapes)
	fmt.Fprintf(&summary, "| %7s | %-14s | %-13s | %8s | %8s | %8s | %9s | %-17s |\n", "devices", "timeout-offset", "CPU", "median", "max", "min", "down/scr.", "load avg before")
	for _, field := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			t.Fatalf("BASIP_LOAD_LATENESS: %q", field)
		}
		children, devices := startFleet(t, n, fleetOpts{latency: latency, hangEvery: hangEvery})
		t.Logf("%d simulated devices in %d processes, latency %s, %d hanging", n, len(children), latency, n/hangEvery)
		cfg := exporterConfig(devices, "  collect: [settings]\n")
		offsets := []string{"", "0s"}
		if v := os.Getenv("BASIP_LOAD_LATENESS_OFFSETS"); v != "" {
			offsets = strings.Split(strings.ReplaceAll(v, "default", ""), ",")
		}
		for _, offset := range offsets {
			name := "0.5s (default)"
			var flags []string
			if offset != "" {
				name = offset
				flags = append(flags, "--scrape.timeout-offset="+offset)
			}
			exp := startExporter(t, bin, cfg, flags...)
			url := "http://" + exp.addr + "/metrics"
			// The first scrape logs in everywhere; shown, not counted.
			r := lateScrape(t, url)
			t.Logf("n=%d offset=%s first scrape: lateness %v, down %d, %d devices", n, name, r.lateness.Round(time.Millisecond), r.down, r.devices)
			for _, spin := range []bool{false, true} {
				cpu := "idle"
				var stop func()
				if spin {
					cpu = "saturated"
					stop = startSpin(t)
					time.Sleep(time.Second)
				}
				load := loadAvg()
				var late []time.Duration
				downs := 0
				for i := range scrapes {
					r := lateScrape(t, url)
					if r.devices != n {
						t.Errorf("n=%d offset=%s cpu=%s scrape %d: %d devices in the answer, want %d", n, name, cpu, i+1, r.devices, n)
					}
					t.Logf("n=%d offset=%s cpu=%s scrape %d: lateness %v, answer took %v, down %d",
						n, name, cpu, i+1, r.lateness.Round(time.Millisecond), r.took.Round(time.Millisecond), r.down)
					late = append(late, r.lateness)
					downs += r.down
				}
				if stop != nil {
					stop()
				}
				slices.Sort(late)
				fmt.Fprintf(&summary, "| %7d | %-14s | %-13s | %8.0f | %8.0f | %8.0f | %9d | %-17s |\n", n, name, cpu,
					ms(late[len(late)/2]), ms(late[len(late)-1]), ms(late[0]), downs/scrapes, load)
			}
			exp.stop()
		}
		for _, c := range children {
			_ = c.stdin.Close()
			_ = c.cmd.Wait()
		}
	}
	fmt.Fprintf(&summary, "load average at end: %s\n", loadAvg())
	t.Log(summary.String())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type lateResult struct {
	lateness, took time.Duration
	devices, down  int
}

// lateScrape sends one scrape as Prometheus does, with its timeout header,
// and times the arrival of the answer's last byte.
func lateScrape(t *testing.T, url string) lateResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*promTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(promTimeout.Seconds(), 'f', -1, 64))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	end := time.Now()
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %v %d", url, err, resp.StatusCode)
	}
	body := raw
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	r := lateResult{lateness: end.Sub(start.Add(promTimeout)), took: end.Sub(start)}
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "basip_up{") {
			r.devices++
			if strings.HasSuffix(l, " 0") {
				r.down++
			}
		}
	}
	return r
}
