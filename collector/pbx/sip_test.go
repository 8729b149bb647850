package pbx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/basip/basip_exporter/collector/device"
)

func newProber(t *testing.T) *Prober {
	t.Helper()
	p, err := NewProber(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// options is one call with a deadline of d.
func options(p *Prober, target Target, d time.Duration) (Answer, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	a, err := p.Options(ctx, target)
	return a, time.Since(start), err
}

// replyTo is a response to the raw request req: the status line, then its
// Via, From, To (with a tag), Call-ID and CSeq, then extra header lines.
func replyTo(req []byte, status string, extra ...string) []byte {
	var b bytes.Buffer
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, line := range strings.Split(string(req), "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			b.WriteString(line + ";tag=pbx1\r\n")
		}
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// header is the value of the raw message's header line name.
func header(msg []byte, name string) string {
	for _, line := range strings.Split(string(msg), "\r\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// udpServer is a raw UDP server on loopback calling handle with each
// datagram it receives; it counts them.
type udpServer struct {
	conn     *net.UDPConn
	port     int
	received atomic.Int64
	mu       sync.Mutex
	requests [][]byte
}

func newUDPServer(t *testing.T, handle func(s *udpServer, from *net.UDPAddr, req []byte)) *udpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			s.received.Add(1)
			s.mu.Lock()
			s.requests = append(s.requests, req)
			s.mu.Unlock()
			handle(s, from, req)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *udpServer) send(to *net.UDPAddr, b []byte) { _, _ = s.conn.WriteToUDP(b, to) }

func (s *udpServer) target() Target { return Target{Transport: "udp", Host: "127.0.0.1", Port: s.port} }

func (s *udpServer) request(i int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.requests) {
		return nil
	}
	return s.requests[i]
}

// streamServer is a raw TCP (or TLS) server on loopback: it reads each
// connection's request up to its blank line and calls handle with it; the
// connection stays open until the client closes it or handle returns
// false.
func newStreamServer(t *testing.T, tlsConfig *tls.Config, handle func(c net.Conn, req []byte) (keep bool)) (port int) {
	t.Helper()
	var l net.Listener
	var err error
	if tlsConfig != nil {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				var req bytes.Buffer
				for !bytes.HasSuffix(req.Bytes(), []byte("\r\n\r\n")) {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					req.Write(line)
				}
				if !handle(c, req.Bytes()) {
					return
				}
				_, _ = r.WriteTo(io.Discard) // until the client closes
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestProberRequest(t *testing.T) {
	srv := newUDPServer(t, func(s *udpServer, from *net.UDPAddr, req []byte) {
		s.send(from, replyTo(req, "200 OK"))
	})
	p := newProber(t)
	for i := range 2 {
		a, _, err := options(p, srv.target(), 5*time.Second)
		if err != nil || a.Code != 200 || a.Reason != "OK" || a.RTT <= 0 || a.RTT > 5*time.Second {
			t.Fatalf("call %d: %+v, %v", i, a, err)
		}
	}
	first, second := srv.request(0), srv.request(1)
	if want := fmt.Sprintf("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n", srv.port); !bytes.HasPrefix(first, []byte(want)) {
		t.Errorf("request line of %q, want %q", first, want)
	}
	for name, want := range map[string]string{
		"Max-Forwards":   "70",
		"User-Agent":     "basip_exporter",
		"Accept":         "application/sdp",
		"CSeq":           "1 OPTIONS",
		"Content-Length": "0",
		"To":             "<sip:basip_exporter@127.0.0.1>",
	} {
		if got := header(first, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if from := header(first, "From"); !strings.HasPrefix(from, "<sip:basip_exporter@127.0.0.1>;tag=") {
		t.Errorf("From: %q", from)
	}
	if via := header(first, "Via"); !strings.HasPrefix(via, "SIP/2.0/UDP 127.0.0.1:") || !strings.Contains(via, ";branch=z9hG4bK.") {
		t.Errorf("Via: %q", via)
	}
	for _, name := range []string{"Call-ID", "Via", "From"} {
		if a, b := header(first, name), header(second, name); a == "" || a == b {
			t.Errorf("%s %q the same in two calls", name, a)
		}
	}
}

// TestProberUDPAnswers: hostile and odd UDP servers.
func TestProberUDPAnswers(t *testing.T) {
	long := "\x1b[2J\x07\x00\u202e" + strings.Repeat("é", 5<<10) // 10 KiB of text
	for _, tc := range []struct {
		name     string
		handle   func(s *udpServer, from *net.UDPAddr, req []byte)
		code     int
		reason   string        // the Answer's, when code is not 0
		err      device.Reason // when code is 0
		deadline time.Duration
	}{
		{"404 is an answer", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "404 Not Here"))
		}, 404, "Not Here", "", time.Second},
		{"100 Trying then 200", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "100 Trying"))
			s.send(from, replyTo(req, "180 Ringing"))
			s.send(from, replyTo(req, "200 Keepalive"))
		}, 200, "Keepalive", "", time.Second},
		{"never answers", func(*udpServer, *net.UDPAddr, []byte) {}, 0, "", device.ReasonTimeout, 700 * time.Millisecond},
		{"100 Trying then nothing", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "100 Trying"))
		}, 0, "", device.ReasonTimeout, 700 * time.Millisecond},
		{"garbage, then 200", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, []byte("\x00\xff\x1b[31m garbage \r\n\r\n"))
			s.send(from, []byte("SIP/2.0 200\r\n\r\n"))
			s.send(from, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			s.send(from, replyTo(req, "200 OK"))
		}, 200, "OK", "", time.Second},
		{"another transaction's answer, then the right one", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, bytes.Replace(replyTo(req, "500 Wrong"), []byte("branch=z9hG4bK."), []byte("branch=z9hG4bK.x"), 1))
			s.send(from, replyTo(req, "200 OK"))
		}, 200, "OK", "", time.Second},
		{"a request to us, then 200", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, []byte("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.abc\r\nCSeq: 1 OPTIONS\r\nCall-ID: x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nContent-Length: 0\r\n\r\n"))
			s.send(from, replyTo(req, "200 OK"))
		}, 200, "OK", "", time.Second},
		{"a status code SIP has not", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "999 Nine"))
			s.send(from, replyTo(req, "099 Zero"))
		}, 0, "", device.ReasonTimeout, 700 * time.Millisecond},
		{"a reason of control characters and 10 KiB", func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "503 "+long))
		}, 503, "", "", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newUDPServer(t, tc.handle)
			a, took, err := options(newProber(t), srv.target(), tc.deadline)
			if tc.code == 0 {
				if reasonOf(err) != tc.err {
					t.Fatalf("got %+v, %v; want a %s error", a, err, tc.err)
				}
				if took > tc.deadline+time.Second {
					t.Errorf("took %v with a deadline of %v", took, tc.deadline)
				}
				return
			}
			if err != nil || a.Code != tc.code {
				t.Fatalf("got %+v, %v; want code %d", a, err, tc.code)
			}
			if tc.reason != "" && a.Reason != tc.reason {
				t.Errorf("reason %q, want %q", a.Reason, tc.reason)
			}
			if len(a.Reason) > sipMaxReason {
				t.Errorf("reason of %d bytes", len(a.Reason))
			}
			for _, r := range a.Reason {
				if !unicode.IsPrint(r) {
					t.Errorf("reason %q holds %U", a.Reason, r)
				}
			}
		})
	}
	t.Run("escaped and cut", func(t *testing.T) {
		if got, want := safeExcerpt(long, sipMaxReason), `\x1b[2J\a\x00\u202e`+strings.Repeat("é", 53)+"..."; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// TestProberNeverAnsweringUDP: an answerless server gets the request and
// its retransmissions (Timer E: 0.5 s, 1 s, 2 s) until the deadline, from
// the one socket of the call.
func TestProberNeverAnsweringUDP(t *testing.T) {
	var mu sync.Mutex
	sources := map[string]bool{}
	srv := newUDPServer(t, func(_ *udpServer, from *net.UDPAddr, _ []byte) {
		mu.Lock()
		sources[from.String()] = true
		mu.Unlock()
	})
	_, took, err := options(newProber(t), srv.target(), 1700*time.Millisecond)
	if reasonOf(err) != device.ReasonTimeout || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no final answer") {
		t.Fatalf("got %v, want a timeout", err)
	}
	if took > 2700*time.Millisecond {
		t.Errorf("took %v", took)
	}
	time.Sleep(100 * time.Millisecond)
	if n := srv.received.Load(); n < 2 || n > 4 {
		t.Errorf("%d datagrams, want the request and its retransmissions at 0.5 s and 1.5 s", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sources) != 1 {
		t.Errorf("from %d sockets", len(sources))
	}
}

// TestProberAnswerFromElsewhere: an answer from another port of the
// target's host is not the target's: the socket is connected.
func TestProberAnswerFromElsewhere(t *testing.T) {
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	srv := newUDPServer(t, func(_ *udpServer, from *net.UDPAddr, req []byte) {
		_, _ = other.WriteToUDP(replyTo(req, "200 OK"), from)
	})
	if a, _, err := options(newProber(t), srv.target(), 700*time.Millisecond); reasonOf(err) != device.ReasonTimeout {
		t.Errorf("got %+v, %v; want a timeout", a, err)
	}
}

// TestProberThousandAnswers: a server answering one OPTIONS a thousand
// times gives one Answer; the prober's next call works, and nothing
// stays behind.
func TestProberThousandAnswers(t *testing.T) {
	srv := newUDPServer(t, func(s *udpServer, from *net.UDPAddr, req []byte) {
		for i := range 1000 {
			status := []string{"100 Trying", "200 OK", "486 Busy Here", "183 Progress"}[i%4]
			s.send(from, replyTo(req, status))
		}
	})
	p := newProber(t)
	before := runtime.NumGoroutine()
	for i := range 3 {
		a, _, err := options(p, srv.target(), 2*time.Second)
		if err != nil || a.Code != 200 {
			t.Fatalf("call %d: %+v, %v; want 200", i, a, err)
		}
	}
	settled(t, before)
}

// settled waits up to two seconds for the goroutines to be no more than
// before (a timer's goroutine may be finishing).
func settled(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the calls, %d before", n, before)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// deadPort is a port of 127.0.0.1 nothing listens on, for network.
func deadPort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestProberRefused: nothing at the target is "connection refused", from
// the ICMP answer over UDP, and fast; two hundred such calls leave no
// goroutine or file descriptor behind.
func TestProberRefused(t *testing.T) {
	p := newProber(t)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			network := transport
			if network == "tls" {
				network = "tcp"
			}
			target := Target{Transport: transport, Host: "127.0.0.1", Port: deadPort(t, network)}
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)
			start := time.Now()
			for i := range 200 {
				_, _, err := options(p, target, 2*time.Second)
				if reasonOf(err) != device.ReasonConnection || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
					t.Fatalf("call %d: %v, want connection refused", i, err)
				}
			}
			t.Logf("200 refused calls in %v", time.Since(start))
			settled(t, goroutines)
			if n := openFDs(t); n > fds {
				t.Errorf("%d open files after the calls, %d before", n, fds)
			}
		})
	}
}

