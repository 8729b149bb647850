package collector

import (
	"strings"
	"testing"
	"time"
)

// TestDeviceConfigInfoForEveryDevice checks that basip_device_config_info
// names the vendor and the credentials set of every configured device
// from the configuration: for a device that answers, one that rejects
// the exporter's login, one nothing listens for, and in /probe, so that
// alerts and dashboards keep a device's vendor and credentials set while it
// cannot be read.
func TestDeviceConfigInfoForEveryDevice(t *testing.T) {
	f := startFleet(t, "  timeout: 1s\n",
		devSpec{name: "ok", dev: panel("1", "udp"), extra: "    labels: {site: hq}\n"},
		devSpec{name: "rejects", dev: panel("2", "udp"), extra: "    credentials: other\n    labels: {site: hq}\n"},
		devSpec{name: "dark", addr: "127.0.0.1:1", extra: "    vendor: akuvox\n    credentials: basic\n    labels: {site: annex}\n"},
	)
	out := f.scrapeWithin(t, 10*time.Second)
	want := []string{
		`# HELP basip_device_config_info The device's vendor and the name of its credentials set, from the configuration; always 1, whatever the device answered.`,
		`# TYPE basip_device_config_info gauge`,
		`basip_device_config_info{credentials="default",device="ok",site="hq",vendor="basip"} 1`,
		`basip_device_config_info{credentials="other",device="rejects",site="hq",vendor="basip"} 1`,
		`basip_device_config_info{credentials="basic",device="dark",site="annex",vendor="akuvox"} 1`,
	}
	requireLine(t, out, want[0])
	requireLine(t, out, want[1])
	if got := grep(out, "basip_device_config_info"); got != strings.Join(want[2:], "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want[2:], "\n"))
	}
	for _, l := range []string{`basip_up{device="ok",site="hq"} 1`, `basip_up{device="rejects",site="hq"} 0`, `basip_up{device="dark",site="annex"} 0`} {
		requireLine(t, out, l)
	}
	if strings.Contains(out, "Walrus") || strings.Contains(out, testPassword) {
		t.Error("a password in the exposition")
	}
	probe, err := f.probe(t, "dark", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	requireLine(t, probe, `basip_device_config_info{credentials="basic",device="dark",site="annex",vendor="akuvox"} 1`)
}
