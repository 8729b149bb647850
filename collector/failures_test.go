package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBadAnswers(t *testing.T) {
	cases := map[string]struct {
		body   []byte
		reason string // empty: the device stays up
	}{
		"malformed JSON":          {body: []byte(`{"proxy": "sip:x", `), reason: "decode"},
		"HTML":                    {body: []byte(`<html><body>Login</body></html>`), reason: "decode"},
		"empty body":              {body: nil, reason: "decode"},
		"JSON null":               {body: []byte(`null`), reason: "decode"},
		"array":                   {body: []byte(`[1,2]`), reason: "decode"},
		"string for a number":     {body: []byte(`{"registration_interval": "30"}`), reason: "decode"},
		"number for a string":     {body: []byte(`{"password": 123456}`), reason: "decode"},
		"too large":               {body: bytes.Repeat([]byte(" "), 2<<20), reason: "too_large"},
		"null fields are unknown": {body: []byte(`{"enable": null, "proxy": null, "timeout": null}`)},
		"unknown fields ignored":  {body: []byte(`{"proxy": "sip:a", "net": {"x": 1}, "user_agent": "y"}`)},
		"label-hostile strings":   {body: []byte("{\"proxy\": \"sip:\\\"a\\\"\\n\\\\b\", \"user\": \"\xff\xfe\"}")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dev := panel("1", "udp")
			dev.SetRawSettings(c.body)
			dev.SetFault(simulator.FaultRawSettings)
			f := startFleet(t, "", devSpec{name: "d", dev: dev})
			out := f.scrape(t)
			if c.reason == "" {
				requireLine(t, out, `basip_up{device="d"} 1`)
				if !strings.Contains(out, "basip_sip_info{") {
					t.Errorf("no basip_sip_info")
				}
			} else {
				requireLine(t, out, `basip_up{device="d"} 0`)
				requireLine(t, out, fmt.Sprintf(`basip_poll_errors_total{device="d",endpoint="settings",reason=%q} 1`, c.reason))
			}
			problems, err := testutil.GatherAndLint(gathererFor(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) > 0 {
				t.Errorf("lint: %v", problems)
			}
		})
	}
}

func TestFailureReasons(t *testing.T) {
	target := panel("9", "udp")
	targetSrv, err := simulator.Serve(target)
	if err != nil {
		t.Fatal(err)
	}
	defer targetSrv.Close()

	cases := map[string]struct {
		setup  func(d *simulator.Device)
		reason string
	}{
		"500 for every request": {func(d *simulator.Device) { d.SetFault(simulator.FaultServerError) }, "http_status"},
		"redirect to another host": {func(d *simulator.Device) {
			d.SetRedirect(strings.Replace(targetSrv.URL, "127.0.0.1", "localhost", 1))
			d.SetFault(simulator.FaultRedirect)
		}, "http_status"},
		"connection closed mid-body": {func(d *simulator.Device) {
			d.ExpireTokens()
			d.SetFault(simulator.FaultCloseMidBody)
		}, "connection"},
		"body slower than the deadline": {func(d *simulator.Device) {
			d.SetTrickleDelay(200 * time.Millisecond)
			d.SetFault(simulator.FaultTrickle)
		}, "timeout"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dev := panel("1", "udp")
			c.setup(dev)
			f := startFleet(t, "  timeout: 1s\n", devSpec{name: "d", dev: dev})
			out := f.scrape(t)
			requireLine(t, out, `basip_up{device="d"} 0`)
			requireLine(t, out, fmt.Sprintf(`basip_poll_errors_total{device="d",endpoint="settings",reason=%q} 1`, c.reason))
		})
	}
	if n := target.Requests.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests: the redirect to another host was followed", n)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	dev := panel("1", "udp")
	dev.SetFault(simulator.FaultServerError)
	f := startFleet(t, "", devSpec{name: "d", dev: dev})
	requireLine(t, f.scrape(t), `basip_up{device="d"} 0`)
	if got := dev.Requests.Load(); got != 3 {
		t.Errorf("requests = %d, want 3 (one and two retries)", got)
	}
}

func TestTLSVerification(t *testing.T) {
	t.Run("self-signed is refused by default", func(t *testing.T) {
		f := startFleet(t, "", devSpec{name: "d", dev: panel("1", "tls"), tls: true})
		out := f.scrape(t)
		requireLine(t, out, `basip_up{device="d"} 0`)
		requireLine(t, out, `basip_poll_errors_total{device="d",endpoint="settings",reason="tls"} 1`)
	})
	t.Run("insecure_skip_verify", func(t *testing.T) {
		f := startFleet(t, "", devSpec{name: "d", dev: panel("1", "tls"), tls: true, extra: "    tls_config: {insecure_skip_verify: true}\n"})
		requireLine(t, f.scrape(t), `basip_up{device="d"} 1`)
	})
	t.Run("ca_file", func(t *testing.T) {
		dev := panel("1", "tls")
		srv, err := simulator.ServeTLS(dev)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		f := startFleet(t, "", devSpec{name: "other", dev: panel("2", "udp")})
		applyYAML(t, f, f.yaml+fmt.Sprintf("  - name: d\n    address: %s\n    tls_config: {ca_file: %s}\n", srv.URL, ca))
		requireLine(t, f.scrape(t), `basip_up{device="d"} 1`)
	})
}
