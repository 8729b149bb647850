package collector

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testUser     = "admin"
	testPassword = "Zebra-Quartz-4417"
	// otherPassword is the password of credential set "other", which no
	// simulated device accepts unless a test sets it.
	otherPassword = "Walrus-Umbrella-9902"
)

// devSpec is one simulated device of a test fleet.
type devSpec struct {
	name  string
	dev   *simulator.Device
	tls   bool
	extra string // more YAML keys of the device entry, each line indented by 4
	// addr, when set, is configured as the device's address (API v1) and
	// dev is not served: for raw servers and addresses nothing listens on.
	addr string
}

// testFleet is a set of simulated devices on loopback and an exporter
// configured for them, served over HTTP.
type testFleet struct {
	servers map[string]*simulator.Server
	exp     *Exporter
	http    *httptest.Server
	logs    *syncBuffer
	yaml    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func monitor(user, transport string) *simulator.Device {
	d := &simulator.Device{Username: testUser, Password: testPassword, APIVersion: "v0"}
	d.SetSettings(simulator.MonitorSettings(user, transport))
	return d
}

func panel(user, transport string) *simulator.Device {
	d := &simulator.Device{Username: testUser, Password: testPassword, APIVersion: "v1"}
	d.SetSettings(simulator.PanelSettings(user, transport))
	return d
}

// startFleet serves the devices and an exporter over them. global is the
// YAML under `global:` (indented by 2), may be empty; unless it sets
// `collect`, devices are polled for their settings only.
func startFleet(t *testing.T, global string, specs ...devSpec) *testFleet {
	t.Helper()
	return startFleetWith(t, "", global, specs...)
}

// startFleetWith is startFleet with more top-level YAML (policies, say)
// placed before the devices.
func startFleetWith(t *testing.T, top, global string, specs ...devSpec) *testFleet {
	t.Helper()
	f := &testFleet{servers: map[string]*simulator.Server{}, logs: &syncBuffer{}}
	var y strings.Builder
	if !strings.Contains(global, "collect:") {
		// Most tests are about the settings request alone.
		global += "  collect: [settings]\n"
	}
	y.WriteString("global:\n" + global)
	fmt.Fprintf(&y, "credentials:\n  default:\n    username: %s\n    password: %q\n  other:\n    username: %s\n    password: %q\n%sdevices:\n",
		testUser, testPassword, testUser, otherPassword, top)
	for _, s := range specs {
		if s.addr != "" {
			fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: v1\n%s", s.name, s.addr, s.extra)
			continue
		}
		var srv *simulator.Server
		var err error
		if s.tls {
			srv, err = simulator.ServeTLS(s.dev)
		} else {
			srv, err = simulator.Serve(s.dev)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		f.servers[s.name] = srv
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n%s", s.name, srv.URL, s.dev.APIVersion, s.extra)
	}
	f.yaml = y.String()
	cfg, err := config.Parse([]byte(f.yaml), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatalf("config: %v\n%s", err, f.yaml)
	}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.exp, err = New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	opts := HandlerOpts{TimeoutOffset: 500 * time.Millisecond}
	mux.Handle("/metrics", f.exp.MetricsHandler(prometheus.NewRegistry(), opts))
	mux.Handle("/probe", f.exp.ProbeHandler(opts))
	f.http = httptest.NewServer(mux)
	t.Cleanup(f.http.Close)
	t.Cleanup(f.exp.Close)
	return f
}

// get fetches path from the exporter, with a scrape timeout header when
// timeout is not empty, and returns the status and body.
func (f *testFleet) get(t *testing.T, path, timeout string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if timeout != "" {
		req.Header.Set(ScrapeTimeoutHeader, timeout)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape fetches /metrics and fails the test unless it answers 200.
func (f *testFleet) scrape(t *testing.T) string {
	t.Helper()
	code, body := f.get(t, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", code, body)
	}
	return body
}

// hasLine reports whether the exposition has exactly this sample line.
func hasLine(exposition, line string) bool {
	for _, l := range strings.Split(exposition, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func requireLine(t *testing.T, exposition, line string) {
	t.Helper()
	if !hasLine(exposition, line) {
		t.Errorf("exposition lacks %q; got:\n%s", line, grep(exposition, "basip_"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// applyYAML loads a configuration and makes the fleet's exporter serve it.
func applyYAML(t *testing.T, f *testFleet, y string) {
	t.Helper()
	cfg, err := config.Parse([]byte(y), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	if err := f.exp.Apply(cfg); err != nil {
		t.Fatal(err)
	}
}

// serveExporter loads configuration y, starts an exporter on it with logs
// discarded, and serves its /metrics.
func serveExporter(tb testing.TB, y []byte) (*Exporter, *httptest.Server) {
	tb.Helper()
	cfg, err := config.Parse(y, "test.yaml", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	exp, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(exp.Close)
	srv := httptest.NewServer(exp.MetricsHandler(prometheus.NewRegistry(), HandlerOpts{}))
	tb.Cleanup(srv.Close)
	return exp, srv
}
