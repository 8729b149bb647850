package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"go.uber.org/goleak"
)

// TestSecretsNeverInMetricsOrLogs serves the exporter's routes, logging at
// debug level, over simulated devices that fail in every way the hostile
// device tests know (a rejected password, 401s, redirects of the login and
// of the token to another host, a redirect loop, hangs, 500s, answers that
// quote the password, huge, cut and trickled bodies, expired tokens, bad
// certificates, refusals that quote the Basic header, the plain password
// or a JWT-shaped token, an echo service, an SSH banner, a closed port) and one that
// reveals its SIP password, with credentials from a password file and
// inline; and for every other vendor a healthy device that reveals its SIP
// password, one with a wrong password and an echo service, over Basic or
// Digest as the vendor has it. It fetches every page (/metrics, /probe and
// /debug of every device, the landing page, /config, /metrics/exporter,
// /-/healthy, /-/ready, /-/reload with a good configuration and with bad
// ones that quote a password), and searches
// them, the device statuses and debug reports the pages are made of, and
// the whole log, for each password, its MD5 in both cases, each token the
// devices issued, every Digest nonce, cnonce and response, and the
// password as YAML cuts an undecodable value.
func TestSecretsNeverInMetricsOrLogs(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // last, after the servers closed
	const (
		filePass    = testutil.Password    // from the password file
		inlinePass  = "Puffin-Ledger-5067" // inline in the configuration
		devicePass  = "Device-Knows-8820"  // what the rejecting device expects
		sipPassword = "s1p-777-pass"       // revealed by the monitor
		vendorSIP   = "Vendor-Sip-6153"    // revealed by the other vendors' devices
		leakedSIP   = "Leaked-Sip-3390"    // revealed by the old panel
		pbxPass     = "Registrar-Rpc-7719" // a PBX registrar's password
	)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(filePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := func(handle func(net.Conn)) string {
		srv, err := simulator.ServeRaw(handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv.URL
	}
	// Another host for the redirects, which must receive nothing.
	elsewhere, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elsewhere.Close() })
	// Bound for the whole test (a closed port could be taken by another
	// test's listener meanwhile), hanging up on every connection.
	gone := closedAddress(t)

	var (
		y       strings.Builder
		devices = map[string]*simulator.Device{}
		names   []string
	)
	fmt.Fprintf(&y, "global:\n  timeout: 2s\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: %s\n    password_file: pw\n  inline:\n    username: %s\n    password: %q\n", testutil.User, testutil.User, inlinePass)
	fmt.Fprintf(&y, "  basic:\n    username: %s\n    password_file: pw\n    auth: basic\n  lower:\n    username: %s\n    password: %q\n    md5_case: lower\n", testutil.User, testutil.User, inlinePass)
	fmt.Fprintf(&y, "  pbx:\n    username: rpc\n    password: %q\ndevices:\n", pbxPass)
	entry := func(name, addr, api, creds string) {
		names = append(names, name)
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    api_version: %s\n    credentials: %s\n", name, addr, api, creds)
	}
	// add serves a device (a panel unless d is given) and configures it.
	add := func(name, creds string, d *simulator.Device, serve func(*simulator.Device) string, setup func(*simulator.Device)) *simulator.Device {
		if d == nil {
			d = testutil.Panel("1", "udp")
		}
		if creds == "inline" {
			d.SetPassword(inlinePass)
		}
		d.SetStatus(simulator.Status("OK", time.Now().Unix()))
		d.SetInfo(simulator.Info(name, "AV-08FB", "panel", "3.9.1", d.APIVersion))
		if setup != nil {
			setup(d)
		}
		if serve == nil {
			serve = func(d *simulator.Device) string {
				srv, err := simulator.Serve(d)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { srv.Close() })
				return srv.URL
			}
		}
		devices[name] = d
		entry(name, serve(d), d.APIVersion, creds)
		return d
	}
	fault := func(f simulator.Fault) func(*simulator.Device) { return func(d *simulator.Device) { d.SetFault(f) } }
	tlsWith := func(o simulator.CertOptions) func(*simulator.Device) string {
		return func(d *simulator.Device) string {
			url, ca := testutil.ServeTLSTrusted(t, d, o)
			return url + "\n    tls_config: {ca_file: " + ca + "}"
		}
	}
	add("monitor", "default", testutil.Monitor("777", "tls"), nil, nil)
	add("inline", "inline", nil, nil, nil)
	add("wrong", "inline", nil, nil, func(d *simulator.Device) { d.SetPassword(devicePass) })
	add("unauthorized", "default", nil, nil, fault(simulator.FaultUnauthorized))
	add("redirect", "default", nil, nil, func(d *simulator.Device) { d.SetRedirect(elsewhere.URL); d.SetFault(simulator.FaultRedirect) })
	add("token-redirect", "inline", nil, nil, func(d *simulator.Device) { d.SetRedirect(elsewhere.URL); d.SetFault(simulator.FaultRedirectSettings) })
	add("loop", "default", nil, func(d *simulator.Device) string {
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		d.SetRedirect(srv.URL)
		d.SetFault(simulator.FaultRedirect)
		return srv.URL
	}, nil)
	add("hang", "default", nil, nil, fault(simulator.FaultHang))
	add("failing", "default", nil, nil, fault(simulator.FaultServerError))
	add("quoting", "default", nil, nil, func(d *simulator.Device) {
		d.SetRawSettings([]byte(`{"proxy": 1, "realm": "` + filePass + `"`))
		d.SetFault(simulator.FaultRawSettings)
	})
	add("garbled", "inline", nil, nil, func(d *simulator.Device) {
		d.SetRawSettings([]byte("<html>" + inlinePass + "</html>"))
		d.SetFault(simulator.FaultRawSettings)
	})
	add("login-html", "default", nil, nil, func(d *simulator.Device) {
		d.SetRawLogin([]byte("<html>" + filePass + "</html>"))
		d.SetFault(simulator.FaultRawLogin)
	})
	add("huge", "default", nil, nil, fault(simulator.FaultHugeBody))
	add("mid-body", "default", nil, nil, fault(simulator.FaultCloseMidBody))
	add("slow-body", "default", nil, nil, func(d *simulator.Device) {
		d.SetTrickleDelay(200 * time.Millisecond)
		d.SetFault(simulator.FaultTrickle)
	})
	add("slow-headers", "default", nil, nil, func(d *simulator.Device) {
		d.SetTrickleDelay(50 * time.Millisecond)
		d.SetFault(simulator.FaultTrickleHeaders)
	})
	expired := add("expired", "default", nil, nil, nil)
	relogin := add("relogin-401", "default", nil, nil, nil)
	add("tls", "default", nil, func(d *simulator.Device) string {
		srv, err := simulator.ServeTLS(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv.URL
	}, nil)
	add("expired-cert", "default", nil, tlsWith(simulator.CertOptions{NotAfter: time.Now().Add(-time.Hour)}), nil)
	add("other-host-cert", "default", nil, tlsWith(simulator.CertOptions{Hosts: []string{"intercom.example.com"}}), nil)
	entry("echo", raw(simulator.Echo), "v1", "default")
	entry("banner", raw(simulator.Banner("SSH-2.0-OpenSSH_9.6\r\n")), "v1", "default")
	// Devices as seen in the field: the SIP password in clear on an old
	// panel, HTTP Basic (an echo service on the address quotes the header),
	// a lower-case MD5, the API family found by detection.
	add("leaky", "default", nil, nil, func(d *simulator.Device) {
		d.SetSettings(simulator.LeakyPanelSettings("1", "udp", leakedSIP))
	})
	add("basic", "basic", nil, nil, func(d *simulator.Device) { d.Auth = simulator.AuthBasic })
	entry("basic-echo", raw(simulator.Echo), "v1", "basic")
	add("lower", "lower", nil, nil, func(d *simulator.Device) { d.SetPassword(inlinePass); d.MD5Case = simulator.MD5Lower })
	// Devices that quote in their refusals what they were sent: the Basic
	// header, the plain password, a JWT-shaped token.
	add("basic-echo-401", "basic", nil, nil, func(d *simulator.Device) {
		d.Auth, d.Echo = simulator.AuthBasic, simulator.EchoAuthorization
		d.SetPassword(devicePass)
	})
	add("quotes-password", "basic", nil, nil, func(d *simulator.Device) {
		d.Auth, d.Echo = simulator.AuthBasic, simulator.EchoCredentials
		d.SetPassword(devicePass)
	})
	jwt := add("jwt-echo", "default", nil, nil, func(d *simulator.Device) {
		d.TokenStyle, d.Echo = simulator.TokenJWT, simulator.EchoCredentials
	})
	autoDev := testutil.Monitor("778", "udp")
	autoSrv, err := simulator.Serve(autoDev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { autoSrv.Close() })
	devices["auto"] = autoDev
	entry("auto", autoSrv.URL, "auto", "default")
	entry("gone", gone, "v1", "default")
	// Every other vendor: healthy with its SIP password in clear where the
	// vendor sends it, a wrong password, and an echo service in its place
	// (Digest for 2N and Akuvox, Basic for the others).
	vendorDevices := map[string]*vendorsim.Device{}
	for _, vendor := range vendorsim.Vendors {
		for _, v := range []struct {
			name, password string
		}{{vendor + "-ok", inlinePass}, {vendor + "-wrong", devicePass}} {
			d := vendorsim.New(vendor, testutil.User, v.password)
			d.SIPPassword = vendorSIP
			srv, err := vendorsim.Serve(d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			vendorDevices[v.name] = d
			names = append(names, v.name)
			fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    vendor: %s\n    credentials: inline\n", v.name, srv.URL, vendor)
			if srv.StatusPort != 0 {
				fmt.Fprintf(&y, "    status_port: %d\n", srv.StatusPort)
			}
		}
		names = append(names, vendor+"-echo")
		fmt.Fprintf(&y, "  - name: %s\n    address: %s\n    vendor: %s\n    credentials: inline\n", vendor+"-echo", raw(simulator.Echo), vendor)
	}
	// PBXs whose registrars quote what they were sent (an echo service,
	// a JSON-RPC error and an AMI refusal quoting the Authorization header
	// and the password), redirect it to another host, or reject it; their
	// SIP addresses answer nothing.
	quoting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		quoted := r.Header.Get("Authorization") + " " + user + ":" + pass + " " + string(body)
		if strings.Contains(r.URL.Path, "rawman") {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "Response: Error\r\nMessage: Authentication failed for %s\r\n\r\n", quoted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": 1, "error": map[string]any{"code": -32000, "message": "denied: " + quoted}})
	}))
	t.Cleanup(quoting.Close)
	rejecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+r.Header.Get("Authorization")+`"`)
		http.Error(w, "no: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	t.Cleanup(rejecting.Close)
	redirecting := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/RPC", http.StatusTemporaryRedirect))
	t.Cleanup(redirecting.Close)
	_, silentSIP, _ := strings.Cut(gone, "://")
	y.WriteString("pbxs:\n")
	var pbxNames []string
	for i, r := range []struct{ typ, url string }{
		{"kamailio", raw(simulator.Echo) + "/RPC"}, {"kamailio", quoting.URL + "/RPC"}, {"kamailio", rejecting.URL + "/RPC"},
		{"kamailio", redirecting.URL + "/RPC"}, {"asterisk", raw(simulator.Echo) + "/rawman"}, {"asterisk", quoting.URL + "/rawman"},
		{"asterisk", rejecting.URL + "/rawman"}, {"asterisk", redirecting.URL + "/rawman"},
	} {
		name := fmt.Sprintf("pbx-%d-%s", i, r.typ)
		pbxNames = append(pbxNames, name)
		fmt.Fprintf(&y, "  - name: %s\n    sip: udp://%s\n    aliases: [pbx-%d.example.com]\n    registrar: {type: %s, url: %q, credentials: pbx}\n", name, silentSIP, i, r.typ, r.url)
		// One SIP address per PBX, at the closed port.
		_, port, _ := net.SplitHostPort(silentSIP)
		silentSIP = net.JoinHostPort(fmt.Sprintf("127.0.0.%d", 3+i), port)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testutil.SyncBuffer{}
	level := promslog.NewLevel()
	if err := level.Set("debug"); err != nil {
		t.Fatal(err)
	}
	logger := promslog.New(&promslog.Config{Level: level, Writer: logs})
	load := func() (*config.Config, error) { return config.Load(cfgFile) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	exp, err := collector.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	reg := prometheus.NewRegistry()
	reloader := config.NewReloader(load, exp.Apply, reg, logger)
	srv := httptest.NewServer(New(exp, Options{TimeoutOffset: 500 * time.Millisecond, Self: reg, Registerer: reg, Reload: reloader.Reload, Logger: logger}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	var (
		seen   strings.Builder
		seenMu sync.Mutex
	)
	fetch := func(method, path string) int {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(scrapeTimeoutHeader, "4")
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
		}
		seenMu.Lock()
		defer seenMu.Unlock()
		fmt.Fprintf(&seen, "== %s %s: %d\n%s\n%s\n", method, path, resp.StatusCode, resp.Header, b)
		return resp.StatusCode
	}
	// Three rounds for the token paths: expired and refused after the
	// first. Each device's pages are fetched at once, as the slow ones
	// cost their 2 s timeout each (2 s, not 1: a Qtech device's settings
	// take six requests, which a loaded machine running this under -race
	// did not fit in 1 s).
	for i := range 3 {
		pages := []string{"/metrics"}
		for _, n := range append(names, "nope", "http://127.0.0.1:1") {
			pages = append(pages, "/probe?target="+url.QueryEscape(n), "/debug?device="+url.QueryEscape(n))
		}
		var wg sync.WaitGroup
		for _, p := range pages {
			wg.Go(func() { fetch(http.MethodGet, p) })
		}
		wg.Wait()
		for _, p := range []string{"/", "/config", "/metrics/exporter", "/-/healthy", "/-/ready"} {
			fetch(http.MethodGet, p)
		}
		if code := fetch(http.MethodPost, "/-/reload"); code != http.StatusOK {
			t.Errorf("reload of a good configuration answered %d", code)
		}
		if i == 0 {
			expired.ExpireTokens()
			relogin.SetFault(simulator.FaultUnauthorized)
			jwt.SetFault(simulator.FaultUnauthorized)
		}
	}
	// What the pages are made of, in Go's formats too.
	statuses, err := json.Marshal(exp.Statuses())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&seen, "%s\n%+v\n%#v\n", statuses, exp.Statuses(), exp.Statuses())
	reports := make([]string, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			rep, err := exp.DebugPoll(ctx, name)
			if err != nil {
				t.Errorf("debug poll of %s: %v", name, err)
				return
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Error(err)
			}
			reports[i] = fmt.Sprintf("%s\n%+v\n%#v\n", b, rep, rep)
		})
	}
	wg.Wait()
	seen.WriteString(strings.Join(reports, ""))

	// Bad configurations that quote a password, refused by /-/reload: the
	// answer and the log must not echo it.
	good := y.String()
	cred := fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\n", inlinePass)
	for i, bad := range []string{
		strings.Replace(good, "devices:\n", "devices:\n  - name: broken\n    address: \"http://x/?password="+inlinePass+"\"\n", 1),
		strings.Replace(good, "devices:\n", "devices:\n  - name: broken\n    address: \"http://admin:"+inlinePass+"@x\"\n", 1),
		// An address url.Parse refuses, whose error would quote it.
		strings.Replace(good, "devices:\n", "devices:\n  - name: broken\n    address: \"http://admin:100%"+inlinePass+"@x\"\n", 1),
		// A value with a line break within yaml.v3's 7-character cut.
		cred + fmt.Sprintf("global:\n  timeout: %q\n", inlinePass[:4]+"\n"+inlinePass[4:]),
		strings.Replace(good, "password: \""+inlinePass+"\"", "password: \""+inlinePass+"\"\n    pasword: \""+inlinePass+"\"", 1),
		strings.Replace(good, "  inline:\n", "  broken: "+inlinePass+"\n  inline:\n", 1),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password_file: %s\n    password: %q\n", pwFile, inlinePass),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: [%q]\n", inlinePass),
		fmt.Sprintf("credentials:\n  default: %q\n", inlinePass),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: {value: %q}\n", inlinePass),
		cred + fmt.Sprintf("global:\n  timeout: %q\n", inlinePass),
		cred + fmt.Sprintf("   bad indent: %q\n", inlinePass),
	} {
		if err := os.WriteFile(cfgFile, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if code := fetch(http.MethodPost, "/-/reload"); code != http.StatusInternalServerError {
			t.Errorf("reload of bad configuration %d answered %d", i, code)
		}
	}
	fetch(http.MethodGet, "/config")
	fetch(http.MethodGet, "/metrics") // still serving the old configuration
	all := seen.String() + logs.String()

	var secrets []string
	for _, p := range []string{filePass, inlinePass, devicePass, sipPassword, leakedSIP, vendorSIP, pbxPass} {
		// yaml.v3 quotes a value it cannot decode cut to 7 characters and "...".
		secrets = append(append(secrets, testutil.SecretForms(p)...), p[:7]+"...")
		// The HTTP Basic credentials.
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(testutil.User+":"+p)))
	}
	secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte("rpc:"+pbxPass)), url.QueryEscape(pbxPass))
	// The 7-character cut of a value with a line break, raw and as %q
	// and the log quote it.
	secrets = append(secrets, inlinePass[:4]+"\n"+inlinePass[4:6], inlinePass[:4]+`\n`+inlinePass[4:6])
	tokens := 0
	for _, d := range devices {
		for _, tok := range d.IssuedTokens() {
			secrets = append(secrets, tok)
			tokens++
		}
	}
	if tokens < 5 {
		t.Fatalf("only %d tokens were issued: the test exercises little", tokens)
	}
	// Digest: every nonce issued, and the cnonce and response of every
	// answer sent.
	digests := 0
	for _, d := range vendorDevices {
		secrets = append(secrets, d.Digest.Nonces()...)
		for _, h := range d.AuthorizationHeaders() {
			if !strings.HasPrefix(h, "Digest ") {
				continue
			}
			digests++
			for _, k := range []string{"cnonce", "response"} {
				if _, v, ok := strings.Cut(h, k+`="`); ok {
					v, _, _ = strings.Cut(v, `"`)
					secrets = append(secrets, v)
				}
			}
		}
	}
	if digests < 10 {
		t.Fatalf("only %d Digest answers were sent: the test exercises little", digests)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked: %q", s[:4]+"...", testutil.Around(all, s))
		}
	}
	// The paths were exercised: each device's failure shows, the pages
	// answered, the bad reloads were refused with their reason.
	for device, reason := range map[string]string{
		"wrong": "auth", "unauthorized": "auth", "relogin-401": "auth", "redirect": "http_status", "token-redirect": "http_status",
		"loop": "http_status", "hang": "timeout", "failing": "http_status", "quoting": "decode", "garbled": "decode", "login-html": "decode",
		"huge": "too_large", "mid-body": "connection", "slow-body": "timeout", "slow-headers": "timeout", "tls": "tls",
		"expired-cert": "tls", "other-host-cert": "tls", "echo": "connection", "banner": "connection", "gone": "connection",
		"basic-echo-401": "auth", "quotes-password": "auth", "jwt-echo": "auth",
		"2n-wrong": "auth", "beward-wrong": "auth", "qtech-wrong": "auth", "akuvox-wrong": "auth", "sokol-wrong": "auth",
		"rubetek-wrong": "auth", "ufanet-wrong": "auth", "2n-echo": "connection", "beward-echo": "connection",
		"qtech-echo": "connection", "akuvox-echo": "connection", "sokol-echo": "connection", "rubetek-echo": "connection",
		"ufanet-echo": "connection", "hikvision-wrong": "auth", "hikvision-echo": "connection",
	} {
		if want := fmt.Sprintf("device=%q,endpoint=\"settings\",reason=%q", device, reason); !strings.Contains(all, want) {
			t.Errorf("no poll error %s: the path was not exercised\n%s", want, testutil.Grep(all, `device="`+device+`"`))
		}
	}
	for _, want := range []string{
		`basip_up{device="monitor"} 1`, `basip_up{device="inline"} 1`, `basip_up{device="expired"} 1`,
		`basip_up{device="basic"} 1`, `basip_up{device="lower"} 1`, `basip_up{device="auto"} 1`,
		`basip_sip_password_exposed{device="leaky"} 1`, `device="basic-echo",endpoint="settings",reason="connection"`,
		`basip_up{device="2n-ok"} 1`, `basip_up{device="beward-ok"} 1`, `basip_up{device="qtech-ok"} 1`, `basip_up{device="akuvox-ok"} 1`,
		`basip_up{device="sokol-ok"} 1`, `basip_up{device="rubetek-ok"} 1`, `basip_up{device="ufanet-ok"} 1`,
		`basip_sip_password_exposed{device="beward-ok"} 1`, `basip_sip_password_exposed{device="sokol-ok"} 1`,
		`basip_sip_password_exposed{device="rubetek-ok"} 1`, `basip_sip_password_exposed{device="ufanet-ok"} 1`,
		`basip_up{device="hikvision-ok"} 1`, `basip_sip_password_exposed{device="hikvision-ok"} 0`,
		"== GET /debug?device=echo: 200", "== GET /config: 200", "reload failed", "config.yaml:", "level=DEBUG",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s: a path was not exercised", want)
		}
	}
	for _, name := range pbxNames {
		for _, want := range []string{fmt.Sprintf("basip_pbx_up{pbx=%q} 0", name), fmt.Sprintf("basip_pbx_sip_up{pbx=%q} 0", name)} {
			if !strings.Contains(all, want) {
				t.Errorf("no %s: the PBX's path was not exercised", want)
			}
		}
	}
	if n := elsewhere.Connections.Load(); n != 0 {
		t.Errorf("the other host received %d connections", n)
	}
}