// TestProberConcurrent: calls at once, to the same target and to others.
func TestProberConcurrent(t *testing.T) {
	var servers []*udpServer
	for range 3 {
		servers = append(servers, newUDPServer(t, func(s *udpServer, from *net.UDPAddr, req []byte) {
			s.send(from, replyTo(req, "200 OK"))
		}))
	}
	tcpPort := newStreamServer(t, nil, func(c net.Conn, req []byte) bool {
		_, _ = c.Write(replyTo(req, "200 OK"))
		return true
	})
	p := newProber(t)
	goroutines := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := servers[i%3].target()
			if i%4 == 0 {
				target = Target{Transport: "tcp", Host: "127.0.0.1", Port: tcpPort}
			}
			if a, _, err := options(p, target, 5*time.Second); err != nil || a.Code != 200 {
				t.Errorf("call %d to %+v: %+v, %v", i, target, a, err)
			}
		}()
	}
	wg.Wait()
	settled(t, goroutines)
}

func TestProberTCP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handle   func(c net.Conn, req []byte) bool
		code     int
		err      device.Reason
		fast     bool // ends before the deadline
		deadline time.Duration
	}{
		{"200, a byte at a time", func(c net.Conn, req []byte) bool {
			for _, b := range append(replyTo(req, "100 Trying"), replyTo(req, "200 OK")...) {
				if _, err := c.Write([]byte{b}); err != nil {
					return false
				}
			}
			return true
		}, 200, "", false, 3 * time.Second},
		{"404 and the connection closed", func(c net.Conn, req []byte) bool {
			_, _ = c.Write(replyTo(req, "404 Not Found"))
			return false
		}, 404, "", false, 3 * time.Second},
		{"accepts and never writes", func(net.Conn, []byte) bool { return true }, 0, device.ReasonTimeout, false, 700 * time.Millisecond},
		{"closes at once", func(net.Conn, []byte) bool { return false }, 0, device.ReasonConnection, true, 3 * time.Second},
		{"closes after 100 Trying", func(c net.Conn, req []byte) bool {
			_, _ = c.Write(replyTo(req, "100 Trying"))
			return false
		}, 0, device.ReasonConnection, true, 3 * time.Second},
		{"garbage", func(c net.Conn, _ []byte) bool {
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return true
		}, 0, device.ReasonDecode, true, 3 * time.Second},
		{"an endless header line", func(c net.Conn, req []byte) bool {
			_, _ = c.Write([]byte("SIP/2.0 200 OK\r\nX-Long: "))
			chunk := bytes.Repeat([]byte("a"), 16<<10)
			for {
				if _, err := c.Write(chunk); err != nil {
					return false
				}
			}
		}, 0, device.ReasonTooLarge, true, 3 * time.Second},
		{"endless header lines", func(c net.Conn, req []byte) bool {
			_, _ = c.Write([]byte("SIP/2.0 200 OK\r\n"))
			for {
				if _, err := c.Write([]byte("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")); err != nil {
					return false
				}
			}
		}, 0, device.ReasonTooLarge, true, 3 * time.Second},
		{"endless provisional answers", func(c net.Conn, req []byte) bool {
			for {
				if _, err := c.Write(replyTo(req, "100 Trying")); err != nil {
					return false
				}
			}
		}, 0, device.ReasonDecode, true, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := newStreamServer(t, nil, tc.handle)
			target := Target{Transport: "tcp", Host: "127.0.0.1", Port: port}
			var (
				a    Answer
				err  error
				took time.Duration
			)
			bytes, objects, _ := measure(func() { a, took, err = options(newProber(t), target, tc.deadline) })
			t.Logf("%+v, %v in %v; %d bytes in %d objects allocated", a, err, took, bytes, objects)
			if tc.code != 0 {
				if err != nil || a.Code != tc.code {
					t.Fatalf("got %+v, %v; want code %d", a, err, tc.code)
				}
				return
			}
			if reasonOf(err) != tc.err {
				t.Fatalf("got %+v, %v; want a %s error", a, err, tc.err)
			}
			if tc.fast && took > tc.deadline/2 {
				t.Errorf("took %v, want it to end before the deadline of %v", took, tc.deadline)
			}
			if bytes > 8<<20 {
				t.Errorf("%d bytes allocated", bytes)
			}
		})
	}
}

