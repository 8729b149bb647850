package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// TestLandingPageVendorColumnAndFilter: a mixed fleet's page has a vendor
// column and a vendor filter; a BAS-IP-only fleet's page has neither.
func TestLandingPageVendorColumnAndFilter(t *testing.T) {
	cfg := &config.Config{Devices: []*config.Device{{Name: "a", Vendor: "basip"}, {Name: "b", Vendor: "2n"}, {Name: "c", Vendor: "rubetek"}}}
	src := &fakeSource{cfg: cfg, statuses: []collector.DeviceStatus{
		{DeviceView: collector.DeviceView{Name: "a"}, Polled: true, Up: true}, {DeviceView: collector.DeviceView{Name: "b"}, Polled: true, Up: true},
		{DeviceView: collector.DeviceView{Name: "c"}, Polled: true, Reason: "auth"},
	}}
	h := newPages(src, PageOptions{}).landingHandler()
	doc := parse(t, get200(t, h, "/"))
	tab := table(t, doc, "devices")
	if got := strings.Join(tab.header, ","); !strings.HasPrefix(got, "device,vendor,") {
		t.Errorf("columns %s", got)
	}
	src.statuses[1].Auth, src.statuses[1].APIConfigured = "digest", "auto"
	doc = parse(t, get200(t, h, "/"))
	tab = table(t, doc, "devices")
	if !strings.Contains(tab.rows[1].text["api"], "digest") || strings.Contains(tab.rows[1].text["api"], "auto") {
		t.Errorf("a 2N device's API cell %q", tab.rows[1].text["api"])
	}
	if tab.rows[1].text["vendor"] != "2n" || tab.rows[2].text["vendor"] != "rubetek" {
		t.Errorf("vendor cells %v %v", tab.rows[1].text, tab.rows[2].text)
	}
	if page := get200(t, h, "/"); !strings.Contains(page, `<select name="vendor"`) || !strings.Contains(page, `<option value="rubetek">`) {
		t.Error("no vendor filter")
	}
	for query, want := range map[string]string{"?vendor=2n": "b", "?vendor=basip": "a", "?vendor=rubetek&state=down": "c", "?vendor=ufanet": ""} {
		var names []string
		for _, r := range table(t, parse(t, get200(t, h, "/"+query)), "devices").rows {
			if n := r.attr["data-device"]; n != "" {
				names = append(names, n)
			}
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("%s: rows %q, want %q", query, got, want)
		}
	}
	cfg.Devices = cfg.Devices[:1]
	src.statuses = src.statuses[:1]
	if page := get200(t, h, "/"); strings.Contains(page, `data-col="vendor"`) || strings.Contains(page, `name="vendor"`) {
		t.Error("a BAS-IP-only fleet shows the vendor column or filter")
	}
}

// TestSDVendor: /sd names each target's vendor.
func TestSDVendor(t *testing.T) {
	p, err := simulator.Serve(testutil.Panel("1", "udp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u, err := vendorsim.Serve(vendorsim.New("ufanet", testutil.User, testutil.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	y := fmt.Sprintf("credentials:\n  default: {username: %s, password: %q}\ndevices:\n  - {name: a, address: %s}\n  - {name: b, address: %s, vendor: ufanet, status_port: %d}\n",
		testutil.User, testutil.Password, p.URL, u.URL, u.StatusPort)
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
	if len(groups) != 2 || groups[0].Labels["__meta_basip_vendor"] != "basip" || groups[1].Labels["__meta_basip_vendor"] != "ufanet" {
		t.Errorf("groups %+v", groups)
	}
	// The debug view names the vendor instead of an API family.
	code, page, _ := get(t, srv.URL+"/debug?device=b")
	doc := parse(t, page)
	if code != 200 || text(byID(doc, "vendor")) != "ufanet" || byID(doc, "api") != nil || !strings.Contains(text(byID(doc, "result")), "up") {
		t.Errorf("debug view of a Ufanet device: %d vendor %q", code, text(byID(doc, "vendor")))
	}
	code, page, _ = get(t, srv.URL+"/debug?device=a")
	if doc := parse(t, page); code != 200 || byID(doc, "vendor") != nil || byID(doc, "api") == nil {
		t.Errorf("debug view of a BAS-IP device: %d", code)
	}
}
