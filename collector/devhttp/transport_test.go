package devhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
)

// ok200 is a complete answer whose body names the connection and request.
func ok200(conn, req int) string {
	b := fmt.Sprintf("c%dr%d", conn, req)
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
}

// testTransport is a device transport with the client's idle timeout, as
// an *http.Client (no redirects followed), closed at the end of the test.
func testTransport(t *testing.T, idle time.Duration) (*transport, *http.Client) {
	return testTransportTLS(t, idle, nil)
}

// testTransportTLS is testTransport with a TLS config.
func testTransportTLS(t *testing.T, idle time.Duration, cfg *tls.Config) (*transport, *http.Client) {
	tr := newTransport(cfg, idle)
	t.Cleanup(tr.CloseIdleConnections)
	return tr, &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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

func mustGet(t *testing.T, hc *http.Client, url, want string) {
	t.Helper()
	code, body, err := get(t, hc, url)
	if err != nil || code != 200 || body != want {
		t.Fatalf("GET %s: %d %q %v, want 200 %q", url, code, body, err, want)
	}
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
	tr, hc := testTransport(t, time.Minute)
	for range 5 {
		mustGet(t, hc, "http://"+ln.Addr().String()+"/x", `{"ok":true}`)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential requests, want 1", n)
	}
	// A device that closed the idle connection meanwhile: the check before
	// reuse sees it, and the request goes out once, on a new connection.
	srv.SetKeepAlivesEnabled(false) // closes idle connections
	time.Sleep(50 * time.Millisecond)
	srv.SetKeepAlivesEnabled(true)
	mustGet(t, hc, "http://"+ln.Addr().String()+"/x", `{"ok":true}`)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one closed by the device, one new)", n)
	}
	if n := tr.requests.Load(); n != 6 {
		t.Errorf("%d requests sent for 6 GETs", n)
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
	_, hc := testTransport(t, time.Minute)
	_, _, err := get(t, hc, url+"/x")
	if err == nil || classify(TransportError("GET /x", err).Err) != device.ReasonTooLarge {
		t.Errorf("200 KB of headers: err %v", err)
	}
}

