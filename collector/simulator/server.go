package simulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves one Device on a loopback port.
type Server struct {
	Device *Device
	// URL is the device's address, http://127.0.0.1:PORT or https://...
	URL string
	// CertPEM is the self-signed certificate of an HTTPS server.
	CertPEM []byte

	srv      *http.Server
	ln       net.Listener
	stop     context.CancelFunc // ends the requests in flight
	handlers tracker
}

// CertOptions shape the certificate of ServeTLSWith.
type CertOptions struct {
	// Hosts are the DNS names and IP addresses the certificate is valid
	// for; 127.0.0.1, ::1 and localhost when empty.
	Hosts []string
	// NotAfter is when the certificate expires, a year from now when zero.
	// A time in the past makes an expired certificate.
	NotAfter time.Time
}

// Serve starts serving d over plain HTTP on 127.0.0.1 at a free port.
func Serve(d *Device) (*Server, error) { return serve(d, "127.0.0.1:0", nil) }

// ServeTLS starts serving d over HTTPS with a fresh self-signed certificate.
func ServeTLS(d *Device) (*Server, error) { return serve(d, "127.0.0.1:0", &CertOptions{}) }

// ServeAt starts serving d over plain HTTP at addr (host:port).
func ServeAt(d *Device, addr string) (*Server, error) { return serve(d, addr, nil) }

// ServeTLSAt starts serving d over HTTPS at addr (host:port) with a fresh
// self-signed certificate.
func ServeTLSAt(d *Device, addr string) (*Server, error) { return serve(d, addr, &CertOptions{}) }

// ServeTLSWith starts serving d over HTTPS with a fresh self-signed
// certificate shaped by o: for other hosts, or expired.
func ServeTLSWith(d *Device, o CertOptions) (*Server, error) { return serve(d, "127.0.0.1:0", &o) }

func serve(d *Device, addr string, certOpts *CertOptions) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln = &countingListener{Listener: ln, open: &d.openConns}
	base, stop := context.WithCancel(context.Background())
	s := &Server{Device: d, ln: ln, URL: "http://" + ln.Addr().String(), stop: stop}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.handlers.add() {
				return
			}
			defer s.handlers.done()
			d.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				d.Connections.Add(1)
			}
		},
		ErrorLog: discardLogger(),
	}
	if certOpts != nil {
		certPEM, keyPEM, err := SelfSigned(*certOpts)
		var cert tls.Certificate
		if err == nil {
			cert, err = tls.X509KeyPair(certPEM, keyPEM)
		}
		if err != nil {
			ln.Close()
			stop()
			return nil, err
		}
		s.CertPEM = certPEM
		s.URL = "https://" + ln.Addr().String()
		s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	return s, nil
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, drops its connections and waits (briefly) for
// the requests in flight, hanging and trickling ones included, to end.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.stop()
	err := s.srv.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	err = s.srv.Close()
	s.handlers.wait(2 * time.Second)
	return err
}

// countingListener counts the connections open now in open: a connection
// counts from its accept to its first Close, whoever closes it (the
// server, or a fault that took it over).
type countingListener struct {
	net.Listener
	open *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.open.Add(-1) })
	return err
}

// CloseWrite lets the HTTP server half-close the connection as it does
// with a bare TCP connection.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tracker counts running handlers so Close can wait for them.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) done() { t.wg.Done() }

// wait refuses new handlers and waits up to d for the running ones.
func (t *tracker) wait(d time.Duration) {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	finished := make(chan struct{})
	go func() { t.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(d):
	}
}

// SelfSigned makes a self-signed CA certificate for o.Hosts (127.0.0.1,
// ::1 and localhost by default) and its key, PEM-encoded: for simulated
// devices, and for tests that serve TLS themselves.
func SelfSigned(o CertOptions) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "BAS-IP simulated device"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
