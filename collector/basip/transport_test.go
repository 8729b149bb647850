package basip

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
)

// rawServer answers every connection with handle, on 127.0.0.1.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, hc *http.Client, url string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestTransportReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"ok":true}`) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	hc := NewHTTPClient(nil)
	defer CloseIdleConnections(hc)
	for range 5 {
		code, body, err := get(t, hc, "http://"+ln.Addr().String()+"/x")
		if err != nil || code != 200 || body != `{"ok":true}` {
			t.Fatalf("%d %q %v", code, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential requests, want 1", n)
	}
	// A device that closed the idle connection meanwhile: the request is
	// sent again on a new connection.
	srv.SetKeepAlivesEnabled(false) // closes idle connections
	time.Sleep(50 * time.Millisecond)
	srv.SetKeepAlivesEnabled(true)
	if code, _, err := get(t, hc, "http://"+ln.Addr().String()+"/x"); err != nil || code != 200 {
		t.Fatalf("after the device closed the idle connection: %d %v", code, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one closed by the device, one new)", n)
	}
}

func TestTransportLimitsHeaders(t *testing.T) {
	url := rawServer(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Junk: " + strings.Repeat("a", 1000) + "\r\n"
		for range 200 { // 200 KB of headers
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "\r\n{}")
	})
	hc := NewHTTPClient(nil)
	defer CloseIdleConnections(hc)
	_, _, err := get(t, hc, url+"/x")
	if err == nil || classify(transportError("GET /x", err).Err) != device.ReasonTooLarge {
		t.Errorf("200 KB of headers: err %v", err)
	}
}

func TestTransportConnectionCloseHeader(t *testing.T) {
	var conns atomic.Int64
	url := rawServer(t, func(c net.Conn) {
		conns.Add(1)
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	})
	hc := NewHTTPClient(nil)
	defer CloseIdleConnections(hc)
	for range 3 {
		if code, body, err := get(t, hc, url+"/x"); err != nil || code != 200 || body != "{}" {
			t.Fatalf("%d %q %v", code, body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3: Connection: close must not be reused", n)
	}
}
