package basip

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// transport is an HTTP/1.1 round tripper built for a large fleet of small
// devices polled on a schedule. net/http's Transport keeps two goroutines
// and two 4 KiB buffers alive for every idle connection; at ten thousand
// devices that is most of the exporter's memory. Here an idle connection is
// only its socket: buffers come from a pool for the length of one exchange,
// and no goroutine waits on it. Requests are written and responses parsed
// by net/http itself (Request.Write, http.ReadResponse).
type transport struct {
	dialer      net.Dialer
	tlsConfig   *tls.Config
	idleTimeout time.Duration
	maxIdle     int // per host

	mu   sync.Mutex
	idle map[string][]idleConn // by scheme://host:port
}

type idleConn struct {
	conn  net.Conn
	since time.Time
}

// Limits on what a device may send in one response: the client reads at
// most MaxBodySize of the body; the headers get maxHeaderBytes.
const maxHeaderBytes = 64 << 10

var errResponseTooLarge = errors.New("response larger than allowed")

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1024) }}
)

func newTransport(tlsConfig *tls.Config) *transport {
	return &transport{
		dialer:      net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		tlsConfig:   tlsConfig,
		idleTimeout: 5 * time.Minute,
		maxIdle:     1, // the client sends a device one request at a time
		idle:        map[string][]idleConn{},
	}
}

// RoundTrip implements http.RoundTripper. A request on a reused connection
// that the device had closed meanwhile is sent again once on a new one;
// the requests this client makes are all GETs, safe to repeat.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, errors.New("unsupported scheme")
	}
	key := req.URL.Scheme + "://" + hostPort(req)
	for attempt := 0; ; attempt++ {
		conn, reused, err := t.conn(req.Context(), key, req)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(conn, key, req)
		if err == nil {
			return resp, nil
		}
		if !reused || attempt > 0 || req.Method != http.MethodGet || req.Context().Err() != nil || !closedByPeer(err) {
			return nil, err
		}
	}
}

func hostPort(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	if req.URL.Scheme == "https" {
		return net.JoinHostPort(req.URL.Hostname(), "443")
	}
	return net.JoinHostPort(req.URL.Hostname(), "80")
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// conn returns an idle connection to key, or dials one.
func (t *transport) conn(ctx context.Context, key string, req *http.Request) (net.Conn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0; list = t.idle[key] {
		ic := list[len(list)-1]
		t.setIdle(key, list[:len(list)-1])
		if now.Sub(ic.since) < t.idleTimeout {
			t.mu.Unlock()
			return ic.conn, true, nil
		}
		_ = ic.conn.Close()
	}
	t.mu.Unlock()
	addr := hostPort(req)
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	if req.URL.Scheme == "https" {
		cfg := t.tlsConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, false, err
		}
		conn = tc
	}
	return conn, false, nil
}

func (t *transport) setIdle(key string, list []idleConn) {
	if len(list) == 0 {
		delete(t.idle, key)
		return
	}
	t.idle[key] = list
}

// put keeps conn for the next request to key, if there is room.
func (t *transport) put(key string, conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[key]
	if len(list) >= t.maxIdle {
		_ = conn.Close()
		return
	}
	t.idle[key] = append(list, idleConn{conn: conn, since: time.Now()})
}

// CloseIdleConnections closes every idle connection.
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]idleConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, ic := range list {
			_ = ic.conn.Close()
		}
	}
}

// exchange sends req on conn and reads the response head. The deadline and
// cancellation of req's context apply to the connection itself, so nothing
// waits on it in the background.
func (t *transport) exchange(conn net.Conn, key string, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The connection's deadline can pass just before the context's,
		// cutting a header line short: "malformed MIME header" is then a
		// timeout.
		if hasDeadline && !time.Now().Before(deadline) {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	if err != nil {
		return fail(err)
	}
	lr := &limitedReader{r: conn, n: maxHeaderBytes}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(lr)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		br.Reset(nil)
		readerPool.Put(br)
		if lr.n <= 0 {
			err = errResponseTooLarge
		}
		return fail(err)
	}
	// The body may be as large as the client reads, plus what is buffered.
	lr.n = MaxBodySize + 1 + int64(br.Size())
	b := &body{t: t, key: key, conn: conn, br: br, rc: resp.Body, stop: stop, reuse: !resp.Close && !req.Close}
	if resp.Body == http.NoBody || resp.ContentLength == 0 {
		b.release(true)
		resp.Body = http.NoBody
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// body returns the connection to the pool once the response has been read
// to its end, and closes it otherwise.
type body struct {
	t     *transport
	key   string
	conn  net.Conn
	br    *bufio.Reader
	rc    io.ReadCloser
	stop  func() bool
	reuse bool
	done  bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.release(true)
	} else if err != nil {
		b.release(false)
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done {
		b.release(false)
	}
	return nil
}

func (b *body) release(complete bool) {
	b.done = true
	stopped := b.stop()
	keep := complete && b.reuse && stopped && b.br.Buffered() == 0
	b.br.Reset(nil)
	readerPool.Put(b.br)
	if !keep {
		_ = b.conn.Close()
		return
	}
	_ = b.conn.SetDeadline(time.Time{})
	b.t.put(b.key, b.conn)
}

// limitedReader reads from r until n bytes have been read, then fails.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
