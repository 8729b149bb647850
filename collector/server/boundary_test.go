package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// hostile is text a device may send to take over a terminal or reorder
// what a reader sees: an OSC title, BEL, a screen clear, C1 CSI, a
// right-to-left override; hostileEscaped is how the exposition carries
// it. XML cannot carry C0 controls (a Hikvision answer with them is not
// XML): hostileXML is the part it can.
const (
	hostile           = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e"
	hostileEscaped    = `\\x1b]0;pwned\\a\\x1b[2J\\u009b31m\\u202e`
	hostileXML        = "\u009b31m\u202e"
	hostileXMLEscaped = `\\u009b31m\\u202e`
)

// rawControl reports the first character of s that no output may carry
// raw: a C0 or C1 control (but a line break or tab, which pages and logs
// use themselves) or a bidi control.
func rawControl(s string) (rune, bool) {
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return r, true
		}
	}
	return 0, false
}

// fetchBody is the body of a GET of u.
func fetchBody(t *testing.T, u string) string {
	t.Helper()
	_, body, _ := get(t, u)
	return body
}

// TestDeviceTextEscapedEverywhere: text with terminal escapes and bidi
// overrides in the proxy, the SIP user, the model and the firmware of a
// device of every vendor reaches no output raw: not /metrics, /probe,
// /debug, the landing page, nor the log; the series carry it escaped.
func TestDeviceTextEscapedEverywhere(t *testing.T) {
	y := fmt.Sprintf("credentials:\n  default: {username: %s, password: %q}\nglobal:\n  collect: [settings, status, info]\ndevices:\n", testutil.User, testutil.Password)
	var names []string
	for _, v := range vendorsim.Vendors {
		d := vendorsim.New(v, testutil.User, testutil.Password)
		h := hostile
		if v == "hikvision" {
			h = hostileXML
		}
		d.Server, d.User, d.Model, d.Firmware = "pbx"+h, "1001"+h, "M"+h, "2.40"+h
		srv, err := vendorsim.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		y += fmt.Sprintf("  - {name: %s, address: %s, vendor: %s", v, srv.URL, v)
		if v == "ufanet" {
			y += fmt.Sprintf(", status_port: %d", srv.StatusPort)
		}
		y += "}\n"
		names = append(names, v)
	}
	p := testutil.Panel("1", "udp")
	s := simulator.FieldPanelSettings("1", "udp")
	s["proxy"], s["user"] = "sip:pbx"+hostile, "1"+hostile
	p.SetSettings(s)
	p.SetInfo(simulator.Info("Gate"+hostile, "AA-07FB"+hostile, "panel", "3.9.2"+hostile, "2.0"))
	ps, err := simulator.Serve(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	y += fmt.Sprintf("  - {name: basip, address: %s}\n", ps.URL)
	names = append(names, "basip")

	var logs bytes.Buffer
	_, srv, _ := serve(t, y, t.TempDir(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	pages := map[string]string{"/metrics": fetchBody(t, srv.URL+"/metrics"), "/": fetchBody(t, srv.URL+"/")}
	for _, n := range names {
		for _, p := range []string{"/probe?target=" + url.QueryEscape(n), "/debug?device=" + url.QueryEscape(n)} {
			pages[p] = fetchBody(t, srv.URL+p)
		}
	}
	pages["log"] = logs.String()
	for page, body := range pages {
		if r, ok := rawControl(body); ok {
			t.Errorf("%s carries %U raw", page, r)
		}
	}
	for _, n := range names {
		want := hostileEscaped
		if n == "hikvision" {
			want = hostileXMLEscaped
		}
		if !strings.Contains(pages["/probe?target="+n], want) {
			t.Errorf("%s: /probe does not carry the text escaped:\n%s", n, testutil.Grep(pages["/probe?target="+n], "basip_sip_info"))
		}
	}
}

// twoNAnswers is a 2N device that answers its settings and, for its
// status, the accounts listed by accounts.
func twoNAnswers(accounts string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/phone/config":
			_, _ = io.WriteString(w, `{"success":true,"result":{"accounts":[{"account":1,"enabled":true,"sipNumber":"1","proxyAddress":"pbx.example.net","proxyPort":"5060"}]}}`)
		case "/api/phone/status":
			_, _ = io.WriteString(w, `{"success":true,"result":{"accounts":[`+accounts+`]}}`)
		default:
			http.NotFound(w, r)
		}
	})
}

