package vendors

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/internal/rawdev"
	"github.com/basip/basip_exporter/collector/simulator"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

// clientAt is a client of vendor for a device at url (its status port the
// same, for Ufanet).
func clientAt(t *testing.T, vendor, url string) device.Client {
	t.Helper()
	y := fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\ndevices:\n  - name: d\n    address: %s\n    vendor: %s\n", testPassword, url, vendor)
	if vendor == "ufanet" {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
		y += "    status_port: " + port + "\n"
	}
	cfg, err := config.Parse([]byte(y), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg.Devices[0], nil)
	t.Cleanup(c.Close)
	return c
}

// TestHostileDevices: whatever a device of any vendor answers, its client
// fails with the reason the BAS-IP client gives for it, within the
// deadline, quoting nothing of the answer.
func TestHostileDevices(t *testing.T) {
	const mark = "Hostile-Marker-2291"
	elsewhere, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elsewhere.Close() })
	answer := func(code int, body string) string {
		return fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s", code, len(body), body)
	}
	cases := map[string]struct {
		answer func(c net.Conn, conn, req int, r *http.Request) string
		reason device.Reason
	}{
		"HTML": {func(net.Conn, int, int, *http.Request) string {
			return answer(200, "<html><body>"+mark+"</body></html>")
		}, device.ReasonDecode},
		"truncated JSON": {func(net.Conn, int, int, *http.Request) string { return answer(200, `{"success":true,"`+mark) }, device.ReasonDecode},
		"JSON array":     {func(net.Conn, int, int, *http.Request) string { return answer(200, `["`+mark+`"]`) }, device.ReasonDecode},
		"empty 200":      {func(net.Conn, int, int, *http.Request) string { return answer(200, "") }, device.ReasonDecode},
		"2 MiB": {func(net.Conn, int, int, *http.Request) string {
			return answer(200, strings.Repeat("A=", 1<<20))
		}, device.ReasonTooLarge},
		"500": {func(net.Conn, int, int, *http.Request) string { return answer(500, mark) }, device.ReasonHTTPStatus},
		"1xx then 404": {func(net.Conn, int, int, *http.Request) string {
			return "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + answer(404, "")
		}, device.ReasonHTTPStatus},
		"redirect to another host": {func(net.Conn, int, int, *http.Request) string {
			return "HTTP/1.1 302 Found\r\nLocation: " + elsewhere.URL + "/x\r\nContent-Length: 0\r\n\r\n"
		}, device.ReasonHTTPStatus},
		"closed mid-body": {func(c net.Conn, _, _ int, _ *http.Request) string {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":"))
			return ""
		}, device.ReasonConnection},
		"not HTTP": {func(net.Conn, int, int, *http.Request) string { return "SSH-2.0-" + mark + "\r\n" }, device.ReasonConnection},
		"headers a byte at a time": {func(c net.Conn, _, _ int, _ *http.Request) string {
			for _, b := range []byte("HTTP/1.1 200 OK\r\nX: ") {
				if _, err := c.Write([]byte{b}); err != nil {
					return ""
				}
				time.Sleep(100 * time.Millisecond)
			}
			return ""
		}, device.ReasonTimeout},
		"401 without a challenge": {func(net.Conn, int, int, *http.Request) string { return answer(401, mark) }, device.ReasonAuth},
	}
	for _, vendor := range vendorsim.Vendors {
		for name, c := range cases {
			t.Run(vendor+"/"+name, func(t *testing.T) {
				t.Parallel()
				url, _ := rawdev.HTTP(t, c.answer)
				cl := clientAt(t, vendor, url)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				start := time.Now()
				_, _, err := cl.SIPSettings(ctx)
				if got := device.ReasonOf(err); got != c.reason {
					t.Errorf("reason %s (%v), want %s", got, err, c.reason)
				}
				if took := time.Since(start); took > 1500*time.Millisecond {
					t.Errorf("took %v, past the 1 s deadline", took)
				}
				if err != nil && strings.Contains(err.Error(), mark) {
					t.Errorf("error quotes the answer: %v", err)
				}
				_, _, err = cl.SIPStatus(ctx)
				if err != nil && strings.Contains(err.Error(), mark) {
					t.Errorf("status error quotes the answer: %v", err)
				}
			})
		}
	}
	if n := elsewhere.Connections.Load(); n != 0 {
		t.Errorf("the other host received %d connections", n)
	}
}

// TestEchoService: an echo service on a device's address (it sends back
// the request, credentials and all) is a connection failure, and the
// error quotes none of it.
func TestEchoService(t *testing.T) {
	echo, err := simulator.ServeRaw(simulator.Echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	for _, vendor := range vendorsim.Vendors {
		t.Run(vendor, func(t *testing.T) {
			_, _, err := clientAt(t, vendor, echo.URL).SIPSettings(ctx(t))
			if device.ReasonOf(err) != device.ReasonConnection || strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "Authorization") {
				t.Errorf("err %v", err)
			}
		})
	}
}
