package basip

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator"
)

// seenRequest is what a test device received.
type seenRequest struct {
	tls           bool
	path, query   string
	authorization string
	referer       string
}

// redirectDevice is a panel whose answers a test sets per scheme and path:
// a Location to redirect to, or the default (login, settings).
type redirectDevice struct {
	mu        sync.Mutex
	seen      []seenRequest
	redirects map[string]string // "http /path" or "https /path" -> Location
}

const redirectToken = "3f2c8a4e-1b2d-4c5e-8f90-a1b2c3d4e5f6"

func (d *redirectDevice) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	d.mu.Lock()
	d.seen = append(d.seen, seenRequest{tls: r.TLS != nil, path: r.URL.Path, query: r.URL.RawQuery,
		authorization: r.Header.Get("Authorization"), referer: r.Header.Get("Referer")})
	loc, redirect := d.redirects[scheme+" "+r.URL.Path]
	d.mu.Unlock()
	switch {
	case redirect:
		http.Redirect(w, r, loc, http.StatusFound)
	case r.URL.Path == "/api/v1/login":
		_, _ = w.Write([]byte(`{"token":"` + redirectToken + `"}`))
	case r.Header.Get("Authorization") != "Bearer "+redirectToken:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"Log In"}`))
	default:
		_, _ = w.Write([]byte(`{"user":"101"}`))
	}
}

func (d *redirectDevice) requests() []seenRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]seenRequest(nil), d.seen...)
}

// dualServer serves h over HTTP and HTTPS on one loopback port, telling
// them apart by the first byte a client sends (22 opens a TLS handshake),
// so that http://ADDR and https://ADDR are the same host and port. It
// returns ADDR and a TLS config that trusts the server.
func dualServer(t *testing.T, h http.Handler) (string, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain, secure := newChanListener(ln.Addr()), newChanListener(ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				plain.Close()
				secure.Close()
				return
			}
			go func() {
				br := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				first, err := br.Peek(1)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				pc := &peekedConn{Conn: c, r: br}
				if first[0] == 22 {
					secure.put(pc)
				} else {
					plain.put(pc)
				}
			}()
		}
	}()
	srvPlain := &http.Server{Handler: h}
	srvTLS := &http.Server{Handler: h}
	go srvPlain.Serve(plain)
	go srvTLS.Serve(tls.NewListener(secure, serverTLS))
	t.Cleanup(func() {
		ln.Close()
		srvPlain.Close()
		srvTLS.Close()
	})
	return ln.Addr().String(), clientTLS
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by put.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) put(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

func TestRedirects(t *testing.T) {
	// Other hosts and ports, which must receive nothing: 127.0.0.2 is
	// loopback too, but another host than 127.0.0.1.
	otherPort, err := simulator.ServeRaw(simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otherPort.Close() })
	otherHost, err := simulator.ServeRawOn("127.0.0.2:0", simulator.Sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otherHost.Close() })

	const settings = "/api/v1/device/sip/settings"
	cases := map[string]struct {
		scheme    string                              // of the device's configured address
		redirects func(addr string) map[string]string // by "scheme path"
		wantErr   error                               // nil: the settings are read
		want      []seenRequest                       // what the device received, logins included
		requests  int                                 // Result.Requests
	}{
		"same host and port": {
			scheme:    "http",
			redirects: func(addr string) map[string]string { return map[string]string{"http " + settings: "/moved?x=1"} },
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{path: settings, authorization: "Bearer " + redirectToken},
				{path: "/moved", query: "x=1", authorization: "Bearer " + redirectToken},
			},
			requests: 3,
		},
		"http to https on the same port": {
			scheme: "http",
			redirects: func(addr string) map[string]string {
				return map[string]string{"http " + settings: "https://" + addr + settings}
			},
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{path: settings, authorization: "Bearer " + redirectToken},
				{tls: true, path: settings, authorization: "Bearer " + redirectToken},
			},
			requests: 3,
		},
		"https to http": {
			scheme: "https",
			redirects: func(addr string) map[string]string {
				return map[string]string{"https " + settings: "http://" + addr + settings}
			},
			wantErr: devhttp.ErrRedirectDowngrade,
			want: []seenRequest{
				{tls: true, path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{tls: true, path: settings, authorization: "Bearer " + redirectToken},
			},
			requests: 2,
		},
		"another port": {
			scheme: "http",
			redirects: func(string) map[string]string {
				return map[string]string{"http " + settings: otherPort.URL + settings}
			},
			wantErr: devhttp.ErrRedirectRefused,
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{path: settings, authorization: "Bearer " + redirectToken},
			},
			requests: 2,
		},
		"another host": {
			scheme: "http",
			redirects: func(string) map[string]string {
				return map[string]string{"http " + settings: otherHost.URL + settings}
			},
			wantErr: devhttp.ErrRedirectRefused,
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{path: settings, authorization: "Bearer " + redirectToken},
			},
			requests: 2,
		},
		"the login, even on the same host": {
			scheme: "http",
			redirects: func(addr string) map[string]string {
				return map[string]string{"http /api/v1/login": "/api/v1/login2"}
			},
			wantErr: devhttp.ErrRedirectedLogin,
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
			},
			requests: 1,
		},
		"a loop": {
			scheme: "http",
			redirects: func(addr string) map[string]string {
				return map[string]string{"http " + settings: settings}
			},
			wantErr: devhttp.ErrTooManyRedirects,
			want: []seenRequest{
				{path: "/api/v1/login", query: "password=E10ADC3949BA59ABBE56E057F20F883E&username=admin"},
				{path: settings, authorization: "Bearer " + redirectToken},
				{path: settings, authorization: "Bearer " + redirectToken},
				{path: settings, authorization: "Bearer " + redirectToken},
				{path: settings, authorization: "Bearer " + redirectToken},
			},
			requests: 5,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dev := &redirectDevice{}
			addr, tlsConfig := dualServer(t, dev)
			dev.redirects = c.redirects(addr)
			u, _ := url.Parse(c.scheme + "://" + addr)
			cl := New(Options{BaseURL: u, APIVersion: "v1", Username: "admin", Password: "123456", TLSConfig: tlsConfig})
			t.Cleanup(cl.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, res, err := cl.SIPSettings(ctx)
			switch {
			case c.wantErr == nil && (err != nil || s.User == nil || *s.User != "101"):
				t.Errorf("settings %+v, err %v", s, err)
			case c.wantErr != nil && (!errors.Is(err, c.wantErr) || device.ReasonOf(err) != device.ReasonHTTPStatus):
				t.Errorf("err %v (reason %s), want %v", err, device.ReasonOf(err), c.wantErr)
			}
			if res.Requests != c.requests {
				t.Errorf("%d requests counted, want %d", res.Requests, c.requests)
			}
			got := dev.requests()
			if len(got) != len(c.want) {
				t.Fatalf("the device received\n%+v\nwant\n%+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("request %d: got %+v, want %+v", i, got[i], c.want[i])
				}
			}
			if n, b := otherPort.Connections.Load()+otherHost.Connections.Load(), string(otherPort.Received())+string(otherHost.Received()); n != 0 || b != "" {
				t.Errorf("another host or port received %d connections and %q", n, b)
			}
		})
	}
}
