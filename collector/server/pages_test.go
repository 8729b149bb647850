package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"golang.org/x/net/html"
)

const (
	user          = "admin"
	password      = "Heron-Lantern-5521"
	filePassword  = "Otter-Basalt-7310"
	stalePassword = "Moth-Anvil-2208"
)

// fleet is simulated devices and an exporter over them, with the pages.
type fleet struct {
	devices map[string]*simulator.Device
	exp     *collector.Exporter
	srv     *httptest.Server // the pages plus /metrics
}

// startFleet serves: "monitor" (v0, SIP password in clear, tcp), "panel"
// (v1, udp), "wss" (an undocumented transport), "stale" (wrong password)
// and "gone" (nothing listens). The monitor's credentials come from a
// password file.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{devices: map[string]*simulator.Device{}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(filePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  timeout: 2s\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: %s\n    password: %q\n  file:\n    username: %s\n    password_file: pw\n  stale:\n    username: %s\n    password: %q\ndevices:\n",
		user, password, user, user, stalePassword)
	add := func(name, api, creds string, settings map[string]any) {
		pw := password
		if creds == "file" {
			pw = filePassword
		}
		d := &simulator.Device{Username: user, Password: pw, APIVersion: api}
		d.SetSettings(settings)
		s, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		f.devices[name] = d
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n", name, s.URL, api)
		if creds != "" {
			fmt.Fprintf(&y, "    credentials: %s\n", creds)
		}
	}
	add("monitor", "v0", "file", simulator.MonitorSettings("101", "tcp"))
	add("panel", "v1", "", simulator.PanelSettings("100", "udp"))
	add("wss", "v0", "", simulator.MonitorSettings("104", "wss"))
	add("stale", "v1", "stale", simulator.PanelSettings("200", "udp"))
	fmt.Fprintf(&y, "  - name: gone\n    address: %s\n", closedAddress(t))

	f.exp, f.srv, _ = serve(t, y.String(), dir, nil)
	return f
}

// closedAddress is a loopback address that hangs up on every connection.
// It stays bound for the test, so no other server can take the port.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// get is do with GET.
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	return do(t, http.MethodGet, url)
}

// secretForms are the ways a password may leak: as is, and as the MD5 the
// login sends, in both cases.
var secretForms = testutil.SecretForms

func TestLandingPageBeforeAnyPoll(t *testing.T) {
	f := startFleet(t)
	code, body, hdr := get(t, f.srv.URL+"/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", code, hdr.Get("Content-Type"))
	}
	doc := parse(t, body)
	tab := table(t, doc, "devices")
	if got := strings.Join(tab.header, ","); got != "device,state" {
		t.Errorf("columns before any poll = %s, want device,state (the others are empty)", got)
	}
	if len(tab.rows) != 5 {
		t.Fatalf("%d rows, want 5", len(tab.rows))
	}
	for _, r := range tab.rows {
		if r.attr["data-state"] != "pending" || r.text["state"] != "not polled yet" {
			t.Errorf("row %v before any poll", r)
		}
	}
	if s := text(byID(doc, "summary")); !strings.Contains(s, "5 devices: 0 up, 0 down, 5 not polled yet") {
		t.Errorf("summary: %q", s)
	}
}

