package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

// TestPBXViewOverKamailio sets the PBX's view beside the devices' over a
// real Kamailio: four simulated panels register their accounts with it
// for real and report what their registration gives (door-5 from behind a
// NAT), door-4 points to a proxy that is none of the configured PBXs. Then, as on-call sees them:
//   - all agree: the PBX answers OPTIONS, its registrar holds the four
//     contacts, each from its device's own address (door-5's from the
//     NAT address its sip_source names);
//   - a second box registers the account of door-2 from another address:
//     door-2 is foreign, the others still registered;
//   - door-3 stops registering while its API keeps saying registered: its
//     contact expires at the registrar and it is missing there;
//   - Kamailio stops: the PBX is down on both counts, no registration
//     state is claimed, and the devices themselves turn unregistered;
//   - Kamailio starts again: the devices register again and the PBX
//     holds them.
func TestPBXViewOverKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio: skipped with -short")
	}
	k := kamailiotest.Start(t, kamailiotest.Options{TimerInterval: time.Second})
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  timeout: 2s\n  min_poll_interval: 0s\n  collect: [settings, status]\ncredentials:\n  default: {username: %s, password: %s}\ndevices:\n", testutil.User, testutil.Password)
	doors := map[string]*simulator.Device{}
	for i, user := range []string{"2001", "2002", "2003", "2004", "2005"} {
		name := fmt.Sprintf("door-%d", i+1)
		d := testutil.Panel(user, "udp")
		s := simulator.PanelSettings(user, "udp")
		s["proxy"] = "sip:" + k.SIPAddr
		s["password"] = "WebPass"
		if i == 3 {
			s["proxy"] = "sip:other-pbx.example.net"
		}
		d.SetSettings(s)
		d.SetStatus(simulator.Status("OK", time.Now().Unix())) // what the registration replaces, for doors 1-3
		reg := simulator.SIPRegistration{Expires: 3 * time.Second, RetryAfter: 500 * time.Millisecond, Timeout: time.Second}
		extra := ""
		if i == 4 { // behind a NAT whose address the registrar sees
			reg.LocalIP, extra = "127.0.0.3", "    sip_source: [127.0.0.3]\n"
		}
		if i != 3 {
			if err := d.RegisterSIP(reg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.StopSIP)
		}
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		doors[name] = d
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: v1\n    labels: {site: site-%d}\n%s", name, srv.URL, i+1, extra)
	}
	fmt.Fprintf(&y, "pbxs:\n  - name: pbx-k\n    sip: udp://%s\n    registrar: {type: kamailio, url: %q}\n", k.SIPAddr, k.RPCURL)
	_, srv, _ := serve(t, y.String(), t.TempDir(), nil)

	scrape := func() string {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// waitFor scrapes until every line is in the exposition and none of
	// absent is, for at most 20 s.
	waitFor := func(step string, lines []string, absent ...string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			body := scrape()
			var missing []string
			for _, l := range lines {
				if !testutil.HasLine(body, l) {
					missing = append(missing, l)
				}
			}
			for _, a := range absent {
				if strings.Contains(body, a) {
					missing = append(missing, "absent: "+a)
				}
			}
			if len(missing) == 0 {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after 20 s, still not %q\n%s\nKamailio contacts: %s", step, missing, testutil.Grep(body, "door-"), k.Dump(t))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	state := func(door, site, st string) []string {
		var out []string
		for _, s := range []string{"registered", "foreign", "missing"} {
			v := 0
			if s == st {
				v = 1
			}
			out = append(out, fmt.Sprintf(`basip_pbx_registration{device=%q,pbx="pbx-k",site=%q,state=%q} %d`, door, site, s, v))
		}
		return out
	}
	all := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	body := waitFor("all registered", all(
		[]string{`basip_pbx_sip_up{pbx="pbx-k"} 1`, `basip_pbx_up{pbx="pbx-k"} 1`, `basip_pbx_registrations{pbx="pbx-k"} 4`,
			`basip_device_pbx{device="door-1",pbx="pbx-k",site="site-1"} 1`, `basip_sip_proxy_known{device="door-1",site="site-1"} 1`,
			`basip_sip_proxy_known{device="door-4",site="site-4"} 0`,
			`basip_sip_registered{device="door-1",site="site-1"} 1`, `basip_sip_registered{device="door-3",site="site-3"} 1`},
		state("door-1", "site-1", "registered"), state("door-2", "site-2", "registered"), state("door-3", "site-3", "registered"),
		state("door-5", "site-5", "registered")),
		`basip_device_pbx{device="door-4"`, `basip_pbx_registration{device="door-4"`)
	if !strings.Contains(body, `basip_pbx_sip_rtt_seconds{pbx="pbx-k"} `) {
		t.Errorf("no round trip:\n%s", testutil.Grep(body, "pbx_sip"))
	}

	thief, err := sipua.New(sipua.Options{User: "2002", Password: "stolen", Proxy: k.SIPAddr, LocalIP: "127.0.0.2", Expires: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := thief.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor("a stolen account", all(state("door-2", "site-2", "foreign"), state("door-1", "site-1", "registered"),
		[]string{`basip_pbx_registrations{pbx="pbx-k"} 5`}))
	thief.Stop()
	waitFor("the thief unregistered", state("door-2", "site-2", "registered"))

	doors["door-3"].PauseSIP()
	waitFor("door-3 stops registering", all(state("door-3", "site-3", "missing"),
		[]string{`basip_sip_registered{device="door-3",site="site-3"} 1`, `basip_pbx_registrations{pbx="pbx-k"} 3`}))

	k.Stop()
	waitFor("Kamailio stopped", []string{`basip_pbx_sip_up{pbx="pbx-k"} 0`, `basip_pbx_up{pbx="pbx-k"} 0`,
		`basip_sip_registered{device="door-1",site="site-1"} 0`, `basip_sip_registered{device="door-2",site="site-2"} 0`},
		`basip_pbx_registration{`, `basip_pbx_registrations{`, `basip_pbx_sip_rtt_seconds{`)
	k.Start()
	waitFor("Kamailio started again", all(state("door-1", "site-1", "registered"), state("door-2", "site-2", "registered"),
		[]string{`basip_pbx_sip_up{pbx="pbx-k"} 1`, `basip_sip_registered{device="door-1",site="site-1"} 1`}))

	// The PBX's page: the OPTIONS answer and each device's state there.
	resp, err := http.Get(srv.URL + "/debug?pbx=pbx-k")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"200 OK", " contacts", `data-device="door-1"`, "registered"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("/debug?pbx=pbx-k lacks %q", want)
		}
	}
	// The device's page names its PBX and its state there.
	resp, err = http.Get(srv.URL + "/debug?device=door-1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `<a href="debug?pbx=pbx-k">pbx-k</a>: registered at its registrar`; !strings.Contains(string(page), want) {
		t.Errorf("/debug?device=door-1 lacks %q:\n%s", want, testutil.Grep(string(page), "pbx"))
	}
}

// TestPBXHostileDoesNotHoldTheScrape: a registrar that never answers, one
// that answers a dump of endless nesting, and SIP addresses where nothing
// answers cost a scrape nothing beyond its deadline; the devices are
// served as ever, the PBXs down with their reason on the landing page; and
// scrapes at once share one check of each PBX.
func TestPBXHostileDoesNotHoldTheScrape(t *testing.T) {
	var requests atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	nested := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"Domains":`+strings.Repeat("[", 1<<20))
	}))
	t.Cleanup(nested.Close)
	// A UDP socket that reads every OPTIONS and answers none.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	d := testutil.Panel("3001", "udp")
	d.SetStatus(simulator.Status("OK", time.Now().Unix()))
	dev, err := simulator.Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	y := fmt.Sprintf(`global: {timeout: 1s, min_poll_interval: 0s}
credentials:
  default: {username: %s, password: %s}
devices:
  - {name: door, address: %q, api_version: v1}
pbxs:
  - name: hanging
    sip: udp://%s
    registrar: {type: kamailio, url: %q}
  - name: nested
    sip: udp://%s
    aliases: [pbx.example.com]
    registrar: {type: kamailio, url: %q}
`, testutil.User, testutil.Password, dev.URL, silent.LocalAddr(), hang.URL+"/RPC",
		strings.Replace(silent.LocalAddr().String(), "127.0.0.1", "127.0.0.2", 1), nested.URL+"/RPC")
	_, srv, _ := serve(t, y, t.TempDir(), nil)

	get := func(path string) (string, time.Duration) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(scrapeTimeoutHeader, "3")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), time.Since(start)
	}
	var wg sync.WaitGroup
	bodies := make([]string, 5)
	took := make([]time.Duration, 5)
	for i := range bodies {
		wg.Go(func() { bodies[i], took[i] = get("/metrics") })
	}
	wg.Wait()
	for i, body := range bodies {
		if took[i] > 3*time.Second {
			t.Errorf("scrape %d took %v, past its 3 s deadline", i, took[i])
		}
		for _, want := range []string{
			`basip_up{device="door"} 1`, `basip_sip_registered{device="door"} 1`,
			`basip_pbx_sip_up{pbx="hanging"} 0`, `basip_pbx_up{pbx="hanging"} 0`,
			`basip_pbx_sip_up{pbx="nested"} 0`, `basip_pbx_up{pbx="nested"} 0`,
			`basip_device_pbx{device="door",pbx="nested"} 1`,
		} {
			if !testutil.HasLine(body, want) {
				t.Errorf("scrape %d lacks %s:\n%s", i, want, testutil.Grep(body, "pbx"))
			}
		}
		if strings.Contains(body, "basip_pbx_registration{") {
			t.Errorf("scrape %d claims a registration state from a registrar it could not read", i)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("five scrapes at once sent %d requests to the hanging registrar, want the one they share", n)
	}
	page, _ := get("/")
	t.Logf("landing page, PBXs:\n%s", testutil.Grep(page, "kamailio"))
	for _, want := range []string{`data-pbx="hanging"`, `data-pbx="nested"`, "no final answer to the OPTIONS before the deadline", "kamailio ul.dump: context deadline exceeded", "connection refused", "nests arrays and objects deeper than 32"} {
		if !strings.Contains(page, want) {
			t.Errorf("the landing page lacks %q:\n%s", want, testutil.Grep(page, "<td"))
		}
	}
}
