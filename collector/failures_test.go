package collector

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBadAnswers serves hostile settings bodies. Each is basip_up 0 with
// its reason (or 1 where the data is still usable), a scrape inside
// Prometheus' timeout, bounded memory and no goroutine left behind.
func TestBadAnswers(t *testing.T) {
	cases := map[string]struct {
		body   []byte
		reason string // empty: the device stays up
	}{
		"malformed JSON":          {body: []byte(`{"proxy": "sip:x", `), reason: "decode"},
		"truncated in a string":   {body: []byte(`{"proxy": "sip:x`), reason: "decode"},
		"trailing garbage":        {body: []byte(`{"proxy": "sip:x"} <html>`), reason: "decode"},
		"HTML":                    {body: []byte(`<html><body>Login</body></html>`), reason: "decode"},
		"HTML after white space":  {body: []byte("\r\n  <!DOCTYPE html><html></html>"), reason: "decode"},
		"empty body":              {body: nil, reason: "decode"},
		"white space only":        {body: []byte(" \n\t "), reason: "decode"},
		"JSON null":               {body: []byte(`null`), reason: "decode"},
		"array":                   {body: []byte(`[1,2]`), reason: "decode"},
		"string":                  {body: []byte(`"ok"`), reason: "decode"},
		"string for a number":     {body: []byte(`{"registration_interval": "30"}`), reason: "decode"},
		"string for a bool":       {body: []byte(`{"enable": "true"}`), reason: "decode"},
		"number for a string":     {body: []byte(`{"password": 123456}`), reason: "decode"},
		"array for a string":      {body: []byte(`{"transport": ["udp"]}`), reason: "decode"},
		"array for an object":     {body: []byte(`{"stun": ["stun.example.com", 3478]}`), reason: "decode"},
		"string for a port":       {body: []byte(`{"stun": {"ip": "s", "port": "3478"}}`), reason: "decode"},
		"fraction for a number":   {body: []byte(`{"timeout": 120.5}`), reason: "decode"},
		"number beyond int64":     {body: []byte(`{"timeout": 1e400}`), reason: "decode"},
		"too large":               {body: bytes.Repeat([]byte(" "), 2<<20), reason: "too_large"},
		"deeply nested":           {body: []byte(`{"net":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`), reason: "decode"},
		"null fields are unknown": {body: []byte(`{"enable": null, "proxy": null, "timeout": null, "stun": null}`)},
		"unknown fields ignored":  {body: []byte(`{"proxy": "sip:a", "net": {"x": 1}, "user_agent": "y"}`)},
		"label-hostile strings":   {body: []byte("{\"proxy\": \"sip:\\\"a\\\"\\n\\\\b\", \"user\": \"\xff\xfe\"}")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			dev := panel("1", "udp")
			dev.SetRawSettings(c.body)
			dev.SetFault(simulator.FaultRawSettings)
			f := startFleet(t, hostileGlobal, devSpec{name: "d", dev: dev})
			out := boundedScrape(t, f)
			if c.reason == "" {
				requireLine(t, out, `basip_up{device="d"} 1`)
				if !strings.Contains(out, "basip_sip_info{") {
					t.Errorf("no basip_sip_info")
				}
			} else {
				requireLine(t, out, `basip_up{device="d"} 0`)
				requireLine(t, out, pollErrorLine("d", c.reason, 1))
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

// TestFailureReasons runs devices that fail below the body: at the HTTP,
// TCP or login level. Each is basip_up 0 with its reason, a scrape inside
// Prometheus' timeout, bounded memory and no goroutine left behind.
func TestFailureReasons(t *testing.T) {
	// The other host of the redirects: 127.0.0.2 is loopback too, but not
	// the devices' 127.0.0.1. It records every byte that reaches it.
	other, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	type env struct {
		dev  *simulator.Device
		self string // the device's own URL
	}
	cases := []struct {
		name string
		// setup makes the device misbehave before the scrape; warm, when
		// set, does it after a first good scrape (a token is cached).
		setup, warm func(e env)
		raw         func(net.Conn) // a raw TCP server instead of a device
		dead        bool           // an address nothing listens on
		reason      string
		authFailure int
		maxRequests int64 // requests the device may see in the failing scrape; 0: no check
	}{
		{name: "500 for every request", setup: func(e env) { e.dev.SetFault(simulator.FaultServerError) }, reason: "http_status", maxRequests: 3},
		{name: "redirect of the login to another host", setup: func(e env) {
			e.dev.SetRedirect(other.URL)
			e.dev.SetFault(simulator.FaultRedirect)
		}, reason: "http_status", maxRequests: 1},
		{name: "redirect of the token to another host", setup: func(e env) {
			e.dev.SetRedirect(other.URL)
			e.dev.SetFault(simulator.FaultRedirectSettings)
		}, reason: "http_status", maxRequests: 2},
		{name: "redirect loop", setup: func(e env) {
			e.dev.SetRedirect(e.self)
			e.dev.SetFault(simulator.FaultRedirect)
		}, reason: "http_status", maxRequests: 3},
		{name: "connection closed mid-body", setup: func(e env) { e.dev.SetFault(simulator.FaultCloseMidBody) }, reason: "connection"},
		{name: "body slower than the deadline", setup: func(e env) {
			e.dev.SetTrickleDelay(200 * time.Millisecond)
			e.dev.SetFault(simulator.FaultTrickle)
		}, reason: "timeout"},
		{name: "headers trickled byte by byte", setup: func(e env) {
			e.dev.SetTrickleDelay(50 * time.Millisecond)
			e.dev.SetFault(simulator.FaultTrickleHeaders)
		}, reason: "timeout"},
		{name: "hanging device", setup: func(e env) { e.dev.SetFault(simulator.FaultHang) }, reason: "timeout"},
		{name: "64 MiB body", setup: func(e env) { e.dev.SetFault(simulator.FaultHugeBody) }, reason: "too_large"},
		{name: "64 MiB body, chunked", setup: func(e env) {
			e.dev.SetHugeBody(simulator.DefaultHugeBodySize, true)
			e.dev.SetFault(simulator.FaultHugeBody)
		}, reason: "too_large"},
		{name: "401 persisting after a fresh login", setup: func(e env) { e.dev.SetFault(simulator.FaultUnauthorized) }, reason: "auth", authFailure: 1, maxRequests: 2},
		{name: "401 persisting after a re-login", warm: func(e env) { e.dev.SetFault(simulator.FaultUnauthorized) }, reason: "auth", authFailure: 1, maxRequests: 3},
		{name: "login answers HTML", setup: func(e env) {
			e.dev.SetRawLogin([]byte("<html>Please log in</html>"))
			e.dev.SetFault(simulator.FaultRawLogin)
		}, reason: "decode", maxRequests: 1},
		{name: "login answers no token", setup: func(e env) {
			e.dev.SetRawLogin([]byte(`{"token": ""}`))
			e.dev.SetFault(simulator.FaultRawLogin)
		}, reason: "decode", maxRequests: 1},
		{name: "login answers a number for the token", setup: func(e env) {
			e.dev.SetRawLogin([]byte(`{"token": 12345}`))
			e.dev.SetFault(simulator.FaultRawLogin)
		}, reason: "decode", maxRequests: 1},
		{name: "echo service on the address", raw: simulator.Echo, reason: "connection"},
		{name: "not HTTP on the address", raw: simulator.Banner("SSH-2.0-OpenSSH_9.6\r\n"), reason: "connection"},
		{name: "nothing listening", dead: true, reason: "connection"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			dev := panel("1", "udp")
			spec := devSpec{name: "d", dev: dev}
			switch {
			case c.raw != nil:
				rs, err := simulator.ServeRaw(c.raw)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { rs.Close() })
				spec.addr = rs.URL
			case c.dead:
				spec.addr = deadAddress(t)
			}
			f := startFleet(t, hostileGlobal, spec)
			e := env{dev: dev}
			if srv := f.servers["d"]; srv != nil {
				e.self = srv.URL
			}
			if c.setup != nil {
				c.setup(e)
			}
			if c.warm != nil {
				requireLine(t, f.scrape(t), `basip_up{device="d"} 1`)
				c.warm(e)
			}
			requestsBefore := dev.Requests.Load()
			out := boundedScrape(t, f)
			requireLine(t, out, `basip_up{device="d"} 0`)
			requireLine(t, out, pollErrorLine("d", c.reason, 1))
			requireLine(t, out, fmt.Sprintf(`basip_auth_failures_total{device="d"} %d`, c.authFailure))
			if n := dev.Requests.Load() - requestsBefore; c.maxRequests > 0 && n > c.maxRequests {
				t.Errorf("the device saw %d requests in the scrape, want at most %d", n, c.maxRequests)
			}
		})
	}
	// Neither the login query nor the token reached the other host. That it
	// would have noticed: a connection to it is recorded.
	if n, got := other.Connections.Load(), other.Received(); n != 0 || len(got) != 0 {
		t.Errorf("the other host received %d connections and %q: a redirect was followed", n, got)
	}
	conn, err := net.Dial("tcp", other.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("ping"))
	conn.Close()
	for deadline := time.Now().Add(2 * time.Second); other.Connections.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if other.Connections.Load() != 1 {
		t.Errorf("control: the other host did not record a connection made to it")
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

// TestTLSVerification: certificates are verified unless tls_config says
// otherwise; an unknown CA, an expired certificate and one for another host
// are each reason tls, inside the scrape's deadline, leaving no goroutine.
func TestTLSVerification(t *testing.T) {
	// trusted serves dev with a certificate shaped by o and returns a
	// device entry that trusts that certificate as its CA.
	trusted := func(t *testing.T, dev *simulator.Device, o simulator.CertOptions) devSpec {
		url, ca := serveTLSTrusted(t, dev, o)
		return devSpec{name: "d", addr: url, extra: fmt.Sprintf("    tls_config: {ca_file: %s}\n", ca)}
	}
	failing := []struct {
		name    string
		spec    func(t *testing.T, dev *simulator.Device) devSpec
		message string // in the device's last error
	}{
		{"unknown CA (self-signed)", func(t *testing.T, dev *simulator.Device) devSpec {
			return devSpec{name: "d", dev: dev, tls: true}
		}, "unknown authority"},
		{"expired certificate", func(t *testing.T, dev *simulator.Device) devSpec {
			return trusted(t, dev, simulator.CertOptions{NotAfter: time.Now().Add(-time.Hour)})
		}, "expired"},
		{"certificate for another host", func(t *testing.T, dev *simulator.Device) devSpec {
			return trusted(t, dev, simulator.CertOptions{Hosts: []string{"intercom.example.com", "192.0.2.7"}})
		}, "not 127.0.0.1"},
	}
	for _, c := range failing {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			dev := panel("1", "tls")
			f := startFleet(t, hostileGlobal, c.spec(t, dev))
			out := boundedScrape(t, f)
			requireLine(t, out, `basip_up{device="d"} 0`)
			requireLine(t, out, pollErrorLine("d", "tls", 1))
			if st := f.exp.Statuses(); !strings.Contains(st[0].LastError, c.message) {
				t.Errorf("last error %q does not say %q", st[0].LastError, c.message)
			}
			if n := dev.Requests.Load(); n != 0 {
				t.Errorf("the device received %d HTTP requests over an unverified connection", n)
			}
		})
	}
	t.Run("insecure_skip_verify", func(t *testing.T) {
		leakCheck(t)
		f := startFleet(t, hostileGlobal, devSpec{name: "d", dev: panel("1", "tls"), tls: true, extra: "    tls_config: {insecure_skip_verify: true}\n"})
		requireLine(t, boundedScrape(t, f), `basip_up{device="d"} 1`)
	})
	t.Run("ca_file", func(t *testing.T) {
		leakCheck(t)
		f := startFleet(t, hostileGlobal, trusted(t, panel("1", "tls"), simulator.CertOptions{}))
		requireLine(t, boundedScrape(t, f), `basip_up{device="d"} 1`)
	})
}