func TestLandingPageShowsEveryDevice(t *testing.T) {
	f := startFleet(t)
	if code, _, _ := get(t, f.srv.URL+"/metrics"); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	code, body, _ := get(t, f.srv.URL+"/")
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	doc := parse(t, body)
	tab := table(t, doc, "devices")
	if got := strings.Join(tab.header, ","); got != "device,state,down_since,sip,transport,password,api,error,last_poll" {
		t.Errorf("columns = %s", got)
	}
	want := map[string]struct{ state, sip, transport, err string }{
		"monitor": {"up", "enabled", "tcp", "–"},
		"panel":   {"up", "–", "udp", "–"},
		"wss":     {"up", "enabled", "wss", "–"},
		"stale":   {"down", "–", "–", "Login rejected: wrong user name or password"},
		"gone":    {"down", "–", "–", "Cannot connect to the device"},
	}
	var order []string
	for _, r := range tab.rows {
		name := r.attr["data-device"]
		order = append(order, name)
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected row %q", name)
			continue
		}
		if r.text["state"] != w.state || r.text["sip"] != w.sip || r.text["transport"] != w.transport || !strings.HasPrefix(r.text["error"], w.err) {
			t.Errorf("row %s = %v, want %+v", name, r.text, w)
		}
		if href := r.href["device"]; href != "debug?device="+name {
			t.Errorf("row %s links to %q", name, href)
		}
		if lp := r.text["last_poll"]; !strings.Contains(lp, " UTC, took ") || !(strings.HasPrefix(lp, "just now") || strings.Contains(lp, " ago ")) {
			t.Errorf("row %s last poll %q", name, r.text["last_poll"])
		}
	}
	if got := strings.Join(order, ","); got != "monitor,panel,wss,stale,gone" {
		t.Errorf("rows in order %s, want configuration order", got)
	}
	// The error column says what happened in words, then the error itself.
	for _, r := range tab.rows {
		if r.attr["data-device"] == "stale" && !strings.Contains(r.text["error"], "rejected the credentials") {
			t.Errorf("stale error cell %q lacks the error text", r.text["error"])
		}
		if r.attr["data-device"] == "wss" && r.class["transport"] != "warn" {
			t.Errorf("an undocumented transport is not flagged: class %q", r.class["transport"])
		}
		// Monitors send the SIP password in clear, panels mask it.
		if exposed := r.text["password"] == "exposed"; exposed != (r.attr["data-device"] == "monitor" || r.attr["data-device"] == "wss") {
			t.Errorf("row %s: password cell %q", r.attr["data-device"], r.text["password"])
		}
		if api := r.text["api"]; !strings.HasPrefix(api, "v") || !strings.HasSuffix(api, "token") {
			t.Errorf("row %s: api cell %q", r.attr["data-device"], api)
		}
	}
	if s := text(byID(doc, "summary")); !strings.Contains(s, "5 devices: 3 up, 2 down.") {
		t.Errorf("summary: %q", s)
	}
	for _, href := range []string{"metrics", "config"} {
		if findLink(doc, href) == nil {
			t.Errorf("no link to %s", href)
		}
	}
	if form := find(doc, func(n *html.Node) bool { return n.Data == "form" && attr(n, "action") == "probe" }); form == nil {
		t.Error("no probe form")
	}
	if !strings.Contains(body, "Version: test-version") {
		t.Error("no version")
	}
}

// TestOptionalColumn shows that a column appears only when some device has
// a value for it, the way policy compliance will.
func TestOptionalColumn(t *testing.T) {
	saved := columns
	t.Cleanup(func() { columns = saved })
	yes, no := true, false
	compliance := map[string]*bool{"a": &yes, "b": &no}
	columns = append(append([]column(nil), saved...), column{"policy", "Policy", func(s collector.DeviceStatus, _ time.Time) cell {
		return boolCell(compliance[s.Name], "compliant", "violated")
	}})
	src := &fakeSource{statuses: []collector.DeviceStatus{
		{DeviceView: collector.DeviceView{Name: "a"}, Polled: true, Up: true}, {DeviceView: collector.DeviceView{Name: "b"}, Polled: true, Up: true}, {DeviceView: collector.DeviceView{Name: "c"}},
	}}
	tab := table(t, parse(t, get200(t, newPages(src, PageOptions{}).landingHandler(), "/")), "devices")
	if tab.header[len(tab.header)-1] != "policy" {
		t.Fatalf("columns %v: no policy column", tab.header)
	}
	got := []string{tab.rows[0].text["policy"], tab.rows[1].text["policy"], tab.rows[2].text["policy"]}
	if strings.Join(got, ",") != "compliant,violated,–" {
		t.Errorf("policy cells %v", got)
	}
	compliance = nil
	tab = table(t, parse(t, get200(t, newPages(src, PageOptions{}).landingHandler(), "/")), "devices")
	for _, h := range tab.header {
		if h == "policy" {
			t.Errorf("the policy column shows though no device has a policy: %v", tab.header)
		}
	}
}

