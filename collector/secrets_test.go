package collector

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/simulator"
)

// secretForms are the ways a password could leak: as is and as the MD5 the
// login sends, in both cases.
func secretForms(p string) []string {
	sum := md5.Sum([]byte(p))
	h := hex.EncodeToString(sum[:])
	return []string{p, h, strings.ToUpper(h)}
}

func TestSecretsNeverInMetricsOrLogs(t *testing.T) {
	const wrongPassword = otherPassword // configured for one device, refused by it
	sipPassword := "s1p-101-pass"       // revealed by the monitor

	good := monitor("101", "tls")
	wrong := panel("2", "udp")
	wrong.SetPassword("Device-Has-Another-1")
	unauthorized := panel("3", "udp")
	unauthorized.SetFault(simulator.FaultUnauthorized)
	redirect := panel("4", "udp")
	redirect.SetRedirect("http://localhost:1")
	redirect.SetFault(simulator.FaultRedirect)
	hang := panel("5", "udp")
	hang.SetFault(simulator.FaultHang)
	failing := panel("6", "udp")
	failing.SetFault(simulator.FaultServerError)
	garbled := panel("7", "udp")
	garbled.SetRawSettings([]byte("<html>" + testPassword + "</html>"))
	garbled.SetFault(simulator.FaultRawSettings)
	expired := panel("8", "udp")

	f := startFleet(t, "  timeout: 1s\n",
		devSpec{name: "good", dev: good},
		devSpec{name: "wrong", dev: wrong, extra: "    credentials: other\n"},
		devSpec{name: "unauthorized", dev: unauthorized},
		devSpec{name: "redirect", dev: redirect},
		devSpec{name: "hang", dev: hang},
		devSpec{name: "failing", dev: failing},
		devSpec{name: "garbled", dev: garbled},
		devSpec{name: "expired", dev: expired},
		devSpec{name: "tls", dev: panel("9", "udp"), tls: true},
	)
	y := f.yaml

	var seen strings.Builder
	tokens := map[string]bool{}
	for i := range 3 {
		seen.WriteString(f.scrape(t))
		for _, name := range []string{"good", "wrong", "unauthorized", "expired", "nope", "http://127.0.0.1:1"} {
			_, body := f.get(t, "/probe?target="+name, "")
			seen.WriteString(body)
		}
		for _, d := range []*simulator.Device{good, unauthorized, expired, garbled} {
			for _, tok := range d.Tokens() {
				tokens[tok] = true
			}
		}
		if i == 0 {
			expired.ExpireTokens()
		}
	}
	// A reload that fails on a bad config must not echo the password either.
	bad := strings.Replace(y, "devices:\n", "devices:\n  - name: broken\n    address: \"http://x/?password="+testPassword+"\"\n", 1)
	if _, err := config.Parse([]byte(bad), "bad.yaml", t.TempDir()); err == nil {
		t.Fatal("bad config accepted")
	} else {
		seen.WriteString(err.Error())
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password_file: %s\n    password: %q\n", pwFile, testPassword)
	if _, err := config.Parse([]byte(withFile), "both.yaml", t.TempDir()); err == nil {
		t.Fatal("config with both password and password_file accepted")
	} else {
		seen.WriteString(err.Error())
	}
	seen.WriteString(f.logs.String())

	if len(tokens) == 0 {
		t.Fatal("no token was issued: the test exercises nothing")
	}
	if !strings.Contains(f.logs.String(), "level=DEBUG") {
		t.Fatal("no debug log was written")
	}
	all := seen.String()
	secrets := append(append(append(secretForms(testPassword), secretForms(wrongPassword)...), secretForms(sipPassword)...), secretForms("Device-Has-Another-1")...)
	for tok := range tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %q leaked; context: %s", s[:3]+"...", around(all, s))
		}
	}
	// The scrapes did go through the failure paths.
	for _, reason := range []string{`device="wrong",endpoint="settings",reason="auth"`, `device="unauthorized",endpoint="settings",reason="auth"`, `device="redirect",endpoint="settings",reason="http_status"`,
		`device="hang",endpoint="settings",reason="timeout"`, `device="failing",endpoint="settings",reason="http_status"`, `device="garbled",endpoint="settings",reason="decode"`, `device="tls",endpoint="settings",reason="tls"`} {
		if !strings.Contains(all, reason) {
			t.Errorf("no poll error %s: the path was not exercised", reason)
		}
	}
}

func around(all, s string) string {
	i := strings.Index(all, s)
	lo, hi := max(0, i-80), min(len(all), i+len(s)+20)
	return all[lo:hi]
}
