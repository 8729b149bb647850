package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus"
)

// secretForms are the ways a password could leak: as is and as the MD5 the
// login sends, in both cases.
var secretForms = testutil.SecretForms

// TestSecretsNeverInMetricsOrLogs runs a fleet through every failure path
// of the hostile-device tests at debug log level, scrapes /metrics and
// /probe, takes the device statuses and a debug poll of every device, and
// reloads bad configurations; then searches all of it, the whole log
// included, for each password, its MD5 in both cases, each token the
// devices issued and the SIP password.
func TestSecretsNeverInMetricsOrLogs(t *testing.T) {
	leakCheck(t)
	const wrongPassword = otherPassword // configured for one device, refused by it
	sipPassword := "s1p-101-pass"       // revealed by the monitor

	// Another host for the redirects, which must receive nothing.
	elsewhere, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elsewhere.Close() })
	echo, err := simulator.ServeRaw(simulator.Echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	banner, err := simulator.ServeRaw(simulator.Banner("SSH-2.0-OpenSSH_9.6\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { banner.Close() })

	devices := map[string]*simulator.Device{}
	dev := func(name string, setup func(d *simulator.Device)) *simulator.Device {
		d := panel(name, "udp")
		if setup != nil {
			setup(d)
		}
		devices[name] = d
		return d
	}
	fault := func(f simulator.Fault) func(d *simulator.Device) { return func(d *simulator.Device) { d.SetFault(f) } }
	good := monitor("101", "tls")
	devices["good"] = good
	wrong := dev("wrong", func(d *simulator.Device) { d.SetPassword("Device-Has-Another-1") })
	dev("unauthorized", fault(simulator.FaultUnauthorized))
	dev("redirect", func(d *simulator.Device) { d.SetRedirect(elsewhere.URL); d.SetFault(simulator.FaultRedirect) })
	dev("token-redirect", func(d *simulator.Device) { d.SetRedirect(elsewhere.URL); d.SetFault(simulator.FaultRedirectSettings) })
	loop := dev("loop", nil)
	dev("hang", fault(simulator.FaultHang))
	dev("failing", fault(simulator.FaultServerError))
	dev("garbled", func(d *simulator.Device) {
		d.SetRawSettings([]byte("<html>" + testPassword + "</html>"))
		d.SetFault(simulator.FaultRawSettings)
	})
	dev("login-html", func(d *simulator.Device) {
		d.SetRawLogin([]byte("<html>" + testPassword + "</html>"))
		d.SetFault(simulator.FaultRawLogin)
	})
	dev("huge", fault(simulator.FaultHugeBody))
	dev("mid-body", fault(simulator.FaultCloseMidBody))
	dev("slow-body", func(d *simulator.Device) {
		d.SetTrickleDelay(200 * time.Millisecond)
		d.SetFault(simulator.FaultTrickle)
	})
	dev("slow-headers", func(d *simulator.Device) {
		d.SetTrickleDelay(50 * time.Millisecond)
		d.SetFault(simulator.FaultTrickleHeaders)
	})
	expired := dev("expired", nil)
	relogin := dev("relogin-401", nil)
	tlsDev := dev("tls", nil)
	expiredCert := dev("expired-cert", nil)
	otherHostCert := dev("other-host-cert", nil)
	trusted := func(d *simulator.Device, o simulator.CertOptions) string {
		srv, err := simulator.ServeTLSWith(d, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		return srv.URL + "\n    tls_config: {ca_file: " + ca + "}"
	}

	f := startFleet(t, "  timeout: 1s\n",
		devSpec{name: "good", dev: good},
		devSpec{name: "wrong", dev: wrong, extra: "    credentials: other\n"},
		devSpec{name: "unauthorized", dev: devices["unauthorized"]},
		devSpec{name: "redirect", dev: devices["redirect"]},
		devSpec{name: "token-redirect", dev: devices["token-redirect"]},
		devSpec{name: "loop", dev: loop},
		devSpec{name: "hang", dev: devices["hang"]},
		devSpec{name: "failing", dev: devices["failing"]},
		devSpec{name: "garbled", dev: devices["garbled"]},
		devSpec{name: "login-html", dev: devices["login-html"]},
		devSpec{name: "huge", dev: devices["huge"]},
		devSpec{name: "mid-body", dev: devices["mid-body"]},
		devSpec{name: "slow-body", dev: devices["slow-body"]},
		devSpec{name: "slow-headers", dev: devices["slow-headers"]},
		devSpec{name: "expired", dev: expired},
		devSpec{name: "relogin-401", dev: relogin},
		devSpec{name: "tls", dev: tlsDev, tls: true},
		devSpec{name: "expired-cert", addr: trusted(expiredCert, simulator.CertOptions{NotAfter: time.Now().Add(-time.Hour)})},
		devSpec{name: "other-host-cert", addr: trusted(otherHostCert, simulator.CertOptions{Hosts: []string{"intercom.example.com"}})},
		devSpec{name: "echo", addr: echo.URL},
		devSpec{name: "banner", addr: banner.URL},
		devSpec{name: "gone", addr: deadAddress(t)},
	)
	loop.SetRedirect(f.servers["loop"].URL)
	loop.SetFault(simulator.FaultRedirect)
	y := f.yaml

	var seen strings.Builder
	for i := range 3 {
		seen.WriteString(boundedScrape(t, f))
		for _, name := range []string{"good", "wrong", "unauthorized", "expired", "echo", "token-redirect", "nope", "http://127.0.0.1:1"} {
			body, err := f.probe(t, name, 1500*time.Millisecond)
			seen.WriteString(body)
			if err != nil {
				seen.WriteString(err.Error())
			}
		}
		if i == 0 {
			expired.ExpireTokens()
			relogin.SetFault(simulator.FaultUnauthorized)
		}
	}
	// What the status and debug pages show.
	statuses, err := json.Marshal(f.exp.Statuses())
	if err != nil {
		t.Fatal(err)
	}
	seen.Write(statuses)
	fmt.Fprintf(&seen, "%+v\n%#v\n", f.exp.Statuses(), f.exp.Statuses())
	for _, st := range f.exp.Statuses() {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		rep, err := f.exp.DebugPoll(ctx, st.Name)
		cancel()
		if err != nil {
			t.Fatalf("debug poll of %s: %v", st.Name, err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(b)
		fmt.Fprintf(&seen, "%+v\n%#v\n", rep, rep)
	}

	// Reloads that fail on a bad config must not echo the password either,
	// in the error or in the log.
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badConfigs := []string{
		strings.Replace(y, "devices:\n", "devices:\n  - name: broken\n    address: \"http://x/?password="+testPassword+"\"\n", 1),
		strings.Replace(y, "devices:\n", "devices:\n  - name: broken\n    address: \"http://admin:"+testPassword+"@x\"\n", 1),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password_file: %s\n    password: %q\n", pwFile, testPassword),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\n    pasword: %q\n", testPassword, testPassword),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: [%q]\n", testPassword),
		fmt.Sprintf("credentials:\n  default: %q\n", testPassword),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: {value: %q}\n", testPassword),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\nglobal:\n  timeout: %q\n", testPassword, testPassword),
		fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\n   bad indent: %q\n", testPassword, testPassword),
	}
	for i, bad := range badConfigs {
		r := config.NewReloader(func() (*config.Config, error) {
			return config.Parse([]byte(bad), "bad.yaml", t.TempDir())
		}, f.exp.Apply, prometheus.NewRegistry(), logger)
		if err := r.Reload(); err == nil {
			t.Fatalf("bad config %d accepted", i)
		} else {
			seen.WriteString(err.Error() + "\n")
		}
	}
	seen.WriteString(boundedScrape(t, f)) // still serving the old config
	seen.WriteString(f.logs.String())

	tokens := map[string]bool{}
	for _, d := range devices {
		for _, tok := range d.IssuedTokens() {
			tokens[tok] = true
		}
	}
	if len(tokens) < 5 {
		t.Fatalf("only %d tokens were issued: the test exercises little", len(tokens))
	}
	if !strings.Contains(f.logs.String(), "level=DEBUG") {
		t.Fatal("no debug log was written")
	}
	all := seen.String()
	secrets := append(append(append(secretForms(testPassword), secretForms(wrongPassword)...), secretForms(sipPassword)...), secretForms("Device-Has-Another-1")...)
	// yaml.v3 quotes a value it cannot decode, cut to 7 characters and "...".
	secrets = append(secrets, testPassword[:7]+"...")
	for tok := range tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked; context: %q", s[:3]+"...", around(all, s))
		}
	}
	// The scrapes did go through the failure paths.
	for device, reason := range map[string]string{
		"wrong": "auth", "unauthorized": "auth", "relogin-401": "auth", "redirect": "http_status", "token-redirect": "http_status",
		"loop": "http_status", "hang": "timeout", "failing": "http_status", "garbled": "decode", "login-html": "decode",
		"huge": "too_large", "mid-body": "connection", "slow-body": "timeout", "slow-headers": "timeout", "tls": "tls",
		"expired-cert": "tls", "other-host-cert": "tls", "echo": "connection", "banner": "connection", "gone": "connection",
	} {
		if want := fmt.Sprintf("device=%q,endpoint=\"settings\",reason=%q", device, reason); !strings.Contains(all, want) {
			t.Errorf("no poll error %s: the path was not exercised", want)
		}
	}
	for _, up := range []string{`basip_up{device="good"} 1`, `basip_up{device="expired"} 1`} {
		if !strings.Contains(all, up) {
			t.Errorf("no %s: the token paths were not exercised", up)
		}
	}
	if n := elsewhere.Connections.Load(); n != 0 {
		t.Errorf("the other host received %d connections", n)
	}
}

func around(all, s string) string {
	i := strings.Index(all, s)
	lo, hi := max(0, i-80), min(len(all), i+len(s)+20)
	return all[lo:hi]
}
