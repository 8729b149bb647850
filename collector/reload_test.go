package collector

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestScrapeBudget(t *testing.T) {
	cases := []struct {
		header string
		offset time.Duration
		want   time.Duration
		ok     bool
	}{
		{"", 500 * time.Millisecond, 0, false},
		{"10", 500 * time.Millisecond, 9500 * time.Millisecond, true},
		{"2.5", 0, 2500 * time.Millisecond, true},
		{"0.3", 500 * time.Millisecond, 300 * time.Millisecond, true}, // offset larger than the timeout is ignored
		{"abc", 500 * time.Millisecond, 0, false},
		{"-1", 0, 0, false},
		{"0", 0, 0, false},
	}
	for _, c := range cases {
		got, ok := ScrapeBudget(c.header, c.offset)
		if got != c.want || ok != c.ok {
			t.Errorf("ScrapeBudget(%q, %v) = %v, %v; want %v, %v", c.header, c.offset, got, ok, c.want, c.ok)
		}
	}
	cfg := &config.Config{Global: config.Global{Timeout: 10 * time.Second}}
	if got := deviceTimeout(cfg, 3*time.Second, true); got != 3*time.Second {
		t.Errorf("device timeout not capped by the scrape: %v", got)
	}
	if got := deviceTimeout(cfg, 30*time.Second, true); got != 10*time.Second {
		t.Errorf("device timeout not capped by global.timeout: %v", got)
	}
	if got := deviceTimeout(cfg, 0, false); got != 10*time.Second {
		t.Errorf("device timeout without header: %v", got)
	}
}

func TestReloadKeepsTokensOfUnchangedDevices(t *testing.T) {
	a, b := panel("1", "udp"), panel("2", "udp")
	f := startFleet(t, "", devSpec{name: "a", dev: a}, devSpec{name: "b", dev: b})
	f.scrape(t)
	// b's credentials change; a stays as it was.
	b.SetPassword(otherPassword)
	y := strings.Replace(f.yaml, "  - name: b\n", "  - name: b\n    credentials: other\n", 1)
	applyYAML(t, f, y)
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="a"} 1`)
	requireLine(t, out, `basip_up{device="b"} 1`)
	if got := a.Logins.Load(); got != 1 {
		t.Errorf("unchanged device logged in %d times, want 1: its token was dropped", got)
	}
	if got := b.Logins.Load(); got != 2 {
		t.Errorf("device with new credentials logged in %d times, want 2", got)
	}
}

func TestReloadResetsLoginBackoff(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetPassword("not-yet")
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	requireLine(t, f.scrape(t), `basip_up{device="p"} 0`)
	dev.SetPassword(testPassword)
	requireLine(t, f.scrape(t), `basip_up{device="p"} 0`) // backing off
	applyYAML(t, f, f.yaml)
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 1`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 1`) // counters survive the reload
}

func TestBadReloadKeepsServingOldConfig(t *testing.T) {
	f := startFleet(t, "", devSpec{name: "p", dev: panel("1", "udp")})
	reg := prometheus.NewRegistry()
	good := true
	r := NewReloader(func() (*config.Config, error) {
		if !good {
			return config.Parse([]byte("devices:\n  - name: x\n"), "bad.yaml", ".")
		}
		return config.Parse([]byte(f.yaml), "test.yaml", ".")
	}, f.exp, reg, slog.New(slog.DiscardHandler))

	good = false
	err := r.Reload()
	var cerr *config.Error
	if !errors.As(err, &cerr) || cerr.File != "bad.yaml" {
		t.Fatalf("reload error %v", err)
	}
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	if v := testutil.ToFloat64(r.success); v != 0 {
		t.Errorf("last_reload_successful = %v after a failure", v)
	}
	good = true
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(r.success); v != 1 {
		t.Errorf("last_reload_successful = %v after success", v)
	}
}
