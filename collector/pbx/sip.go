package pbx

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// The OPTIONS prober: one request, one final answer, over a connection of
// the call's own.
//
// The request goes through sipgo's client transaction (sip.ClientTx, the
// RFC 3261 17.1.2 machine: retransmission over UDP on Timer E, provisional
// and final answers, retransmitted finals absorbed), and sipgo builds and
// parses the messages. sipgo's transport layer (sipgo.UserAgent,
// sip.TransportLayer), which the transaction layer sits on, is not used;
// in v1.7.3 it
//
//   - sends UDP from an unconnected socket bound to 0.0.0.0, which takes
//     datagrams from anyone for as long as the layer lives, and never sees
//     the ICMP port unreachable that says nothing listens at the target;
//   - hands every request arriving on that socket to a server transaction,
//     answering a malformed one with a 400 sent to whatever its Via names:
//     a packet to an address that is not the target;
//   - logs a message it cannot parse at level error with the raw bytes;
//   - keeps each connection open and read after its transaction ends
//     (sip.TransportIdleConnection, a package variable) until the layer is
//     closed, and takes its TLS configuration once per layer.
//
// So each call dials its own socket to the target, connected (UDP
// included: the kernel then delivers only the target's datagrams and
// reports its ICMP refusal), gives it to sip.NewClientTx as the
// transaction's sip.Connection, reads it with a goroutine of the call's
// own that passes the target's answers to the transaction, and closes it
// before returning: no socket, goroutine or timer outlives the call. The
// Call-ID, tags and branch come from crypto/rand (sipgo's from math/rand).

// Bounds on one OPTIONS call.
const (
	// sipMaxMessage is the longest SIP message read (sipgo's default, made
	// explicit): over TCP and TLS a longer one ends the call.
	sipMaxMessage = 64 << 10
	// sipMaxStream is the most bytes read from a TCP or TLS connection in
	// one call.
	sipMaxStream = 256 << 10
	// sipMaxMessages is the most messages (or datagrams) read in one call
	// before its final answer.
	sipMaxMessages = 64
	// sipMaxReason is the longest reason phrase an Answer keeps, escaped.
	sipMaxReason = 128
	// sipUser is the user part of From and To.
	sipUser = "basip_exporter"
)

// ErrProberClosed is the error of Options on a closed Prober.
var ErrProberClosed = errors.New("the SIP prober is closed")

// Prober sends SIP OPTIONS to PBXes. Its Options may be called from many
// goroutines at once, for the same target too: each call has its own
// socket.
type Prober struct {
	logger *slog.Logger
	parser *sip.Parser // read only once made; shared by the calls

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

// NewProber returns a Prober that logs what it drops (messages that are not
// the answer) to logger at level debug; nil logs nothing.
func NewProber(logger *slog.Logger) (*Prober, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	parser := sip.NewParser()
	parser.MaxMessageLength = sipMaxMessage
	return &Prober{logger: logger, parser: parser, ctx: ctx, cancel: cancel}, nil
}

// Close ends the calls under way (with ErrProberClosed) and waits for
// them; later calls fail with ErrProberClosed.
func (p *Prober) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.calls.Wait()
	return nil
}

// Options sends one OPTIONS to t and returns the first final answer (any
// code from 200 on: a 404 or a 483 is an answer too). Provisional answers
// are passed over. ctx bounds everything, the name lookup and the
// connection included; with no final answer before it ends the error says
// so (reason timeout). Errors are *device.Error values: a refused
// connection, or an ICMP refusal over UDP, is reason connection and says
// "connection refused"; a failed TLS handshake is reason tls.
func (p *Prober) Options(ctx context.Context, t Target) (Answer, error) {
	c, err := newSIPCall(t)
	if err != nil {
		return Answer{}, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Answer{}, &device.Error{Reason: device.ReasonConnection, Op: c.op, Err: ErrProberClosed}
	}
	p.calls.Add(1)
	p.mu.Unlock()
	defer p.calls.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()

	a, err := p.run(ctx, c)
	if err != nil && p.ctx.Err() != nil {
		err = &device.Error{Reason: device.ReasonConnection, Op: c.op, Err: ErrProberClosed}
	}
	return a, err
}

// sipCall is one OPTIONS to one target.
type sipCall struct {
	target    Target
	transport string // "udp", "tcp" or "tls"
	host      string // for the URIs: an IP address without a zone, or a name
	dial      string // host:port to dial
	op        string // names the call in errors
}

