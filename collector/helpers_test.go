package collector

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
)

const (
	testUser     = testutil.User
	testPassword = testutil.Password
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
	// api, when set, is the configured api_version instead of the
	// device's own.
	api string
}

// testFleet is a set of simulated devices on loopback and an exporter
// configured for them, served over HTTP.
type testFleet struct {
	servers map[string]*simulator.Server
	exp     *Exporter
	logs    *testutil.SyncBuffer
	yaml    string
}

func monitor(user, transport string) *simulator.Device { return testutil.Monitor(user, transport) }

func panel(user, transport string) *simulator.Device { return testutil.Panel(user, transport) }

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
	f := &testFleet{servers: map[string]*simulator.Server{}, logs: &testutil.SyncBuffer{}}
	var y strings.Builder
	if !strings.Contains(global, "collect:") {
		// Most tests are about the settings request alone.
		global += "  collect: [settings]\n"
	}
	if !strings.Contains(global, "min_poll_interval:") {
		// Most tests are about one scrape's poll: each scrape polls.
		global += "  min_poll_interval: 0s\n"
	}
	y.WriteString("global:\n" + global)
	fmt.Fprintf(&y, "credentials:\n  default:\n    username: %s\n    password: %q\n  other:\n    username: %s\n    password: %q\n",
		testUser, testPassword, testUser, otherPassword)
	// The default credentials with HTTP Basic, and with a lower-case MD5.
	fmt.Fprintf(&y, "  basic:\n    username: %s\n    password: %q\n    auth: basic\n  lower:\n    username: %s\n    password: %q\n    md5_case: lower\n%sdevices:\n",
		testUser, testPassword, testUser, testPassword, top)
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
		api := s.dev.APIVersion
		if s.api != "" {
			api = s.api
		}
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n%s", s.name, srv.URL, api, s.extra)
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
	t.Cleanup(f.exp.Close)
	return f
}

// scrapeWithin polls the whole fleet with a deadline of budget (none when
// zero) and returns the exposition.
func (f *testFleet) scrapeWithin(t testing.TB, budget time.Duration) string {
	t.Helper()
	return scrapeExporter(t, f.exp, budget)
}

// scrape polls the whole fleet without a deadline.
func (f *testFleet) scrape(t testing.TB) string {
	t.Helper()
	return f.scrapeWithin(t, 0)
}

// probe polls one device, named by target, with a deadline of budget (none
// when zero).
func (f *testFleet) probe(t testing.TB, target string, budget time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := budgetContext(budget)
	defer cancel()
	poll, err := f.exp.PollDevice(ctx, target)
	if err != nil {
		return "", err
	}
	return exposition(t, poll), nil
}

func budgetContext(budget time.Duration) (context.Context, context.CancelFunc) {
	if budget == 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), budget)
}

// scrapeExporter polls every device of exp within budget (none when zero)
// and returns the exposition.
func scrapeExporter(t testing.TB, exp *Exporter, budget time.Duration) string {
	t.Helper()
	ctx, cancel := budgetContext(budget)
	defer cancel()
	return exposition(t, exp.PollFleet(ctx))
}

func exposition(t testing.TB, poll *Poll) string {
	t.Helper()
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	if err := poll.WriteTo(bw); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var (
	requireLine     = testutil.RequireLine
	grep            = testutil.Grep
	serveTLSTrusted = testutil.ServeTLSTrusted
)

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

// newExporter loads configuration y and starts an exporter on it with
// logs discarded.
func newExporter(tb testing.TB, y []byte) *Exporter {
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
	return exp
}
