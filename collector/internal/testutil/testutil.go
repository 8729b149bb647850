// Package testutil holds what the exporter's tests share: simulated fleets
// with their configuration, and helpers to read expositions and logs.
package testutil

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// Credentials the simulated devices of SimulatedFleet accept.
const (
	User     = "admin"
	Password = "Zebra-Quartz-4417"
)

// Monitor returns a simulated indoor monitor (API v0) accepting User and
// Password.
func Monitor(user, transport string) *simulator.Device {
	d := &simulator.Device{Username: User, Password: Password, APIVersion: "v0"}
	d.SetSettings(simulator.MonitorSettings(user, transport))
	return d
}

// Panel returns a simulated door panel (API v1) accepting User and Password.
func Panel(user, transport string) *simulator.Device {
	d := &simulator.Device{Username: User, Password: Password, APIVersion: "v1"}
	d.SetSettings(simulator.PanelSettings(user, transport))
	return d
}

// SimulatedFleet serves n simulated devices (half monitors, half panels,
// every endpoint answering, label site in ten values) on loopback and
// returns them with the configuration of an exporter over them: global
// collect and concurrency as given, top placed before the devices. The
// servers close when tb ends.
func SimulatedFleet(tb testing.TB, n int, collect string, concurrency int, top string) ([]byte, []*simulator.Device) {
	tb.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  collect: %s\n  concurrency: %d\ncredentials:\n  default:\n    username: %s\n    password: %q\n%sdevices:\n",
		collect, concurrency, User, Password, top)
	devs := make([]*simulator.Device, n)
	for i := range n {
		var d *simulator.Device
		if i%2 == 0 {
			d = Monitor(fmt.Sprint(100+i), "tls")
		} else {
			d = Panel(fmt.Sprint(100+i), "udp")
		}
		d.SetStatus(simulator.Status("OK", 1732600000))
		d.SetInfo(simulator.Info("dev", "AQ-07L", "monitor", "5.3.2", d.APIVersion))
		srv, err := simulator.Serve(d)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { srv.Close() })
		devs[i] = d
		fmt.Fprintf(&y, "  - name: dev-%05d\n    address: %s\n    api_version: %s\n    labels: {site: s%d}\n", i, srv.URL, d.APIVersion, i%10)
	}
	return []byte(y.String()), devs
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for logs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// HasLine reports whether the exposition has exactly this sample line.
func HasLine(exposition, line string) bool {
	for _, l := range strings.Split(exposition, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// RequireLine fails t unless the exposition has exactly this line.
func RequireLine(t testing.TB, exposition, line string) {
	t.Helper()
	if !HasLine(exposition, line) {
		t.Errorf("exposition lacks %q; got:\n%s", line, Grep(exposition, "basip_"))
	}
}

// Grep returns the sample lines (not comments) of s that contain substr.
func Grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// SecretForms returns the ways a password could leak: as itself, and as the
// upper- and lower-case hex of its MD5, as the login sends it.
func SecretForms(p string) []string {
	sum := md5.Sum([]byte(p))
	h := hex.EncodeToString(sum[:])
	return []string{p, h, strings.ToUpper(h)}
}

// Around returns s in all with some context either side, for a message
// that shows where a secret leaked without the secret's neighbours being
// lost.
func Around(all, s string) string {
	i := strings.Index(all, s)
	if i < 0 {
		return ""
	}
	return all[max(0, i-80):min(len(all), i+len(s)+20)]
}

// ServeTLSTrusted serves d over HTTPS with a certificate shaped by o and
// writes that certificate to a CA file, for a tls_config that trusts it. It
// returns the URL and the file; the server closes when tb ends.
func ServeTLSTrusted(tb testing.TB, d *simulator.Device, o simulator.CertOptions) (url, caFile string) {
	tb.Helper()
	srv, err := simulator.ServeTLSWith(d, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	caFile = filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return srv.URL, caFile
}