func newSIPCall(t Target) (*sipCall, error) {
	c := &sipCall{target: t, transport: strings.ToLower(t.Transport)}
	host := strings.TrimSuffix(strings.TrimPrefix(t.Host, "["), "]")
	c.op = "OPTIONS " + c.transport + " " + net.JoinHostPort(host, strconv.Itoa(t.Port))
	fail := func(format string, args ...any) (*sipCall, error) {
		return nil, &device.Error{Reason: device.ReasonConnection, Op: "OPTIONS", Err: fmt.Errorf(format, args...)}
	}
	switch c.transport {
	case "udp", "tcp", "tls":
	default:
		return fail(`transport "%s" is not udp, tcp or tls`, safeExcerpt(t.Transport, 16))
	}
	if t.Port < 1 || t.Port > 65535 {
		return fail("port %d is out of range", t.Port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		c.host = a.WithZone("").String()
	} else if validHostName(host) {
		c.host = host
	} else {
		// It would go into the request's URIs and headers as it is.
		return fail(`host "%s" is neither an IP address nor a host name`, safeExcerpt(t.Host, 64))
	}
	c.dial = net.JoinHostPort(host, strconv.Itoa(t.Port))
	return c, nil
}

// validHostName reports whether h is a DNS name: letters, digits, '-',
// '_' and dots, at most 253 bytes.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

var discardLogger = slog.New(slog.DiscardHandler)

// errNoAnswer is the cause of a call that ended with no final answer.
var errNoAnswer = errors.New("no final answer to the OPTIONS before the deadline")

func (p *Prober) run(ctx context.Context, c *sipCall) (Answer, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return Answer{}, c.netError(ctx, err)
	}
	// A deadline on the socket too, so no read or write outlasts ctx.
	unblock := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer unblock()

	req, err := c.request(conn.LocalAddr())
	if err != nil {
		conn.Close()
		return Answer{}, &device.Error{Reason: device.ReasonConnection, Op: c.op, Err: err}
	}
	key, err := sip.ClientTxKeyMake(req)
	if err != nil {
		conn.Close()
		return Answer{}, &device.Error{Reason: device.ReasonConnection, Op: c.op, Err: err}
	}
	sc := &sipConn{conn: conn}
	// The transaction's own log lines are about its internals; the call's
	// outcome is its result.
	tx := sip.NewClientTx(key, req, sc, discardLogger)
	start := time.Now()
	if err := tx.Init(); err != nil { // writes the request
		tx.Terminate()
		conn.Close()
		return Answer{}, c.netError(ctx, err)
	}

	r := &sipReader{call: c, conn: conn, parser: p.parser, tx: tx, key: key, failed: make(chan error, 1), done: make(chan struct{})}
	go r.read()
	// finish ends the call: after a final answer the reader is not
	// blocked in the transaction (it takes no more answers), so it ends
	// first, and Terminate then stops the timers the final answer set;
	// otherwise Terminate first, which frees a reader blocked in it.
	finish := func(final bool) {
		if !final {
			tx.Terminate()
		}
		conn.Close()
		<-r.done
		tx.Terminate()
		if r.dropped > 0 {
			p.logger.Debug("SIP messages dropped: not the answer to the OPTIONS", "target", c.op, "dropped", r.dropped)
		}
	}

	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			a := Answer{Code: res.StatusCode, Reason: safeExcerpt(res.Reason, sipMaxReason), RTT: time.Since(start)}
			finish(true)
			return a, nil
		case <-tx.Done():
			err := tx.Err()
			finish(false)
			if errors.Is(err, sip.ErrTransactionTimeout) {
				return Answer{}, &device.Error{Reason: device.ReasonTimeout, Op: c.op, Err: errNoAnswer}
			}
			return Answer{}, c.netError(ctx, err)
		case err := <-r.failed:
			finish(false)
			return Answer{}, c.netError(ctx, err)
		case <-ctx.Done():
			finish(false)
			return Answer{}, c.netError(ctx, ctx.Err())
		}
	}
}

// connect dials the target: a connected UDP socket, a TCP connection, or
// a TLS connection with its handshake done.
func (c *sipCall) connect(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	switch c.transport {
	case "udp":
		return d.DialContext(ctx, "udp", c.dial)
	case "tcp":
		return d.DialContext(ctx, "tcp", c.dial)
	}
	cfg := c.target.TLS
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	td := tls.Dialer{NetDialer: &d, Config: cfg} // sets ServerName from the host when cfg has none
	return td.DialContext(ctx, "tcp", c.dial)
}

// netError classifies a failed call: ctx's end first (a read cut by the
// deadline set from it is a timeout, not a failure of the socket), then
// the socket's own error.
func (c *sipCall) netError(ctx context.Context, err error) *device.Error {
	var (
		de *device.Error
		oe *net.OpError
	)
	switch {
	case errors.As(err, &de):
		return de
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &device.Error{Reason: device.ReasonTimeout, Op: c.op, Err: fmt.Errorf("%w (%w)", errNoAnswer, context.DeadlineExceeded)}
	case ctx.Err() != nil:
		return &device.Error{Reason: device.ReasonTimeout, Op: c.op, Err: ctx.Err()}
	}
	if errors.As(err, &oe) { // not the transaction's wrapping, which quotes the request line
		err = oe
	}
	return devhttp.TransportError(c.op, err)
}

