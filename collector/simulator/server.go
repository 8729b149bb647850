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
	"time"
)

// Server serves one Device on a loopback port.
type Server struct {
	Device *Device
	// URL is the device's address, http://127.0.0.1:PORT or https://...
	URL string
	// CertPEM is the self-signed certificate of an HTTPS server.
	CertPEM []byte

	srv *http.Server
	ln  net.Listener
}

// Serve starts serving d over plain HTTP on 127.0.0.1 at a free port.
func Serve(d *Device) (*Server, error) { return serve(d, "127.0.0.1:0", false) }

// ServeTLS starts serving d over HTTPS with a fresh self-signed certificate.
func ServeTLS(d *Device) (*Server, error) { return serve(d, "127.0.0.1:0", true) }

func serve(d *Device, addr string, useTLS bool) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Device: d, ln: ln, URL: "http://" + ln.Addr().String()}
	s.srv = &http.Server{
		Handler:           d,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				d.Connections.Add(1)
			}
		},
		ErrorLog: discardLogger(),
	}
	if useTLS {
		cert, certPEM, err := selfSigned()
		if err != nil {
			ln.Close()
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

// Close stops the server and drops its connections.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return s.srv.Close()
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "BAS-IP simulated device"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
