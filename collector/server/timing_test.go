package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
)

// A client that reads a large /metrics slowly (it reads nothing for 1.5 s,
// then everything) does not make the next scrapes reserve that time for
// writing: the time kept back for the write is learned from rendering into
// memory, never from the client's socket. The next scrape, with a 3 s
// timeout, polls every one of the 800 devices.
func TestSlowReaderDoesNotBlindTheNextScrape(t *testing.T) {
	y, _ := testutil.SimulatedFleet(t, 800, "[settings, status, info]", 256, "")
	_, srv, _ := serve(t, string(y), t.TempDir(), nil)
	scrape := func() string {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if out := scrape(); strings.Count(out, "basip_up{") != 800 {
		t.Fatalf("first scrape: %d devices", strings.Count(out, "basip_up{"))
	}
	// The slow reader: asks without gzip, reads nothing for 1.5 s, through
	// a small send buffer, so that the exporter's writes block (loopback's
	// own buffers would take a few MiB).
	slow := httptest.NewUnstartedServer(srv.Config.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow.Listener = smallBuffers{ln}
	slow.Start()
	defer slow.Close()
	conn, err := net.Dial("tcp", slow.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	n, err := io.Copy(io.Discard, bufio.NewReader(conn))
	if err != nil || n < 1<<20 {
		t.Fatalf("the slow reader read %d bytes (%v): the answer must outgrow the socket buffers", n, err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := string(b)
	if up, all := strings.Count(testutil.Grep(out, "basip_up{"), "} 1"), strings.Count(out, "basip_up{"); up != 800 || all != 800 {
		t.Errorf("after a slow reader, %d of %d devices up in a 3 s scrape", up, all)
	}
}

// smallBuffers gives each accepted connection an 8 KiB send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(8192)
	}
	return c, err
}
