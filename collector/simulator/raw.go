package simulator

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// RawServer is a TCP listener on loopback that hands every connection to a
// function, for what an HTTP server cannot be made to do: speak something
// that is not HTTP, echo the request, or record that nothing arrived. It
// records every byte read from its connections.
type RawServer struct {
	// URL is http://ADDR, for a device address.
	URL string
	// Connections counts the TCP connections accepted.
	Connections atomic.Int64

	ln       net.Listener
	handle   func(net.Conn)
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	received []byte
	closed   bool
	wg       sync.WaitGroup
}

// ServeRaw listens on 127.0.0.1 at a free port and runs handle for every
// connection; the connection is closed when handle returns.
func ServeRaw(handle func(net.Conn)) (*RawServer, error) {
	return ServeRawOn("127.0.0.1:0", handle)
}

// ServeRawOn is ServeRaw on addr, which must be a loopback address (say
// 127.0.0.2:0, to be another host than 127.0.0.1).
func ServeRawOn(addr string, handle func(net.Conn)) (*RawServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &RawServer{URL: "http://" + ln.Addr().String(), ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *RawServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Connections.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(&recordingConn{Conn: c, s: s})
		}()
	}
}

// Addr is host:port of the server.
func (s *RawServer) Addr() string { return s.ln.Addr().String() }

// Received returns every byte read from the connections so far.
func (s *RawServer) Received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.received...)
}

// Close stops listening, closes every connection and waits (briefly) for
// the handlers to return.
func (s *RawServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Second):
	}
	return err
}

type recordingConn struct {
	net.Conn
	s *RawServer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.mu.Lock()
		c.s.received = append(c.s.received, p[:n]...)
		c.s.mu.Unlock()
	}
	return n, err
}

// Echo sends back whatever it reads, as a TCP echo service on the device's
// address would: the request line and headers come back as the "answer".
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }

// Sink reads and drops whatever arrives until the client hangs up, without
// ever answering.
func Sink(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// Banner answers every request with banner and closes, as a service that
// is not HTTP (say SSH) would.
func Banner(banner string) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, banner)
	}
}