// TestDeviceCannotGrowTheExposition: a device that lists 25,000 accounts,
// or one account three times, gets no account series at all: its status
// is a decode error that gives the count, the device stays up, and the
// exposition has no duplicate series.
func TestDeviceCannotGrowTheExposition(t *testing.T) {
	var many []string
	for i := 1; i <= 25000; i++ {
		many = append(many, fmt.Sprintf(`{"account":%d,"registered":true}`, i)) // 0.7 MB: within the body limit
	}
	cases := map[string]struct{ accounts, reason string }{
		"many":  {strings.Join(many, ","), "25000 accounts listed, at most 4"},
		"twice": {`{"account":1,"enabled":true,"registered":true},{"account":1,"enabled":true,"registered":false},{"account":1,"enabled":true,"registered":true}`, "account 1 listed twice"},
		"range": {`{"account":7,"enabled":true,"registered":true}`, "account number 7 out of 1..4"},
	}
	y := fmt.Sprintf("credentials:\n  default: {username: %s, password: %q}\ndevices:\n", testutil.User, testutil.Password)
	for name, c := range cases {
		dev := httptest.NewServer(twoNAnswers(c.accounts))
		t.Cleanup(dev.Close)
		y += fmt.Sprintf("  - {name: %s, address: %s, vendor: 2n}\n", name, dev.URL)
	}
	_, srv, _ := serve(t, y, t.TempDir(), nil)
	out := fetchBody(t, srv.URL+"/metrics")
	if len(out) > 64<<10 {
		t.Errorf("the exposition of three devices is %d bytes", len(out))
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series := line[:strings.LastIndexByte(line, ' ')]
		if seen[series] {
			t.Errorf("duplicate series %s", series)
		}
		seen[series] = true
	}
	for name, c := range cases {
		testutil.RequireLine(t, out, fmt.Sprintf(`basip_up{device=%q} 1`, name))
		testutil.RequireLine(t, out, fmt.Sprintf(`basip_poll_errors_total{device=%q,endpoint="status",reason="decode"} 1`, name))
		if l := testutil.Grep(out, fmt.Sprintf(`basip_sip_account_registered{account="1",device=%q}`, name)); l != "" {
			t.Errorf("%s: an account series from a refused answer: %s", name, l)
		}
		if page := fetchBody(t, srv.URL+"/debug?device="+name); !strings.Contains(page, c.reason) {
			t.Errorf("%s: /debug does not say %q:\n%s", name, c.reason, page)
		}
	}
}

// TestUnknownStateIsErrorShownRaw: a registration value the exporter does
// not know is the state error, the device up, and the value is shown in
// /debug and in the --check.device report.
func TestUnknownStateIsErrorShownRaw(t *testing.T) {
	raws := map[string]string{"rubetek": "registering", "akuvox": "3", "qtech": "5", "sokol": "unknown", "ufanet": "maybe"}
	y := fmt.Sprintf("credentials:\n  default: {username: %s, password: %q}\ndevices:\n", testutil.User, testutil.Password)
	for v, raw := range raws {
		d := vendorsim.New(v, testutil.User, testutil.Password)
		d.RawStatus = raw
		srv, err := vendorsim.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		y += fmt.Sprintf("  - {name: %s, address: %s, vendor: %s, status_port: %d}\n", v, srv.URL, v, srv.StatusPort)
		if v != "ufanet" {
			y = strings.Replace(y, fmt.Sprintf(", status_port: %d}", srv.StatusPort), "}", 1)
		}
	}
	exp, srv, _ := serve(t, y, t.TempDir(), nil)
	out := fetchBody(t, srv.URL+"/metrics")
	for v, raw := range raws {
		testutil.RequireLine(t, out, fmt.Sprintf(`basip_up{device=%q} 1`, v))
		testutil.RequireLine(t, out, fmt.Sprintf(`basip_sip_registration_status{device=%q,status="error"} 1`, v))
		if l := testutil.Grep(out, fmt.Sprintf(`basip_poll_errors_total{device=%q`, v)); l != "" {
			t.Errorf("%s: %s", v, l)
		}
		if page := fetchBody(t, srv.URL+"/debug?device="+v); !strings.Contains(page, raw) {
			t.Errorf("%s: /debug does not show %q", v, raw)
		}
		rep, err := exp.DebugPoll(context.Background(), v)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := exp.WriteReport(&b, rep); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), `"raw_status": "`+raw+`"`) {
			t.Errorf("%s: the report does not show %q:\n%s", v, raw, b.String())
		}
	}
}
