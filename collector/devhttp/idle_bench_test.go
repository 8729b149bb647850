package devhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/simulator"
)

// idleConns is how many idle connections BenchmarkIdleConnectionMemory
// opens through each transport.
const idleConns = 1000

// idleServerEnv runs TestIdleServerProcess as the benchmark's server: the
// names of its certificate and key files, separated by a comma.
const idleServerEnv = "BASIP_IDLE_SERVER_CERT_KEY"

// TestIdleServerProcess is the server of BenchmarkIdleConnectionMemory,
// started by it in a process of its own so that the server's side of the
// connections does not count in the benchmark's memory. It prints the
// plain and TLS addresses on one line and serves until its standard input
// closes (at most ten minutes).
func TestIdleServerProcess(t *testing.T) {
	files := os.Getenv(idleServerEnv)
	if files == "" {
		t.Skip("the server of BenchmarkIdleConnectionMemory; it runs in its own process")
	}
	certFile, keyFile, _ := strings.Cut(files, ",")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"user":"101"}`)
	})}
	go srv.Serve(plain)
	go srv.Serve(tls.NewListener(secure, &tls.Config{Certificates: []tls.Certificate{cert}}))
	fmt.Printf("%s %s\n", plain.Addr(), secure.Addr())
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	srv.Close()
}

// startIdleServer runs TestIdleServerProcess and returns its base URLs and
// a TLS config that trusts it.
func startIdleServer(b *testing.B) (plainURL, tlsURL string, cfg *tls.Config) {
	certPEM, keyPEM, err := simulator.SelfSigned(simulator.CertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleServerProcess$")
	cmd.Env = append(os.Environ(), idleServerEnv+"="+certFile+","+keyFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	var plainAddr, tlsAddr string
	if _, err := fmt.Sscan(line, &plainAddr, &tlsAddr); err != nil {
		b.Fatalf("server process said %q", line)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return "http://" + plainAddr, "https://" + tlsAddr, &tls.Config{RootCAs: pool}
}

// memory is what a process holds after a full collection: inUse the heap
// spans and stacks in use (what the process pays for, fragmentation
// included), live the bytes of live heap objects and stacks.
type memory struct{ inUse, live int64 }

func measure() memory {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memory{inUse: int64(m.HeapInuse + m.StackInuse), live: int64(m.HeapAlloc + m.StackInuse)}
}

// perConn is the growth from before to after, per connection.
func perConn(before, after memory, n int) memory {
	return memory{inUse: (after.inUse - before.inUse) / int64(n), live: (after.live - before.live) / int64(n)}
}

// benchGet sends a GET as the client does. The response's context ends
// with done, to be called once the body is closed.
func benchGet(b *testing.B, hc *http.Client, url string) (resp *http.Response, done func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	return resp, cancel
}

// idleOwn opens n idle connections, one per device transport as the
// clients hold them, and returns the memory they take each. The transports
// exist before the baseline: a device's client exists with or without a
// connection.
func idleOwn(b *testing.B, url string, cfg *tls.Config, n int) memory {
	ts := make([]*transport, n)
	for i := range ts {
		ts[i] = newTransport(cfg, time.Hour)
	}
	defer func() {
		for _, t := range ts {
			t.CloseIdleConnections()
		}
	}()
	before := measure()
	for _, t := range ts {
		resp, done := benchGet(b, &http.Client{Transport: t}, url)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done()
	}
	after := measure()
	for _, t := range ts {
		t.mu.Lock()
		idle := t.idle
		t.mu.Unlock()
		if idle == nil {
			b.Fatal("a transport kept no idle connection")
		}
	}
	return perConn(before, after, n)
}

// idleNetHTTP opens n idle connections through one net/http Transport,
// the way it pools a fleet, and returns the memory they take each. Each
// response is held unread until all n are open, so each takes its own
// connection.
func idleNetHTTP(b *testing.B, url string, cfg *tls.Config, n int) memory {
	var dials atomic.Int64
	d := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     cfg,
		MaxIdleConnsPerHost: n,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	resps := make([]*http.Response, n)
	dones := make([]func(), n)
	before := measure()
	for i := range resps {
		resps[i], dones[i] = benchGet(b, hc, url)
	}
	for i, resp := range resps {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		dones[i]()
		resps[i], dones[i] = nil, nil
	}
	time.Sleep(200 * time.Millisecond) // for the read loops to go back to waiting
	after := measure()
	if dials.Load() != int64(n) {
		b.Fatalf("%d connections for %d held responses", dials.Load(), n)
	}
	return perConn(before, after, n)
}

// BenchmarkIdleConnectionMemory reports the memory (heap and stack in use)
// each idle device connection takes, through this package's transport and
// through net/http's, over plain HTTP and TLS. The figures are in the
// comment at the top of transport.go. Run it with -benchtime 1x: each
// iteration opens idleConns connections.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	plainURL, tlsURL, cfg := startIdleServer(b)
	for _, c := range []struct {
		name string
		open func(*testing.B, string, *tls.Config, int) memory
	}{{"own", idleOwn}, {"net-http", idleNetHTTP}} {
		for _, url := range []string{plainURL, tlsURL} {
			scheme, _, _ := strings.Cut(url, ":")
			b.Run(c.name+"/"+scheme, func(b *testing.B) {
				var per memory
				for b.Loop() {
					per = c.open(b, url+"/api/v1/device/sip/settings", cfg, idleConns)
				}
				b.ReportMetric(float64(per.inUse), "B/idle-conn")
				b.ReportMetric(float64(per.live), "live-B/idle-conn")
			})
		}
	}
}