// selfSigned is a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pbx.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestProberTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	var via atomic.Value
	port := newStreamServer(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(c net.Conn, req []byte) bool {
		via.Store(header(req, "Via"))
		_, _ = c.Write(replyTo(req, "200 OK"))
		return true
	})
	p := newProber(t)
	target := Target{Transport: "tls", Host: "127.0.0.1", Port: port, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	a, _, err := options(p, target, 5*time.Second)
	if err != nil || a.Code != 200 {
		t.Fatalf("got %+v, %v", a, err)
	}
	if v, _ := via.Load().(string); !strings.HasPrefix(v, "SIP/2.0/TLS ") {
		t.Errorf("Via %q", v)
	}
	target.TLS = nil // the system roots: not this certificate
	if _, _, err := options(p, target, 5*time.Second); reasonOf(err) != device.ReasonTLS {
		t.Errorf("untrusted certificate: %v, want a tls error", err)
	}
}

func TestProberBadTargets(t *testing.T) {
	p := newProber(t)
	for _, target := range []Target{
		{Transport: "sctp", Host: "127.0.0.1", Port: 5060},
		{Transport: "udp", Host: "127.0.0.1", Port: 0},
		{Transport: "udp", Host: "127.0.0.1", Port: 70000},
		{Transport: "udp", Host: "pbx\r\nX-Injected: 1", Port: 5060},
		{Transport: "udp", Host: "", Port: 5060},
		{Transport: "udp", Host: "user@pbx", Port: 5060},
	} {
		_, _, err := options(p, target, time.Second)
		if reasonOf(err) != device.ReasonConnection {
			t.Errorf("%+v: %v, want an error", target, err)
			continue
		}
		for _, r := range err.Error() {
			if !unicode.IsPrint(r) {
				t.Errorf("%+v: error %q holds %U", target, err, r)
			}
		}
	}
}

