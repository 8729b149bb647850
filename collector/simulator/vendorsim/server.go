package vendorsim

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Server serves one Device on a loopback port; a Ufanet device also on a
// second port, its status port.
type Server struct {
	Device *Device
	// URL is http://127.0.0.1:PORT.
	URL string
	// StatusPort is the port of a Ufanet device's status; 0 for others.
	StatusPort int

	servers []*http.Server
}

// Serve starts serving d on 127.0.0.1 at free ports.
func Serve(d *Device) (*Server, error) { return ServeAt(d, "127.0.0.1:0", "127.0.0.1:0") }

// ServeAt starts serving d at addr (host:port), and a Ufanet device's
// status at statusAddr, which other vendors ignore.
func ServeAt(d *Device, addr, statusAddr string) (*Server, error) {
	s := &Server{Device: d}
	ln, err := s.listen(d, d, addr)
	if err != nil {
		return nil, err
	}
	s.URL = "http://" + ln.Addr().String()
	if d.Vendor == "ufanet" {
		st, err := s.listen(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(context.WithValue(r.Context(), statusPortKey{}, true))
			d.ServeHTTP(w, r)
		}), statusAddr)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.StatusPort = st.Addr().(*net.TCPAddr).Port
	}
	return s, nil
}

func (s *Server) listen(d *Device, h http.Handler, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			d.Connections.Add(1)
		}
	}}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln, nil
}

// statusPortKey marks a request that came to a Ufanet status port.
type statusPortKey struct{}

// Close stops the server and drops its connections.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
	return nil
}
