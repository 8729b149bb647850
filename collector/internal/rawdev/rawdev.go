// Package rawdev serves devices for tests at the level of bytes on a
// connection, so they can answer wrongly in ways an HTTP server will not.
// It is shared by the tests of the device transport and of the clients.
package rawdev

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// Server answers every connection with handle, on 127.0.0.1, until the
// test ends. It returns the server's http:// URL.
func Server(t testing.TB, handle func(c net.Conn)) string {
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

// HTTP is a device that reads requests one after the other on each
// connection and writes what answer returns, as is. conn counts from 1, req
// from 0 on each connection; an empty answer closes the connection. It
// returns the URL and the count of connections.
func HTTP(t testing.TB, answer func(c net.Conn, conn, req int, r *http.Request) string) (string, *atomic.Int64) {
	return HTTPOver(t, nil, answer)
}

// HTTPOver is HTTP over TLS with cfg, or plain when cfg is nil.
func HTTPOver(t testing.TB, cfg *tls.Config, answer func(c net.Conn, conn, req int, r *http.Request) string) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	url := Server(t, func(c net.Conn) {
		n := int(conns.Add(1))
		if cfg != nil {
			c = tls.Server(c, cfg)
			defer c.Close() // with a close_notify
		}
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			out := answer(c, n, i, r)
			if out == "" {
				return
			}
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
		}
	})
	if cfg != nil {
		url = "https" + strings.TrimPrefix(url, "http")
	}
	return url, &conns
}

// TLS returns a server config with a fresh certificate and a client config
// that trusts it.
func TLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := simulator.SelfSigned(simulator.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool}
}