// TestSIPRequestHosts: the request for an IPv6 target, bracketed or not,
// and for a name, as it would be sent (built, not sent: the tests talk to
// 127.0.0.0/8 only).
func TestSIPRequestHosts(t *testing.T) {
	for _, tc := range []struct {
		target              Target
		local               net.Addr
		line, via, to, dial string
	}{
		{Target{Transport: "udp", Host: "2001:db8::5", Port: 5060}, &net.UDPAddr{IP: net.ParseIP("2001:db8::9"), Port: 40000},
			"OPTIONS sip:[2001:db8::5]:5060 SIP/2.0", "SIP/2.0/UDP [2001:db8::9]:40000;branch=z9hG4bK.", "<sip:basip_exporter@[2001:db8::5]>", "[2001:db8::5]:5060"},
		{Target{Transport: "TCP", Host: "[2001:db8::5]", Port: 5080}, &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 40000},
			"OPTIONS sip:[2001:db8::5]:5080;transport=tcp SIP/2.0", "SIP/2.0/TCP [2001:db8::9]:40000;branch=z9hG4bK.", "<sip:basip_exporter@[2001:db8::5]>", "[2001:db8::5]:5080"},
		{Target{Transport: "tls", Host: "pbx.example.com", Port: 5061}, &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 40000},
			"OPTIONS sip:pbx.example.com:5061;transport=tls SIP/2.0", "SIP/2.0/TLS 192.0.2.9:40000;branch=z9hG4bK.", "<sip:basip_exporter@pbx.example.com>", "pbx.example.com:5061"},
	} {
		c, err := newSIPCall(tc.target)
		if err != nil {
			t.Fatalf("%+v: %v", tc.target, err)
		}
		req, err := c.request(tc.local)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(req.String())
		if line, _, _ := strings.Cut(string(msg), "\r\n"); line != tc.line {
			t.Errorf("request line %q, want %q", line, tc.line)
		}
		if via := header(msg, "Via"); !strings.HasPrefix(via, tc.via) {
			t.Errorf("Via %q, want %q...", via, tc.via)
		}
		if to := header(msg, "To"); to != tc.to {
			t.Errorf("To %q, want %q", to, tc.to)
		}
		if c.dial != tc.dial {
			t.Errorf("dials %q, want %q", c.dial, tc.dial)
		}
	}
}

// TestProberClose: Close ends the calls under way and refuses later ones.
func TestProberClose(t *testing.T) {
	srv := newUDPServer(t, func(*udpServer, *net.UDPAddr, []byte) {})
	p, err := NewProber(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() }) // again, should the test stop early
	errs := make(chan error, 1)
	go func() {
		_, _, err := options(p, srv.target(), 30*time.Second)
		errs <- err
	}()
	for wait := time.Now().Add(5 * time.Second); srv.received.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the OPTIONS did not arrive")
		}
	}
	start := time.Now()
	p.Close()
	if err := <-errs; !errors.Is(err, ErrProberClosed) || time.Since(start) > time.Second {
		t.Errorf("the call under way: %v after %v", err, time.Since(start))
	}
	if _, _, err := options(p, srv.target(), time.Second); !errors.Is(err, ErrProberClosed) {
		t.Errorf("a call after Close: %v", err)
	}
}
