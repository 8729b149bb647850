package collector

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
)

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
	r := config.NewReloader(func() (*config.Config, error) {
		if !good {
			return config.Parse([]byte("devices:\n  - name: x\n"), "bad.yaml", ".")
		}
		return config.Parse([]byte(f.yaml), "test.yaml", ".")
	}, f.exp.Apply, reg, slog.New(slog.DiscardHandler))

	good = false
	err := r.Reload()
	var cerr *config.Error
	if !errors.As(err, &cerr) || cerr.File != "bad.yaml" {
		t.Fatalf("reload error %v", err)
	}
	requireLine(t, f.scrape(t), `basip_up{device="p"} 1`)
	if v := gathered(t, reg, "basip_exporter_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful = %v after a failure", v)
	}
	good = true
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if v := gathered(t, reg, "basip_exporter_config_last_reload_successful"); v != 1 {
		t.Errorf("last_reload_successful = %v after success", v)
	}
}

// gathered is the value of the one gauge named name in reg.
func gathered(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
