package server

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// freePorts returns the first of n consecutive free ports on 127.0.0.1,
// below the ephemeral range so that no outgoing connection takes one
// meanwhile.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		first := 20000 + rand.IntN(10000)
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first+i)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			_ = ln.Close()
		}
		if len(lns) == n {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestDemoOnConsecutivePorts: with a first port, the demo's 18 devices
// answer on it and the ports after it, in the order they are listed, and
// the Ufanet device's status on the port after the last device; a
// configuration written by hand with those ports and the demo's
// credentials polls them like any device.
func TestDemoOnConsecutivePorts(t *testing.T) {
	first := freePorts(t, simulator.DemoPorts())
	demo, err := simulator.StartDemoWith(simulator.DemoOptions{FirstPort: first})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(demo.Close)
	if len(demo.Devices) != 18 || simulator.DemoPorts() != 20 {
		t.Errorf("%d devices on %d ports, want 18 on 20 (and the Ufanet status and the PBX)", len(demo.Devices), simulator.DemoPorts())
	}
	for i, d := range demo.Devices {
		u, err := url.Parse(d.URL)
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(first+i) {
			t.Errorf("device %d (%s) at %s, want 127.0.0.1:%d", i, d.Name, d.URL, first+i)
		}
		if !strings.Contains(string(demo.Config), "address: "+d.URL+"\n") {
			t.Errorf("the demo's configuration lacks %s at %s", d.Name, d.URL)
		}
		if want := 0; d.Vendor == "ufanet" {
			want = first + simulator.DemoPorts() - 2
			if d.StatusPort != want {
				t.Errorf("ufanet status port %d, want %d", d.StatusPort, want)
			}
		}
	}
	if _, err := simulator.StartDemoWith(simulator.DemoOptions{FirstPort: first}); err == nil || !strings.Contains(err.Error(), "panel-entrance") {
		t.Errorf("a second demo on the same ports: %v, want an error naming the device", err)
	}
	if _, err := simulator.StartDemoWith(simulator.DemoOptions{FirstPort: 65530}); err == nil {
		t.Error("a demo past port 65535 started")
	}

	y := fmt.Sprintf(`credentials:
  default: {username: %s, password: %s}
devices:
  - {name: my-panel, address: 127.0.0.1:%d}
  - {name: my-monitor, address: 127.0.0.1:%d, api_version: v0}
  - {name: my-ufanet, address: 127.0.0.1:%d, vendor: ufanet, status_port: %d}
  - {name: my-hikvision, address: 127.0.0.1:%d, vendor: hikvision}
`, simulator.DemoUsername, simulator.DemoPassword, first, first+1, first+16, first+18, first+17)
	_, srv, _ := serve(t, y, t.TempDir(), nil)
	for _, name := range []string{"my-panel", "my-monitor", "my-ufanet", "my-hikvision"} {
		_, body, _ := get(t, srv.URL+"/probe?target="+name)
		if !strings.Contains(body, `basip_up{device="`+name+`"} 1`+"\n") {
			t.Errorf("%s is not up:\n%s", name, body)
		}
	}
}