func TestDebugPageRedactsSecrets(t *testing.T) {
	f := startFleet(t)
	get(t, f.srv.URL+"/metrics")
	mon := f.devices["monitor"]
	tokensBefore := mon.Tokens()
	mon.ExpireTokens() // the debug poll gets a 401, logs in again and retries
	code, body, _ := get(t, f.srv.URL+"/debug?device=monitor")
	if code != 200 {
		t.Fatalf("debug: %d\n%s", code, body)
	}
	doc := parse(t, body)
	var steps []string
	for _, tr := range findAll(byID(doc, "requests"), func(n *html.Node) bool { return n.Data == "tr" }) {
		var cells []string
		for _, td := range findAll(tr, func(n *html.Node) bool { return n.Data == "td" }) {
			cells = append(cells, text(td))
		}
		if len(cells) == 7 {
			steps = append(steps, cells[1]+" "+cells[2]+" "+cells[3])
		}
	}
	want := "GET /api/v0/device/sip/settings 401|GET /api/v0/login 200|GET /api/v0/device/sip/settings 200"
	if got := strings.Join(steps, "|"); got != want {
		t.Errorf("requests:\n%s\nwant\n%s", got, want)
	}
	settings := text(byID(doc, "settings"))
	if !strings.Contains(settings, `"password": "<secret>"`) || !strings.Contains(settings, `"transport": "tcp"`) {
		t.Errorf("settings:\n%s", settings)
	}
	for _, id := range []string{"status", "info"} { // the fleet collects settings only
		if got := text(byID(doc, id)); got != "Not read in this poll: not collected." {
			t.Errorf("#%s: %q", id, got)
		}
	}
	if series := text(byID(doc, "series")); !strings.Contains(series, `basip_up{device="monitor"} 1`) {
		t.Errorf("series:\n%s", series)
	}
	if r := text(byID(doc, "result")); r != "up" {
		t.Errorf("result %q", r)
	}
	secrets := append(append(secretForms(filePassword), secretForms("s1p-101-pass")...), append(tokensBefore, mon.Tokens()...)...)
	if len(mon.Tokens()) == 0 {
		t.Fatal("the device issued no token; the check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(body, s) || strings.Contains(html.UnescapeString(body), s) {
			t.Errorf("the debug page shows a secret (%.4s...)", s)
		}
	}

	// A failing device: the login's status is shown, nothing else is sent.
	_, body, _ = get(t, f.srv.URL+"/debug?device=stale")
	doc = parse(t, body)
	if r := text(byID(doc, "result")); !strings.HasPrefix(r, "down") || !strings.Contains(r, "rejected") {
		t.Errorf("stale result %q", r)
	}
	for _, s := range secretForms(stalePassword) {
		if strings.Contains(body, s) {
			t.Errorf("the debug page shows the rejected password")
		}
	}
}

func TestDebugPageErrors(t *testing.T) {
	f := startFleet(t)
	for path, want := range map[string]int{
		"/debug":                  http.StatusBadRequest,
		"/debug?device=nope":      http.StatusNotFound,
		"/debug?device=%3Cb%3E":   http.StatusNotFound,
		"/nope":                   http.StatusNotFound,
		"/debug?device=panel":     http.StatusOK,
		"/debug?device=gone":      http.StatusOK,
		"/config":                 http.StatusOK,
		"/?unused=query":          http.StatusOK,
		"/debug/?device=whatever": http.StatusNotFound,
	} {
		if code, body, _ := get(t, f.srv.URL+path); code != want {
			t.Errorf("GET %s = %d, want %d\n%s", path, code, want, body)
		}
	}
	resp, err := http.Post(f.srv.URL+"/debug?device=panel", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug = %d", resp.StatusCode)
	}
}

func TestDeviceNamesAreEscaped(t *testing.T) {
	name := `<b>x</b>&"y' z`
	src := &fakeSource{statuses: []collector.DeviceStatus{{DeviceView: collector.DeviceView{Name: name, Address: "http://192.0.2.1:80"}, Polled: true, LastError: "<i>bad</i>", Reason: "decode"}}}
	body := get200(t, newPages(src, PageOptions{}).landingHandler(), "/")
	if strings.Contains(body, "<b>x</b>") || strings.Contains(body, "<i>bad</i>") {
		t.Fatalf("markup from a device name or error is not escaped:\n%s", body)
	}
	tab := table(t, parse(t, body), "devices")
	r := tab.rows[0]
	if r.attr["data-device"] != name || !strings.HasPrefix(r.text["device"], name) {
		t.Errorf("row %v", r)
	}
	if r.href["device"] != "debug?device=%3Cb%3Ex%3C%2Fb%3E%26%22y%27+z" {
		t.Errorf("link %q", r.href["device"])
	}
	if !strings.Contains(r.text["error"], "Answer not understood") || !strings.Contains(r.text["error"], "<i>bad</i>") {
		t.Errorf("error %q", r.text["error"])
	}
}

func TestFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Microsecond:  "0.3ms",
		12 * time.Millisecond:   "12ms",
		1500 * time.Millisecond: "1.50s",
		123 * time.Second:       "2m3s",
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		time.Millisecond:            "just now",
		42 * time.Second:            "42s ago",
		3*time.Minute + time.Second: "3m01s ago",
		5*time.Hour + 7*time.Minute: "5h07m ago",
		72 * time.Hour:              "3 days ago",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

type fakeSource struct {
	statuses []collector.DeviceStatus
	cfg      *config.Config
}

func (f *fakeSource) Statuses() []collector.DeviceStatus { return f.statuses }
func (f *fakeSource) DebugPoll(context.Context, string) (*collector.DebugReport, error) {
	return nil, collector.ErrUnknownTarget
}
func (f *fakeSource) Config() *config.Config {
	if f.cfg == nil {
		return &config.Config{}
	}
	return f.cfg
}

func get200(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s = %d\n%s", path, rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// TestLandingPageSortsAndFilters: label columns, "down since", filters by
// state, label and text, and sorting by any column, all without a script.
func TestLandingPageSortsAndFilters(t *testing.T) {
	now := time.Now()
	src := &fakeSource{
		cfg: &config.Config{LabelNames: []string{"site"}},
		statuses: []collector.DeviceStatus{
			{DeviceView: collector.DeviceView{Name: "a", Labels: map[string]string{"site": "hq"}}, Polled: true, Up: true},
			{DeviceView: collector.DeviceView{Name: "b", Labels: map[string]string{"site": "tower"}}, Polled: true, Reason: "timeout", LastError: "no answer", DownSince: now.Add(-time.Hour)},
			{DeviceView: collector.DeviceView{Name: "c", Labels: map[string]string{"site": "hq"}}, Polled: true, Reason: "auth", LastError: "rejected", DownSince: now.Add(-2 * time.Hour)},
			{DeviceView: collector.DeviceView{Name: "d"}},
		},
	}
	h := newPages(src, PageOptions{}).landingHandler()
	view := func(query string) (deviceTable, *html.Node) {
		t.Helper()
		doc := parse(t, get200(t, h, "/"+query))
		return table(t, doc, "devices"), doc
	}
	names := func(tab deviceTable) string {
		var n []string
		for _, r := range tab.rows {
			n = append(n, r.attr["data-device"])
		}
		return strings.Join(n, ",")
	}
	tab, doc := view("")
	if got := strings.Join(tab.header, ","); got != "device,label_site,state,down_since,error,last_poll" {
		t.Errorf("columns %s", got)
	}
	if tab.rows[1].text["label_site"] != "tower" || !strings.HasPrefix(tab.rows[1].text["down_since"], "for 1h00m") {
		t.Errorf("row b: %v", tab.rows[1].text)
	}
	if s := text(byID(doc, "summary")); !strings.Contains(s, "4 devices: 1 up, 2 down, 1 not polled yet.") {
		t.Errorf("summary %q", s)
	}
	for query, want := range map[string]string{
		"?state=down":                 "b,c",
		"?label=site%3Dhq":            "a,c",
		"?q=REJECT":                   "c",
		"?q=tower":                    "b",
		"?state=down&label=site%3Dhq": "c",
		"?sort=down_since":            "a,d,c,b", // no date first (in configuration order), then the oldest fall
		"?sort=down_since&desc=1":     "b,c,a,d",
		"?sort=device&desc=1":         "d,c,b,a",
		"?state=up&q=nothing":         "",
	} {
		tab, doc := view(query)
		if got := names(tab); got != want {
			t.Errorf("%s: rows %q, want %q", query, got, want)
		}
		if want != "" && want != "a,b,c,d" && strings.Count(want, ",")+1 < 4 && !strings.Contains(text(byID(doc, "summary")), "shown") {
			t.Errorf("%s: the summary does not say a filter hides devices", query)
		}
	}
	// A header sorts by its column, keeping the filter; clicked again, it
	// reverses.
	tab, doc = view("?state=down&sort=device")
	var links []string
	for _, a := range findAll(byID(doc, "devices"), func(n *html.Node) bool { return n.Data == "a" && strings.HasPrefix(attr(n, "href"), "./?") }) {
		links = append(links, attr(a, "href"))
	}
	if !slices.Contains(links, "./?desc=1&sort=device&state=down") || !slices.Contains(links, "./?sort=down_since&state=down") {
		t.Errorf("header links %v", links)
	}
	if names(tab) != "b,c" {
		t.Errorf("rows %s", names(tab))
	}
}
