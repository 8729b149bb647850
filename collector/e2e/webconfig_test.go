//go:build linux

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
	"golang.org/x/crypto/bcrypt"
)

// serverCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns the certificate.
func serverCert(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM, err := simulator.SelfSigned(simulator.CertOptions{Hosts: []string{"127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(dir, "server.crt"), string(certPEM))
	replaceFile(t, filepath.Join(dir, "server.key"), string(keyPEM))
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestWebConfigTLSAndBasicAuth runs the binary with --web.config.file
// (TLS and basic auth) and checks every endpoint with a real TLS client:
// no, wrong and right credentials, plain HTTP, an untrusted certificate.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "prometheus", "Scrape-Me-8080"
	_, srv := serveDoor(t)

	dir := t.TempDir()
	cert := serverCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n"
	replaceFile(t, filepath.Join(dir, "web.yml"), webCfg)
	replaceFile(t, filepath.Join(dir, "config.yaml"), "global:\n  collect: [settings]\n  min_poll_interval: 0s\ncredentials:\n  default:\n    username: admin\n    password: "+firstPassword+"\ndevices:\n  - name: door\n    address: "+srv.URL+"\n")

	p := startExporterBinary(t, "--config.file="+filepath.Join(dir, "config.yaml"), "--web.config.file="+filepath.Join(dir, "web.yml"))
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	c := loopbackClient(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	base := "https://" + p.addr

	endpoints := []struct {
		method, path string
		code         int    // with the right credentials
		body         string // that the answer contains
	}{
		{"GET", "/", 200, "door"},
		{"GET", "/metrics", 200, `basip_up{device="door"} 1`},
		{"GET", "/probe?target=door", 200, `basip_up{device="door"} 1`},
		{"GET", "/probe?target=192.0.2.1", 400, "unknown target"},
		{"GET", "/-/healthy", 200, "Healthy"},
		{"GET", "/-/ready", 200, "Ready"},
		{"POST", "/-/reload", 200, "ok"},
		{"GET", "/config", 200, "password: <secret>"},
		{"GET", "/debug?device=door", 200, "/api/v1/device/sip/settings"},
		{"GET", "/nope", 404, ""},
	}
	for _, e := range endpoints {
		for _, cred := range []struct{ user, pass string }{{"", ""}, {user, "wrong"}, {"someone", pass}, {user, pass + "x"}, {strings.ToUpper(user), pass}} {
			code, body := fetchURL(t, c, e.method, base+e.path, cred.user, cred.pass)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s as %q/%q = %d, want 401\n%.200s", e.method, e.path, cred.user, cred.pass, code, body)
			}
			if strings.Contains(body, "basip_") || (e.body != "" && strings.Contains(body, e.body)) {
				t.Errorf("%s %s without the right credentials shows content", e.method, e.path)
			}
		}
		code, body := fetchURL(t, c, e.method, base+e.path, user, pass)
		if code != e.code || !strings.Contains(body, e.body) {
			t.Errorf("%s %s with the right credentials = %d, want %d with %q\n%.300s", e.method, e.path, code, e.code, e.body, body)
		}
	}
	if code, body := fetchURL(t, c, "GET", base+"/config", user, pass); strings.Contains(body, firstPassword) {
		t.Errorf("/config (%d) shows the device password", code)
	}

	// The 401 asks for basic auth.
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("401 without WWW-Authenticate: Basic: %q", resp.Header.Get("WWW-Authenticate"))
	}

	// Plain HTTP gets no content.
	code, body, err := tryFetchURL(loopbackClient(nil), "GET", "http://"+p.addr+"/metrics", user, pass)
	if err == nil && (code == 200 || strings.Contains(body, "basip_")) {
		t.Errorf("plain HTTP to the TLS port = %d\n%.200s", code, body)
	}
	// A client that does not trust the certificate refuses it.
	_, _, err = tryFetchURL(loopbackClient(&tls.Config{MinVersion: tls.VersionTLS12}), "GET", base+"/-/healthy", user, pass)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the CA: %v, want an unknown authority error", err)
	}
	if strings.Contains(p.output(), pass) || strings.Contains(p.output(), firstPassword) {
		t.Error("a password appears in the logs")
	}
}
