package collector

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/vendors"
)

// FuzzBoundary serves one answer to every request of a device of every
// vendor (text, JSON, XML alike) and scrapes them through the exporter:
// no answer makes an exposition that does not parse, has a duplicate
// series, carries a control or bidi character raw, or has more account
// series for a device than its vendor's bound. The seeds are the field
// answers of every vendor.
func FuzzBoundary(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fieldDir, "*", "*.txt"))
	for _, path := range files {
		for _, a := range readFieldCase(f, path).answers {
			f.Add(a.body)
		}
	}
	f.Add(`{"success":true,"result":{"accounts":[{"account":1,"registered":true},{"account":1,"registered":false}]}}`)
	f.Add("AccountReg1=1\nAccUser1=\x1b]0;x\x07\u202e\nRegServerUrl1=pbx\xff\n")

	var body atomic.Pointer[string]
	empty := ""
	body.Store(&empty)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(*body.Load())) })
	serve := func() string {
		srv := httptest.NewServer(h)
		f.Cleanup(srv.Close)
		return srv.URL
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(serve(), "http://"))
	y := "credentials:\n  default: {username: admin, password: Fuzz-Pass-1}\nglobal:\n  collect: [settings, status, info]\n  min_poll_interval: 0s\n  info_ttl: 1ns\ndevices:\n"
	for _, v := range config.Vendors {
		y += fmt.Sprintf("  - {name: %s, address: %s, vendor: %s", v, serve(), v)
		if v == config.VendorUfanet {
			y += ", status_port: " + port
		}
		y += "}\n"
	}
	exp := newExporter(f, []byte(y))

	f.Fuzz(func(t *testing.T, answer string) {
		body.Store(&answer)
		out := scrapeExporter(t, exp, 3*time.Second)
		parseExposition(t, out)
		seen := map[string]bool{}
		accounts := map[string]int{}
		for _, line := range strings.Split(out, "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			for _, r := range line {
				if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("%U raw in %q", r, line)
				}
			}
			series := line[:strings.LastIndexByte(line, ' ')]
			if seen[series] {
				t.Fatalf("duplicate series %s", series)
			}
			seen[series] = true
			if strings.HasPrefix(series, "basip_sip_account_registered{") {
				i := strings.Index(series, `device="`) + len(`device="`)
				accounts[series[i:i+strings.IndexByte(series[i:], '"')]]++
			}
		}
		for dev, n := range accounts {
			if max := vendors.SpecOf(dev).MaxAccounts; n > max {
				t.Fatalf("%s: %d account series, at most %d", dev, n, max)
			}
		}
	})
}
