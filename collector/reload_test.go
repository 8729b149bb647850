package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/simulator"
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

func TestReloadThatChangesNothingKeepsBackoffTokenAndConnection(t *testing.T) {
	rejecting := panel("1", "udp")
	rejecting.SetPassword(otherPassword) // the configuration has testPassword
	good := panel("2", "udp")
	f := startFleet(t, "", devSpec{name: "p", dev: rejecting}, devSpec{name: "g", dev: good})
	requireLine(t, f.scrape(t), `basip_up{device="p"} 0`)
	for range 5 { // a script reloading in a loop, scrapes and debug views between
		applyYAML(t, f, f.yaml)
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="p"} 0`)
		requireLine(t, out, `basip_up{device="g"} 1`)
		if _, err := f.exp.DebugPoll(context.Background(), "p"); err != nil {
			t.Fatal(err)
		}
	}
	if got := rejecting.RejectedLogins.Load(); got != 1 {
		t.Errorf("the device rejected %d logins, want 1: reloads voided the back-off", got)
	}
	if got := good.Logins.Load(); got != 1 {
		t.Errorf("the unchanged device logged in %d times, want 1: its token was dropped", got)
	}
	if got := good.Connections.Load(); got != 1 {
		t.Errorf("the unchanged device saw %d connections, want 1: its connection was dropped", got)
	}
	requireLine(t, f.scrape(t), `basip_auth_failures_total{device="p"} 1`) // counters survive reloads
}

func TestReloadWithCorrectedPasswordTriesAtOnce(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetPassword(otherPassword)
	f := startFleet(t, "", devSpec{name: "p", dev: dev})
	requireLine(t, f.scrape(t), `basip_up{device="p"} 0`)
	requireLine(t, f.scrape(t), `basip_up{device="p"} 0`) // backing off: no login
	if got := dev.Logins.Load(); got != 1 {
		t.Fatalf("%d logins before the fix, want 1", got)
	}
	applyYAML(t, f, strings.Replace(f.yaml, "  - name: p\n", "  - name: p\n    credentials: other\n", 1))
	out := f.scrape(t)
	requireLine(t, out, `basip_up{device="p"} 1`)
	requireLine(t, out, `basip_auth_failures_total{device="p"} 1`)
	if got := dev.Logins.Load(); got != 2 {
		t.Errorf("%d logins, want 2: the corrected password was not tried at once", got)
	}
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

func TestReloadClosesConnectionsOfRemovedAndMovedDevices(t *testing.T) {
	var specs []devSpec
	var devs []*simulator.Device
	for i := range 20 {
		d := panel(fmt.Sprint(i), "udp")
		devs = append(devs, d)
		specs = append(specs, devSpec{name: fmt.Sprintf("d%02d", i), dev: d})
	}
	keep := panel("k", "udp")
	specs = append(specs, devSpec{name: "keep", dev: keep})
	f := startFleet(t, "", specs...)
	f.scrape(t)
	open := func() (n int64) {
		for _, d := range devs {
			n += d.OpenConnections()
		}
		return n
	}
	if got := open(); got != 20 {
		t.Fatalf("%d sockets open to the 20 devices after a scrape, want 20", got)
	}
	moved := panel("m", "udp") // d00's new address
	srv, err := simulator.Serve(moved)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	y := f.yaml[:strings.Index(f.yaml, "devices:\n")] + "devices:\n" +
		fmt.Sprintf("  - name: keep\n    address: %s\n    api_version: v1\n", f.servers["keep"].URL) +
		fmt.Sprintf("  - name: d00\n    address: %s\n    api_version: v1\n", srv.URL)
	applyYAML(t, f, y)
	for i := 0; open() != 0 && i < 200; i++ { // the devices see the close a moment later
		time.Sleep(10 * time.Millisecond)
	}
	if got := open(); got != 0 {
		t.Errorf("%d sockets still open to devices removed or moved by the reload", got)
	}
	if got := keep.OpenConnections(); got != 1 {
		t.Errorf("%d sockets open to the device the reload kept, want 1", got)
	}
}