// request builds the OPTIONS, sent from local.
func (c *sipCall) request(local net.Addr) (*sip.Request, error) {
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(lport)
	if err != nil {
		return nil, err
	}
	branch, tag, callID := randomToken(12), randomToken(8), randomToken(16)

	uri := sip.Uri{Scheme: "sip", Host: c.host, Port: c.target.Port}
	if c.transport != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", c.transport)
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	req.SetTransport(strings.ToUpper(c.transport))
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(c.transport),
		Host: lhost, Port: port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.RFC3261BranchMagicCookie+"."+branch)
	via.Params.Add("rport", "")
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: sipUser, Host: c.host}, Params: sip.NewParams()}
	from.Params.Add("tag", tag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: sipUser, Host: c.host}}
	cid := sip.CallIDHeader(callID)
	cseq := &sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS}
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(via)
	req.AppendHeader(&maxfwd)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(cseq)
	req.AppendHeader(sip.NewHeader("User-Agent", sipUser))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	req.SetBody(nil) // Content-Length: 0
	return req, nil
}

// randomToken is 2n hex digits from crypto/rand.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// sipConn is a call's socket as the transaction's sip.Connection. The call
// closes the socket itself, so the reference counting is a no-op.
type sipConn struct {
	mu   sync.Mutex // one message at a time on a stream
	conn net.Conn
}

var _ sip.Connection = (*sipConn)(nil)

func (s *sipConn) LocalAddr() net.Addr { return s.conn.LocalAddr() }

func (s *sipConn) WriteMsg(msg sip.Message) error {
	var b strings.Builder
	msg.StringWrite(&b)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.conn.Write([]byte(b.String()))
	return err
}

func (s *sipConn) Ref(int) int { return 1 }

func (s *sipConn) TryClose() (int, error) { return 1, nil }

func (s *sipConn) Close() error { return nil }

// sipReader reads a call's socket until it is closed, and passes each
// answer to the transaction; everything else is dropped and counted.
type sipReader struct {
	call    *sipCall
	conn    net.Conn
	parser  *sip.Parser
	tx      *sip.ClientTx
	key     string
	failed  chan error    // the error that ended the reading, if the call should end with it
	done    chan struct{} // closed when read returns
	dropped int           // read by the call once done is closed
}

// Errors of a reading that end the call.
var (
	errSIPTooManyMessages = fmt.Errorf("more than %d SIP messages and no final answer", sipMaxMessages)
	errSIPStreamTooLong   = fmt.Errorf("more than %d bytes and no final answer", sipMaxStream)
	errSIPNotSIP          = errors.New("the stream is not SIP")
	errSIPClosed          = fmt.Errorf("the connection was closed before a final answer (%w)", io.EOF)
)

func (r *sipReader) read() {
	defer close(r.done)
	var err error
	if r.call.transport == "udp" {
		err = r.readDatagrams()
	} else {
		err = r.readStream()
	}
	r.failed <- err
}

// readDatagrams reads one message a datagram: one that does not parse is
// dropped.
func (r *sipReader) readDatagrams() error {
	buf := make([]byte, 64<<10) // more than any datagram
	for messages := 0; ; messages++ {
		if messages >= sipMaxMessages {
			return &device.Error{Reason: device.ReasonDecode, Op: r.call.op, Err: errSIPTooManyMessages}
		}
		n, err := r.conn.Read(buf)
		if err != nil {
			return err
		}
		msg, err := r.parser.ParseSIP(buf[:n])
		if err != nil {
			r.dropped++
			continue
		}
		r.receive(msg)
	}
}

// readStream reads messages from a TCP or TLS stream with sipgo's stream
// parser: bytes that are not SIP, or a message over sipMaxMessage, end the
// call, as there is no message boundary to find after them.
func (r *sipReader) readStream() error {
	stream := r.parser.NewSIPStream()
	defer stream.Close()
	buf := make([]byte, 16<<10)
	messages, total := 0, 0
	for {
		n, err := r.conn.Read(buf)
		if errors.Is(err, io.EOF) {
			return &device.Error{Reason: device.ReasonConnection, Op: r.call.op, Err: errSIPClosed}
		}
		if err != nil {
			return err
		}
		if total += n; total > sipMaxStream {
			return &device.Error{Reason: device.ReasonTooLarge, Op: r.call.op, Err: errSIPStreamTooLong}
		}
		err = stream.ParseSIPStream(buf[:n], func(msg sip.Message) {
			messages++
			r.receive(msg)
		})
		switch {
		case messages > sipMaxMessages:
			return &device.Error{Reason: device.ReasonDecode, Op: r.call.op, Err: errSIPTooManyMessages}
		case errors.Is(err, sip.ErrMessageTooLarge):
			return &device.Error{Reason: device.ReasonTooLarge, Op: r.call.op, Err: fmt.Errorf("a SIP message longer than %d bytes", sipMaxMessage)}
		case err != nil && !errors.Is(err, sip.ErrParseSipPartial):
			// sipgo's parse errors quote the bytes: none is kept.
			return &device.Error{Reason: device.ReasonDecode, Op: r.call.op, Err: errSIPNotSIP}
		}
	}
}

// receive passes msg to the transaction when it is an answer to it with a
// status code SIP has (100 to 699); anything else is dropped.
func (r *sipReader) receive(msg sip.Message) {
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode < 100 || res.StatusCode > 699 {
		r.dropped++
		return
	}
	if key, err := sip.ClientTxKeyMake(res); err != nil || key != r.key {
		r.dropped++
		return
	}
	r.tx.Receive(res) // may wait for the call to take it, or to end
}