func TestTransportSkipsInformationalAnswers(t *testing.T) {
	url, conns := rawHTTP(t, func(_ net.Conn, conn, req int, r *http.Request) string {
		switch r.URL.Path {
		case "/hints":
			return "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
				"HTTP/1.1 100 Continue\r\n\r\n" + ok200(conn, req)
		case "/endless":
			return strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", max1xx+1) + ok200(conn, req)
		case "/switch":
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}
		return ok200(conn, req)
	})
	_, hc := testTransport(t, time.Minute)
	mustGet(t, hc, url+"/hints", "c1r0")
	mustGet(t, hc, url+"/hints", "c1r1") // the same connection serves the next request
	if _, _, err := get(t, hc, url+"/endless"); !errors.Is(err, errTooMany1xx) {
		t.Errorf("%d informational answers: err %v", max1xx+1, err)
	}
	if _, _, err := get(t, hc, url+"/switch"); !errors.Is(err, errSwitchedProtocols) {
		t.Errorf("101: err %v", err)
	}
	mustGet(t, hc, url+"/x", "c3r0") // each failure closed its connection
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// TestTransportNeverTakesAnUnaskedAnswer: a device that sends a second
// answer after a complete one, at once or a little later, must not have
// it taken for the answer to the next request.
func TestTransportNeverTakesAnUnaskedAnswer(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, secure := range []bool{false, true} {
		for name, delay := range map[string]time.Duration{"in the same write": 0, "a little later": 20 * time.Millisecond} {
			var srvCfg, cliCfg *tls.Config
			if secure {
				name, srvCfg, cliCfg = "TLS, "+name, serverTLS, clientTLS
			}
			t.Run(name, func(t *testing.T) {
				sent := make(chan struct{}, 1)
				url, conns := rawHTTPOver(t, srvCfg, func(c net.Conn, conn, req int, _ *http.Request) string {
					if conn > 1 {
						return ok200(conn, req)
					}
					extra := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"
					if delay == 0 {
						defer func() { sent <- struct{}{} }()
						return ok200(conn, req) + extra
					}
					go func() {
						time.Sleep(delay)
						_, _ = io.WriteString(c, extra)
						sent <- struct{}{}
					}()
					return ok200(conn, req)
				})
				_, hc := testTransportTLS(t, time.Minute, cliCfg)
				mustGet(t, hc, url+"/x", "c1r0")
				<-sent
				time.Sleep(20 * time.Millisecond) // for the bytes to cross loopback
				mustGet(t, hc, url+"/x", "c2r0")
				if n := conns.Load(); n != 2 {
					t.Errorf("%d connections, want 2", n)
				}
			})
		}
	}
}

// TestTransportTLSConnectionIsReused: a quiet TLS connection passes the
// check before reuse (session tickets and all); one the device closed
// (with a close_notify) does not, and the request goes out once, on a new
// connection.
func TestTransportTLSConnectionIsReused(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	closed := make(chan struct{})
	url, conns := rawHTTPOver(t, serverTLS, func(c net.Conn, conn, req int, _ *http.Request) string {
		if conn == 1 && req == 1 {
			_, _ = io.WriteString(c, ok200(conn, req))
			defer close(closed)
			return "" // and close
		}
		return ok200(conn, req)
	})
	tr, hc := testTransportTLS(t, time.Minute, clientTLS)
	mustGet(t, hc, url+"/x", "c1r0")
	mustGet(t, hc, url+"/x", "c1r1")
	<-closed
	time.Sleep(20 * time.Millisecond) // for the close to cross loopback
	mustGet(t, hc, url+"/x", "c2r0")
	if n, sent := conns.Load(), tr.requests.Load(); n != 2 || sent != 3 {
		t.Errorf("%d connections and %d requests sent for 3 GETs, want 2 and 3", n, sent)
	}
}

// TestTransportNeverReusesAClosingConnection: Connection: close, HTTP/1.0
// without keep-alive, and a body that ends with the connection each end
// the connection's use, even when the device would answer again on it.
func TestTransportNeverReusesAClosingConnection(t *testing.T) {
	cases := map[string]struct {
		answer string
		closes bool // the device closes after the answer
	}{
		"Connection: close":              {answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"},
		"HTTP/1.0 without keep-alive":    {answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		"body until the close":           {answer: "HTTP/1.1 200 OK\r\n\r\n{}", closes: true},
		"closed after a complete answer": {answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", closes: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int64
			url := rawServer(t, func(conn net.Conn) {
				conns.Add(1)
				br := bufio.NewReader(conn)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if _, err := io.WriteString(conn, c.answer); err != nil || c.closes {
						return
					}
				}
			})
			tr, hc := testTransport(t, time.Minute)
			for range 3 {
				mustGet(t, hc, url+"/x", "{}")
				time.Sleep(10 * time.Millisecond) // for a close to cross loopback
			}
			if n := tr.requests.Load(); n != 3 {
				t.Errorf("%d requests sent for 3 GETs: one was sent again", n)
			}
			if n := conns.Load(); n != 3 {
				t.Errorf("%d connections for 3 GETs, want 3", n)
			}
			tr.mu.Lock()
			idle := tr.idle
			tr.mu.Unlock()
			if idle != nil && !c.closes {
				t.Errorf("a connection was kept after %q", c.answer)
			}
		})
	}
}

func TestTransportClosesIdleConnectionAfterTimeout(t *testing.T) {
	closed := make(chan int, 4)
	var conns atomic.Int64
	url := rawServer(t, func(c net.Conn) {
		n := int(conns.Add(1))
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				closed <- n
				return
			}
			_, _ = io.WriteString(c, ok200(n, i))
		}
	})
	tr, hc := testTransport(t, 200*time.Millisecond)
	mustGet(t, hc, url+"/x", "c1r0")
	mustGet(t, hc, url+"/x", "c1r1") // reused within the timeout
	start := time.Now()
	select {
	case n := <-closed:
		if n != 1 || time.Since(start) < 150*time.Millisecond {
			t.Errorf("connection %d closed after %v", n, time.Since(start))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the idle connection was not closed after its timeout")
	}
	tr.mu.Lock()
	idle := tr.idle
	tr.mu.Unlock()
	if idle != nil {
		t.Error("the transport still holds the expired connection")
	}
	mustGet(t, hc, url+"/x", "c2r0")
}

