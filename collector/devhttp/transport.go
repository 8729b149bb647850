// The device transport: an HTTP/1.1 round tripper of our own instead of
// net/http's Transport, for a fleet of thousands of small devices polled on
// a schedule, each keeping one connection alive between scrapes.
//
// Why: net/http's Transport keeps two goroutines (a read loop and a write
// loop) and two 4 KiB buffers alive for every idle connection. Here an idle
// connection is only its socket: buffers come from a pool for the length of
// one exchange, no goroutine waits on it, and one timer per device closes it
// after the idle timeout. Requests are still written and responses parsed by
// net/http itself (Request.Write, http.ReadResponse); this file only decides
// which connection carries a request and whether a connection may carry
// another one.
//
// Measured by BenchmarkIdleConnectionMemory: 1,000 idle connections to a
// server in another process; bytes per connection by which the heap spans
// and stacks in use grew, measured after a GC, and in brackets the live
// heap objects and stacks (go1.26, linux/amd64, 2-core Intel Xeon 2.5 GHz,
// two runs):
//
//	                     plain HTTP                  HTTPS (TLS 1.3)
//	this transport       1,190-1,220 (470-490)       8,010-8,300 (7,000)
//	net/http.Transport   20,040-21,560 (18,250-19,310)  30,190-30,820 (24,430-25,010)
//
// About 19 KiB less per device over plain HTTP and 22 KiB less over TLS
// (where the TLS state, certificates included, is the same in both): some
// 200 MiB at ten thousand devices. Reproduce with
//
//	go test -run '^$' -bench IdleConnectionMemory -benchtime 1x ./collector/devhttp/
//
// TestTransportBehavesLikeNetHTTP checks that it answers like net/http's
// Transport for what the client asks (status, headers, bodies of known and
// chunked length, keep-alive).
//
// The rule it is audited for: every answer is matched to its request, or
// the connection is dropped. A connection is kept only after a complete
// response that allows it, with nothing read past that response, and it is
// checked again for unasked bytes (or a close by the device) before reuse.

package devhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// transport carries one device's requests over at most one kept-alive
// connection. It counts the requests it sends.
type transport struct {
	tlsConfig   *tls.Config // shared, never modified
	idleTimeout time.Duration
	requests    atomic.Int64 // requests sent, for device.Result

	mu        sync.Mutex
	closes    uint64   // CloseIdleConnections calls: a connection from before one is not kept
	idle      net.Conn // nil, or the one idle connection, to idleKey
	idleKey   string   // scheme://host:port
	idleSince time.Time
	timer     *time.Timer // closes idle after idleTimeout; made once
}

// Limits on what a device may send in one response: the client reads at
// most maxBodySize of the body; the headers get maxHeaderBytes, all
// informational answers included.
const (
	maxHeaderBytes = 64 << 10
	// max1xx bounds the informational answers (100 Continue, 103 Early
	// Hints) skipped before the real one, as net/http does.
	max1xx = 5
)

var (
	errResponseTooLarge  = errors.New("response larger than allowed")
	errTooMany1xx        = errors.New("too many informational (1xx) responses from the device")
	errSwitchedProtocols = errors.New("unexpected HTTP 101 Switching Protocols from the device")
	// The parsers of net/http quote the bytes they could not parse; a
	// device that echoes the request would have its login query quoted.
	// These replace their errors.
	// ErrMalformedResponse replaces a parser's error about a response head.
	ErrMalformedResponse = errors.New("malformed HTTP response from the device")
	errMalformedBody     = errors.New("malformed HTTP response body from the device")
)

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1024) }}
)

// aLongTimeAgo is a deadline that has passed: a Read with it returns at once.
var aLongTimeAgo = time.Unix(1, 0)

// dialer dials every device; it holds settings only, so one serves all.
var dialer = net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

func newTransport(tlsConfig *tls.Config, idleTimeout time.Duration) *transport {
	return &transport{
		tlsConfig:   tlsConfig,
		idleTimeout: idleTimeout,
	}
}

// RoundTrip implements http.RoundTripper. It never sends a request twice:
// retries are the retry client's business.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, errors.New("unsupported scheme")
	}
	t.requests.Add(1)
	key := req.URL.Scheme + "://" + hostPort(req.URL.Scheme, req.URL.Hostname(), req.URL.Port())
	conn, closes := t.takeIdle(key)
	if conn == nil {
		var err error
		if conn, err = t.dial(req); err != nil {
			return nil, err
		}
	}
	return t.exchange(conn, key, closes, req)
}

func hostPort(scheme, host, port string) string {
	if port == "" {
		port = defaultPort(scheme)
	}
	return net.JoinHostPort(host, port)
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// takeIdle returns the idle connection if it goes to key, is younger than
// the idle timeout and has nothing to read; any other is closed. closes is
// the count of CloseIdleConnections calls so far, for put.
func (t *transport) takeIdle(key string) (conn net.Conn, closes uint64) {
	t.mu.Lock()
	conn, closes = t.idle, t.closes
	fresh := t.idleKey == key && time.Since(t.idleSince) < t.idleTimeout
	t.idle = nil
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	if conn != nil && (!fresh || !quiet(conn)) {
		_ = conn.Close()
		conn = nil
	}
	return conn, closes
}

// quiet reports whether an idle connection has nothing to read. Bytes
// there were sent unasked (they would be taken for the next request's
// answer); EOF or an error means the device closed it. Only a connection
// with nothing to read is quiet. What arrives after the check is not seen:
// no check can close that race, which HTTP/1.1 leaves open. (Over TLS, an
// unasked record that arrived only in part before the check makes the next
// answer fail to authenticate, and the connection is dropped.)
func quiet(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		// What TLS has already taken off the socket: a Read with a passed
		// deadline returns buffered data, or whole buffered records, and
		// otherwise fails at once with a timeout, without touching the
		// socket and leaving the TLS state intact.
		if tc.SetReadDeadline(aLongTimeAgo) != nil {
			return false
		}
		var b [1]byte
		n, err := tc.Read(b[:])
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || tc.SetReadDeadline(time.Time{}) != nil {
			return false
		}
		conn = tc.NetConn()
	}
	return socketQuiet(conn)
}

