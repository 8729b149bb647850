// Package loadtest measures the exporter against a large simulated fleet on
// loopback: wall time of a /metrics scrape, the exporter process's CPU
// seconds and peak RSS, and the logins and new connections the simulated
// devices see once the exporter is warm.
//
// It runs only when asked:
//
//	BASIP_LOAD_DEVICES=10000 go test -run TestLoad -v -timeout 30m ./collector/loadtest
//
// Optional: BASIP_LOAD_LATENCY (default 20ms), BASIP_LOAD_SCRAPES (steady
// scrapes, default 5), BASIP_LOAD_COLLECT (default "[settings]"),
// BASIP_LOAD_CONCURRENCY (default: the exporter's), BASIP_LOAD_PROBES
// (probes measured, default 2000), BASIP_LOAD_PROBE_PARALLEL (probes in
// flight at once, default 32).
package loadtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
)

// devicesPerChild keeps a simulator process under the machine's open-file
// limit: each device holds a listener and an accepted connection.
const devicesPerChild = 2500

const (
	childEnv   = "BASIP_LOAD_CHILD"
	user       = "admin"
	password   = "Load-Test-Passw0rd"
	scrapeWait = 120 * time.Second
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// counts is what a simulator process's devices saw.
type counts struct {
	Logins, Connections, Requests int64
}

// runChild serves simulated devices until its standard input closes.
func runChild() int {
	n, _ := strconv.Atoi(os.Getenv(childEnv))
	latency, _ := time.ParseDuration(os.Getenv("BASIP_LOAD_LATENCY"))
	devs := make([]*simulator.Device, n)
	out := bufio.NewWriter(os.Stdout)
	for i := range n {
		d := &simulator.Device{Username: user, Password: password, APIVersion: "v1", Latency: latency}
		if i%2 == 0 {
			d.APIVersion = "v0"
			d.SetSettings(simulator.MonitorSettings(strconv.Itoa(100+i), "tls"))
		} else {
			d.SetSettings(simulator.PanelSettings(strconv.Itoa(100+i), "udp"))
		}
		d.SetStatus(simulator.Status("OK", time.Now().Unix()))
		d.SetInfo(simulator.Info(fmt.Sprintf("Flat %d", i), "AQ-07L", "monitor", "5.3.2", d.APIVersion))
		srv, err := simulator.Serve(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		devs[i] = d
		fmt.Fprintf(out, "DEVICE %s %s\n", srv.URL, d.APIVersion)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			var c counts
			for _, d := range devs {
				c.Logins += d.Logins.Load()
				c.Connections += d.Connections.Load()
				c.Requests += d.Requests.Load()
			}
			_ = json.NewEncoder(w).Encode(c)
		}))
	}()
	fmt.Fprintf(out, "CONTROL http://%s\nREADY\n", ln.Addr())
	out.Flush()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	control string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestLoad(t *testing.T) {
	n := envInt("BASIP_LOAD_DEVICES", 0)
	if n == 0 {
		t.Skip("set BASIP_LOAD_DEVICES=N to run the load measurement")
	}
	latency := os.Getenv("BASIP_LOAD_LATENCY")
	if latency == "" {
		latency = "20ms"
	}
	collect := os.Getenv("BASIP_LOAD_COLLECT")
	if collect == "" {
		collect = "[settings]"
	}
	scrapes := envInt("BASIP_LOAD_SCRAPES", 5)

	// The simulated fleet, in child processes.
	var children []*child
	var devices []string
	for start := 0; start < n; start += devicesPerChild {
		size := min(devicesPerChild, n-start)
		c, addrs := startChild(t, size, latency)
		children = append(children, c)
		devices = append(devices, addrs...)
	}
	t.Logf("%d simulated devices in %d processes, latency %s", len(devices), len(children), latency)

	// The exporter, in its own process.
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  timeout: 60s\n  collect: %s\n", collect)
	if c := envInt("BASIP_LOAD_CONCURRENCY", 0); c > 0 {
		fmt.Fprintf(&cfg, "  concurrency: %d\n", c)
	}
	fmt.Fprintf(&cfg, "credentials:\n  default:\n    username: %s\n    password: %s\ndevices:\n", user, password)
	for i, d := range devices {
		url, api, _ := strings.Cut(d, " ")
		fmt.Fprintf(&cfg, "  - name: dev-%05d\n    address: %s\n    api_version: %s\n", i, url, api)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "basip_exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	exp := exec.Command(bin, "--config.file="+cfgFile, "--web.listen-address="+addr, "--log.level=warn")
	var logs strings.Builder
	exp.Stdout, exp.Stderr = &logs, &logs
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Process.Kill(); _ = exp.Wait() })
	waitReady(t, "http://"+addr+"/-/ready")
	metrics := "http://" + addr + "/metrics"

	type row struct {
		wall          time.Duration
		cpu           time.Duration
		up            int
		bytes         int64
		logins, conns int64
	}
	measure := func() row {
		before := sum(t, children)
		cpu0 := cpuTime(t, exp.Process.Pid)
		start := time.Now()
		body, gz := scrape(t, metrics)
		r := row{wall: time.Since(start), cpu: cpuTime(t, exp.Process.Pid) - cpu0, bytes: gz}
		r.up = countUp(body)
		after := sum(t, children)
		r.logins, r.conns = after.Logins-before.Logins, after.Connections-before.Connections
		return r
	}
	warm := measure()
	t.Logf("warm-up scrape: wall %v, exporter CPU %v, up %d/%d, logins %d, new connections %d",
		warm.wall.Round(time.Millisecond), warm.cpu.Round(time.Millisecond), warm.up, n, warm.logins, warm.conns)
	var total row
	for i := range scrapes {
		r := measure()
		t.Logf("steady scrape %d: wall %v, exporter CPU %v (%.0f us/device), up %d/%d, %d bytes gzip, logins %d, new connections %d",
			i+1, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), float64(r.cpu.Microseconds())/float64(n), r.up, n, r.bytes, r.logins, r.conns)
		if r.up != n {
			t.Errorf("scrape %d: %d of %d devices up", i+1, r.up, n)
		}
		if r.logins != 0 || r.conns != 0 {
			t.Errorf("scrape %d: %d logins and %d new connections once warm, want none", i+1, r.logins, r.conns)
		}
		total.wall += r.wall
		total.cpu += r.cpu
	}
	// What the exporter costs doing nothing, to tell it from the probes' cost.
	idle0 := cpuTime(t, exp.Process.Pid)
	time.Sleep(5 * time.Second)
	idlePerSecond := float64(cpuTime(t, exp.Process.Pid)-idle0) / 5
	t.Logf("idle exporter CPU: %.1f ms per second", idlePerSecond/1e6)

	// Probes as Prometheus sends them with /sd: many targets at once.
	probes := envInt("BASIP_LOAD_PROBES", 2000)
	parallel := envInt("BASIP_LOAD_PROBE_PARALLEL", 32)
	probeStart := time.Now()
	cpu0 := cpuTime(t, exp.Process.Pid)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < probes; i = int(next.Add(1)) - 1 {
				body, err := fetch(fmt.Sprintf("http://%s/probe?target=dev-%05d", addr, i%n))
				if err != nil || countUp(body) != 1 {
					t.Errorf("probe of dev-%05d: %v\n%s", i%n, err, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	probeCPU := cpuTime(t, exp.Process.Pid) - cpu0
	probeWall := time.Since(probeStart)
	t.Logf("%d probes, %d at a time, in %v: exporter CPU %v, of which idle %v",
		probes, parallel, probeWall.Round(time.Millisecond), probeCPU, time.Duration(idlePerSecond*probeWall.Seconds()).Round(time.Millisecond))
	rss := peakRSS(t, exp.Process.Pid)
	t.Logf("RESULT devices=%d collect=%s latency=%s: mean steady scrape wall %v, exporter CPU %.0f us per device poll, %.0f us per probe, peak RSS %.1f MiB",
		n, collect, latency, (total.wall / time.Duration(scrapes)).Round(time.Millisecond),
		float64(total.cpu.Microseconds())/float64(scrapes*n), float64(probeCPU.Microseconds())/float64(probes), float64(rss)/(1<<20))
	if t.Failed() {
		t.Logf("exporter log:\n%s", tail(logs.String(), 4000))
	}
}

func startChild(t *testing.T, n int, latency string) (*child, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(n), "BASIP_LOAD_LATENCY="+latency)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "DEVICE "):
			addrs = append(addrs, strings.TrimPrefix(line, "DEVICE "))
		case strings.HasPrefix(line, "CONTROL "):
			c.control = strings.TrimPrefix(line, "CONTROL ")
		case line == "READY":
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return c, addrs
		}
	}
	t.Fatalf("simulator process ended before it was ready: %v", sc.Err())
	return nil, nil
}

func sum(t *testing.T, children []*child) counts {
	t.Helper()
	var total counts
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(c.control)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got counts
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total.Logins += got.Logins
			total.Connections += got.Connections
			total.Requests += got.Requests
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total
}

// scrape fetches url asking for gzip, as Prometheus does, and returns the
// decoded body and the bytes on the wire.
func scrape(t *testing.T, url string) (string, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %v %d", url, err, resp.StatusCode)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return string(raw), int64(len(raw))
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), int64(len(raw))
}

// fetch gets url's body.
func fetch(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

func countUp(body string) int {
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "basip_up{") && strings.HasSuffix(l, " 1") {
			n++
		}
	}
	return n
}

// cpuTime is the process's user plus system CPU time, from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// peakRSS is the process's high-water resident set size, from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for range 200 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