// TestTransportErrorsQuoteNoDeviceBytes: net/http's parsers quote what they
// could not parse; the transport replaces those errors.
func TestTransportErrorsQuoteNoDeviceBytes(t *testing.T) {
	const marker = "Marker-E10ADC3949BA59ABBE56E057F20F883E"
	cases := map[string]string{
		"status line":        "GET /api/v1/login?password=" + marker + " HTTP/1.1\r\n\r\n",
		"status code":        "HTTP/1.1 2x0 " + marker + "\r\n\r\n",
		"version":            "HTTP/9" + marker + " 200 OK\r\n\r\n",
		"header line":        "HTTP/1.1 200 OK\r\n" + marker + "\r\n\r\n",
		"Content-Length":     "HTTP/1.1 200 OK\r\nContent-Length: " + marker + "\r\n\r\n",
		"transfer encoding":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + marker + "\r\n\r\n",
		"chunk size":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + marker + "\r\n",
		"trailer":            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + marker + "\r\n\r\n",
		"continuation line":  "HTTP/1.1 200 OK\r\n " + marker + "\r\n\r\n",
		"informational line": "HTTP/1.1 103 Early Hints\r\n" + marker + "\r\n\r\n",
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			url, _ := rawHTTP(t, func(net.Conn, int, int, *http.Request) string { return answer })
			_, hc := testTransport(t, time.Minute)
			_, _, err := get(t, hc, url+"/x")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "Marker") || strings.Contains(strings.ToUpper(err.Error()), "E10ADC") {
				t.Errorf("error quotes the device: %v", err)
			}
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, errMalformedBody) {
				t.Errorf("err %v, want a fixed description", err)
			}
		})
	}
}

// TestTransportBehavesLikeNetHTTP sends the same requests through the
// device transport and through net/http's Transport, each to its own copy
// of one server, and compares what the client sees: status, headers, body
// (of known length, chunked, empty, with a trailer), and how many
// connections keep-alive needed.
func TestTransportBehavesLikeNetHTTP(t *testing.T) {
	big := strings.Repeat(`{"proxy":"sip:x"},`, 8000) // 144 KB, several reads
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "11")
			_, _ = io.WriteString(w, `{"user":1}`+"\n")
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, `{"part":%d}`, i)
				w.(http.Flusher).Flush()
			}
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, `{"a":1}`)
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = io.WriteString(w, big)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"Not found"}`)
		case "/denied":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"Log In"}`)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, `{}`)
		case "/echo":
			fmt.Fprintf(w, `{"accept":%q,"auth":%q,"host":%q,"query":%q}`, r.Header.Get("Accept"), r.Header.Get("Authorization"), r.Host, r.URL.RawQuery)
		}
	})
	serve := func() (string, *atomic.Int64) {
		var conns atomic.Int64
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: handler, ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String(), &conns
	}
	type seen struct {
		status        string
		proto         string
		header        http.Header
		contentLength int64
		chunked       bool
		body          string
		trailer       http.Header
	}
	do := func(rt http.RoundTripper, url string) seen {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer t-1")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		resp.Header.Del("Date")
		return seen{resp.Status, resp.Proto, resp.Header, resp.ContentLength,
			len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked", string(b), resp.Trailer}
	}
	ownURL, ownConns := serve()
	stdURL, stdConns := serve()
	own := newTransport(nil, time.Minute)
	t.Cleanup(own.CloseIdleConnections)
	std := &http.Transport{DisableCompression: true} // the client asks for no compression
	t.Cleanup(std.CloseIdleConnections)
	paths := []string{"/length", "/chunked", "/trailer", "/big", "/empty", "/missing", "/denied", "/echo?x=1&y=2", "/length", "/close", "/length"}
	for _, p := range paths {
		got, want := do(own, ownURL+p), do(std, stdURL+p)
		want.body = strings.ReplaceAll(want.body, strings.TrimPrefix(stdURL, "http://"), strings.TrimPrefix(ownURL, "http://"))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n own      %+v\n net/http %+v", p, got, want)
		}
	}
	time.Sleep(20 * time.Millisecond) // for the server to count the last connection
	if own, std := ownConns.Load(), stdConns.Load(); own != std || own != 2 {
		t.Errorf("%d connections through the device transport, %d through net/http's; want 2 (one closed by Connection: close)", own, std)
	}
}