func (t *transport) dial(req *http.Request) (net.Conn, error) {
	ctx := req.Context()
	conn, err := dialer.DialContext(ctx, "tcp", hostPort(req.URL.Scheme, req.URL.Hostname(), req.URL.Port()))
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme != "https" {
		return conn, nil
	}
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
		return nil, err
	}
	return tc, nil
}

// put keeps conn as the idle connection to key, replacing (and closing)
// any other, and arms the idle timer; unless CloseIdleConnections was
// called while conn carried its request (closes is the count from before):
// then conn is closed, as if it had been idle.
func (t *transport) put(key string, conn net.Conn, closes uint64) {
	t.mu.Lock()
	if closes != t.closes {
		t.mu.Unlock()
		_ = conn.Close()
		return
	}
	old := t.idle
	t.idle, t.idleKey, t.idleSince = conn, key, time.Now()
	if t.timer == nil {
		t.timer = time.AfterFunc(t.idleTimeout, t.expire)
	} else {
		t.timer.Reset(t.idleTimeout)
	}
	t.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

// expire closes the idle connection once it has been idle for the idle
// timeout. The timer may fire late, after the connection it was armed for
// was reused and another one put back: the age check leaves that one alone
// (put re-armed the timer for it).
func (t *transport) expire() {
	t.mu.Lock()
	conn := t.idle
	if conn != nil && time.Since(t.idleSince) >= t.idleTimeout {
		t.idle = nil
	} else {
		conn = nil
	}
	t.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// CloseIdleConnections closes the idle connection, if any, and the one
// carrying a request, once its answer has been read. The transport stays
// usable.
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	conn := t.idle
	t.idle = nil
	t.closes++
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// exchange sends req on conn and reads the response head. The deadline and
// cancellation of req's context apply to the connection itself, so nothing
// waits on it in the background. On any error the connection is closed.
func (t *transport) exchange(conn net.Conn, key string, closes uint64, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The connection's deadline can pass just before the context's,
		// cutting a header line short: a malformed head is then a timeout.
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
	resp, err := readResponse(br, req)
	if err != nil {
		br.Reset(nil)
		readerPool.Put(br)
		if lr.n <= 0 {
			err = errResponseTooLarge
		}
		return fail(deviceBytesError(err, ErrMalformedResponse))
	}
	// The body may be as large as the client reads, plus what is buffered.
	lr.n = maxBodySize + 1 + int64(br.Size())
	b := &body{
		t: t, key: key, closes: closes, conn: conn, br: br, rc: resp.Body, stop: stop,
		// Connection: close, HTTP/1.0 without keep-alive and a body that
		// ends when the connection does all set resp.Close.
		reuse: !resp.Close && !req.Close && resp.ProtoMajor == 1,
	}
	if resp.Body == http.NoBody || resp.ContentLength == 0 {
		b.release(true)
		resp.Body = http.NoBody
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// readResponse reads the answer to req, skipping informational ones (1xx):
// they come before the real answer to the same request. A 101 would mean
// the device switched to another protocol, which was not asked for.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for range max1xx + 1 {
		resp, err := http.ReadResponse(br, req)
		switch {
		case err != nil:
			return nil, err
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errSwitchedProtocols
		case resp.StatusCode >= 200 || resp.StatusCode < 100:
			return resp, nil
		}
		// A 1xx answer has no body: http.ReadResponse has read all of it.
	}
	return nil, errTooMany1xx
}

// deviceBytesError keeps an error from the network (which says what
// happened to the connection) and replaces any other, a parser's complaint
// that may quote what the device sent, with generic.
func deviceBytesError(err, generic error) error {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, errResponseTooLarge), errors.Is(err, errTooMany1xx), errors.Is(err, errSwitchedProtocols),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return err
	}
	return generic
}

// body hands the connection back once the response has been read to its
// end, and closes it otherwise.
type body struct {
	t      *transport
	key    string
	closes uint64
	conn   net.Conn
	br     *bufio.Reader
	rc     io.ReadCloser
	stop   func() bool
	reuse  bool
	done   bool
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
		err = deviceBytesError(err, errMalformedBody)
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done {
		b.release(false)
	}
	return nil
}

// release keeps the connection only after a complete response that allows
// it, with no byte buffered beyond it (bytes after the end of the answer
// were sent unasked), and when the context's cancellation has not touched
// the connection's deadline.
func (b *body) release(complete bool) {
	b.done = true
	stopped := b.stop()
	keep := complete && b.reuse && stopped && b.br.Buffered() == 0
	b.br.Reset(nil)
	readerPool.Put(b.br)
	if !keep || b.conn.SetDeadline(time.Time{}) != nil {
		_ = b.conn.Close()
		return
	}
	b.t.put(b.key, b.conn, b.closes)
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
