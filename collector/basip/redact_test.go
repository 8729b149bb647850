package basip

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator"
)

// TestErrorsRedactTheClientsSecretsByValue: devices that quote in their
// refusals what they were sent (the Basic header, the plain password, the
// login's MD5, a JWT-shaped token) give errors, and traced requests, with
// none of it, whatever the form.
func TestErrorsRedactTheClientsSecretsByValue(t *testing.T) {
	const (
		sent   = "Kestrel-Mango-4410" // configured
		wanted = "Other-Secret-7781"  // what the device takes
	)
	sum := md5.Sum([]byte(sent))
	forms := []string{sent, hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
		base64.StdEncoding.EncodeToString([]byte("admin:" + sent)), base64.RawStdEncoding.EncodeToString([]byte("admin:" + sent))[:12]}
	for name, c := range map[string]struct {
		auth  simulator.AuthMode
		echo  simulator.CredentialEcho
		basic bool
		want  string // in the error
	}{
		"Basic header echoed in the 401 body": {simulator.AuthBasic, simulator.EchoAuthorization, true, "HTTP 401: Basic <secret>"},
		"plain password quoted":               {simulator.AuthBasic, simulator.EchoCredentials, true, "HTTP 401: Wrong password <secret>"},
		"login MD5 quoted":                    {simulator.AuthToken, simulator.EchoCredentials, false, "HTTP 400: Wrong password hash <secret>"},
	} {
		t.Run(name, func(t *testing.T) {
			d := &simulator.Device{Username: "admin", Password: wanted, APIVersion: "v1", Auth: c.auth, Echo: c.echo}
			d.SetSettings(simulator.PanelSettings("1", "udp"))
			srv, err := simulator.Serve(d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			u, _ := url.Parse(srv.URL)
			cl := New(Options{BaseURL: u, APIVersion: "v1", Username: "admin", Password: sent, Basic: c.basic})
			t.Cleanup(cl.Close)
			tr := &device.Trace{}
			_, _, err = cl.SIPSettings(device.WithTrace(context.Background(), tr))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q in it", err, c.want)
			}
			text := err.Error()
			for _, r := range tr.Requests() {
				text += "\n" + r.Error
			}
			for _, f := range forms {
				if strings.Contains(text, f) {
					t.Errorf("%q in %q", f, text)
				}
			}
		})
	}
	t.Run("JWT-shaped token quoted", func(t *testing.T) {
		d := &simulator.Device{Username: "admin", Password: sent, APIVersion: "v1", TokenStyle: simulator.TokenJWT, Echo: simulator.EchoCredentials}
		d.SetSettings(simulator.PanelSettings("1", "udp"))
		srv, err := simulator.Serve(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		u, _ := url.Parse(srv.URL)
		cl := New(Options{BaseURL: u, APIVersion: "v1", Username: "admin", Password: sent})
		t.Cleanup(cl.Close)
		if _, _, err := cl.SIPSettings(context.Background()); err != nil {
			t.Fatal(err)
		}
		d.SetFault(simulator.FaultUnauthorized) // the token, then a fresh one, refused and quoted
		_, _, err = cl.SIPSettings(context.Background())
		if err == nil || !strings.Contains(err.Error(), "Unknown token <secret>") {
			t.Fatalf("error %v", err)
		}
		for _, tok := range d.IssuedTokens() {
			if !strings.HasPrefix(tok, "eyJ") || strings.Count(tok, ".") != 2 {
				t.Fatalf("token %q is not JWT-shaped", tok)
			}
			if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), tok[:40]) {
				t.Errorf("token in %q", err)
			}
		}
	})
}
