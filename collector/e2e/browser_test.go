//go:build linux

package e2e

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"golang.org/x/net/html"
)

// The README's screenshot, under the module root.
// `UPDATE_SCREENSHOT=1 go test -run TestBrowser ./collector/e2e/` rewrites it.
const screenshotPath = "deploy/screenshot.png"

// chromium returns the headless browser to use, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping the browser test: no chromium on PATH (apt-get install chromium; .ci/run installs it)")
	return ""
}

// browse runs headless Chromium on url with extra arguments (--dump-dom,
// --screenshot=FILE) and returns its standard output. Its profile, cache
// and home are a temporary directory, and it makes no connection other
// than to url.
func browse(t *testing.T, browser, target string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-quic", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--no-proxy-server",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + filepath.Join(home, "profile"),
		"--hide-scrollbars", "--window-size=1280,900",
	}, args...)
	cmd := exec.CommandContext(ctx, browser, append(all, target)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
	cmd.Dir = home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestBrowserLandingPage opens the landing page of the exporter running on
// the demo fleet in headless Chromium and reads the device table from the
// DOM the browser built; then follows a device's link to its debug view.
func TestBrowserLandingPage(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	p := startExporterBinary(t, "--demo")
	base := "http://" + p.addr + "/"
	// One scrape, so every device has a state (the silent one costs the
	// demo's 3 s timeout).
	if code, body := fetchURL(t, loopbackClient(nil), http.MethodGet, base+"metrics", "", ""); code != 200 {
		t.Fatalf("/metrics: %d\n%.300s", code, body)
	}

	dom := browse(t, browser, base, "--dump-dom")
	doc := testutil.ParseHTML(t, dom)
	rows := domRows(doc)
	want := map[string]struct{ state, sip, transport, err, vendor string }{
		"panel-entrance":           {"up", "", "udp", "", "basip"},
		"monitor-101":              {"up", "enabled", "tcp", "", "basip"},
		"monitor-102":              {"up", "enabled", "tls", "", "basip"},
		"monitor-103-sip-off":      {"up", "disabled", "udp", "", "basip"},
		"monitor-104-out-of-range": {"up", "enabled", "wss", "", "basip"},
		"panel-wrong-password":     {"down", "", "", "Login rejected", "basip"},
		"panel-silent":             {"down", "", "", "No answer", "basip"},
		"panel-https":              {"up", "", "tls", "", "basip"},
		"panel-basic":              {"up", "", "udp", "", "basip"},
		"panel-old-firmware":       {"up", "", "udp", "", "basip"},
		// One device of each other vendor: the vendor column says which.
		"2n-verso-gate":          {"up", "enabled", "", "", "2n"},
		"beward-dks-lobby":       {"up", "enabled", "", "", "beward"},
		"qtech-qdb-yard":         {"up", "", "", "", "qtech"},
		"akuvox-e12-service":     {"up", "disabled", "udp", "", "akuvox"},
		"sokol-rev2-entrance":    {"up", "", "udp", "", "sokol"},
		"rubetek-rv3434-back":    {"up", "", "udp", "", "rubetek"},
		"ufanet-secret-top":      {"up", "", "", "", "ufanet"},
		"hikvision-kv8113-porch": {"up", "enabled", "", "", "hikvision"},
	}
	if len(rows) != len(want) {
		t.Fatalf("the browser shows %d device rows, want %d:\n%s", len(rows), len(want), dom)
	}
	dash := func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	}
	for _, r := range rows {
		w, ok := want[r["name"]]
		if !ok {
			t.Errorf("unexpected device %q", r["name"])
			continue
		}
		if r["state"] != w.state || r["sip"] != dash(w.sip) || r["transport"] != dash(w.transport) || !strings.HasPrefix(r["error"], dash(w.err)) || r["vendor"] != w.vendor {
			t.Errorf("%s: %v, want %+v", r["name"], r, w)
		}
		if !strings.Contains(r["last_poll"], "UTC, took") {
			t.Errorf("%s: last poll %q", r["name"], r["last_poll"])
		}
	}
	if s := testutil.Text(testutil.ByID(doc, "summary")); !strings.HasPrefix(s, "18 devices: 16 up, 2 down.") {
		t.Errorf("summary %q", s)
	}

	// The device's link leads to its debug view.
	var link string
	for _, r := range rows {
		if r["name"] == "monitor-102" {
			link = r["href"]
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("link %q: %v", link, err)
	}
	dom = browse(t, browser, u.ResolveReference(ref).String(), "--dump-dom")
	doc = testutil.ParseHTML(t, dom)
	if r := testutil.Text(testutil.ByID(doc, "result")); r != "up" {
		t.Errorf("debug view result %q", r)
	}
	if s := testutil.Text(testutil.ByID(doc, "settings")); !strings.Contains(s, `"password": "<secret>"`) {
		t.Errorf("debug view settings:\n%s", s)
	}
	if s := testutil.Text(testutil.ByID(doc, "info")); !strings.Contains(s, `"device_model": "AQ-10"`) {
		t.Errorf("debug view device info:\n%s", s)
	}
	if s := testutil.Text(testutil.ByID(doc, "status")); !strings.Contains(s, `"sip_status": "ERROR"`) {
		t.Errorf("debug view SIP status:\n%s", s)
	}
	if !strings.Contains(testutil.Text(testutil.ByID(doc, "requests")), "/api/v0/device/sip/settings 200") {
		t.Errorf("debug view requests: %q", testutil.Text(testutil.ByID(doc, "requests")))
	}
	if strings.Contains(dom, "s1p-102-pass") || strings.Contains(dom, "demo-Passw0rd") {
		t.Error("the debug view shows a password")
	}

	// The screenshot: a real PNG of the window's size.
	shot := filepath.Join(t.TempDir(), "landing.png")
	browse(t, browser, base, "--screenshot="+shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if sz := img.Bounds().Size(); sz.X != 1280 || sz.Y != 900 {
		t.Errorf("screenshot is %v, want 1280x900", sz)
	}
	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile(filepath.Join(repoRoot(t), screenshotPath), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", screenshotPath)
	}
}

// domRows reads the device table: per row the device name, the link, and
// the first line of each cell by its data-col.
func domRows(doc *html.Node) []map[string]string {
	table := testutil.ByID(doc, "devices")
	if table == nil {
		return nil
	}
	var rows []map[string]string
	for _, tr := range testutil.Elements(table, "tr") {
		if testutil.Attr(tr, "data-device") == "" {
			continue
		}
		r := map[string]string{"name": testutil.Attr(tr, "data-device"), "state": testutil.Attr(tr, "data-state")}
		for _, td := range testutil.Elements(tr, "td") {
			col := testutil.Attr(td, "data-col")
			// The cell's own text, without its note.
			var own strings.Builder
			for c := td.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && testutil.Attr(c, "class") == "note" {
					continue
				}
				own.WriteString(testutil.Text(c) + " ")
			}
			text := strings.Join(strings.Fields(own.String()), " ")
			if col == "state" {
				if text != r["state"] {
					r["state"] = r["state"] + "/" + text
				}
				continue
			}
			r[col] = text
			if col == "last_poll" || col == "error" {
				r[col] = testutil.Text(td)
			}
			if a := testutil.Elements(td, "a"); len(a) > 0 && col == "device" {
				r["href"] = testutil.Attr(a[0], "href")
			}
		}
		rows = append(rows, r)
	}
	return rows
}
