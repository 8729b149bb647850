package collector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSD(t *testing.T) {
	f := startFleetWith(t, testPolicies, "",
		devSpec{name: "a", dev: panel("1", "udp"), extra: "    labels: {site: hq}\n"},
		devSpec{name: "b", dev: monitor("2", "tls"), extra: "    policy: lobby\n"},
	)
	srv := httptest.NewServer(f.exp.SDHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
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
		b["__meta_basip_api_version"] != "v0" || !strings.HasPrefix(a["__meta_basip_address"], "http://127.0.0.1:") {
		t.Errorf("labels %v %v", a, b)
	}
	for _, g := range groups {
		for k, v := range g.Labels {
			if strings.Contains(v, testPassword) || !strings.HasPrefix(k, "__meta_basip_") {
				t.Errorf("label %s=%s", k, v)
			}
		}
	}
	// Every target is one /probe accepts.
	for _, g := range groups {
		if code, body := f.get(t, "/probe?target="+g.Targets[0], ""); code != http.StatusOK {
			t.Errorf("probe %s: %d %s", g.Targets[0], code, body)
		}
	}
}
