package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
)

func TestSD(t *testing.T) {
	var addrs []string
	for _, d := range []*simulator.Device{testutil.Panel("1", "udp"), testutil.Monitor("2", "tls")} {
		s, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		addrs = append(addrs, s.URL)
	}
	y := fmt.Sprintf(`credentials:
  default: {username: %s, password: %q}
policies:
  default: {transports: [udp]}
  lobby: {transports: [tls]}
devices:
  - name: a
    address: %s
    labels: {site: hq}
  - name: b
    address: %s
    api_version: v0
    policy: lobby
`, testutil.User, testutil.Password, addrs[0], addrs[1])
	_, srv, _ := serve(t, y, t.TempDir(), nil)
	resp, err := http.Get(srv.URL + "/sd")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var groups []sdGroup
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Targets[0] != "a" || groups[1].Targets[0] != "b" {
		t.Fatalf("groups %+v", groups)
	}
	a, b := groups[0].Labels, groups[1].Labels
	if a["__meta_basip_label_site"] != "hq" || a["__meta_basip_policy"] != "default" || b["__meta_basip_policy"] != "lobby" ||
		b["__meta_basip_api_version"] != "v0" || b["__meta_basip_api_family"] != "v0" || !strings.HasPrefix(a["__meta_basip_address"], "http://127.0.0.1:") {
		t.Errorf("labels %v %v", a, b)
	}
	for _, g := range groups {
		for k, v := range g.Labels {
			if strings.Contains(v, testutil.Password) || !strings.HasPrefix(k, "__meta_basip_") {
				t.Errorf("label %s=%s", k, v)
			}
		}
	}
	// Every target is one /probe accepts.
	for _, g := range groups {
		resp, err := http.Get(srv.URL + "/probe?target=" + g.Targets[0])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("probe %s: %d", g.Targets[0], resp.StatusCode)
		}
	}
}
