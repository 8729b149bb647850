// Package sipua is the SIP user agent of the simulated devices: it
// registers one account with a registrar over UDP, refreshes the
// registration at half its expiry, answers a digest challenge, and
// reports what a device's SIP status shows: registered or not, when it
// last tried and the last status code.
//
// The UA sends from the address it is given (Options.LocalIP) and names
// that address and its port in its Contact, so that a registrar records
// the device's own address. It never resolves names: the proxy is an IP
// address.
package sipua

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Defaults of Options.
const (
	DefaultExpires    = 60 * time.Second
	DefaultTimeout    = 2 * time.Second
	DefaultRetryAfter = time.Second
	DefaultPort       = 5060
	// unregisterTimeout bounds Stop's REGISTER with Expires 0.
	unregisterTimeout = time.Second
	// closeTimeout bounds the wait for the UDP reader to end.
	closeTimeout = time.Second
)

// Options configure a UA.
type Options struct {
	// User is the account: the user part of the address of record and of
	// the Contact.
	User string
	// Password answers a digest challenge. Never logged nor quoted in an
	// error.
	Password string
	// AuthUser is the digest user name: User when empty.
	AuthUser string
	// Domain is the address of record's domain and the request-URI's
	// host: the proxy's host when empty.
	Domain string
	// Proxy is where REGISTERs go over UDP: "IP:port", "IP" (port 5060),
	// or a SIP URI such as "sip:IP:port".
	Proxy string
	// LocalIP is the address the UA binds, sends from and names in its
	// Contact: 127.0.0.1 when empty.
	LocalIP string
	// Expires is the registration's requested lifetime: 60 s when zero.
	// The UA refreshes at half what the registrar grants.
	Expires time.Duration
	// Timeout bounds each REGISTER (with its digest answer): 2 s when
	// zero.
	Timeout time.Duration
	// RetryAfter is the pause after a failed REGISTER: 1 s when zero.
	RetryAfter time.Duration
	// UserAgent is the User-Agent header: "basip-simulator" when empty.
	UserAgent string
	// Logger receives the UA's and the SIP stack's messages: none when
	// nil.
	Logger *slog.Logger
}

// UA is one registering SIP user agent. Its methods are safe for
// concurrent use.
type UA struct {
	opts     Options
	proxy    netip.AddrPort
	localIP  netip.Addr
	domain   string
	log      *slog.Logger
	callID   string
	fromTag  string
	cseq     uint32 // the registration loop's, then Stop's
	contact  sip.Uri
	conn     net.PacketConn
	stack    *sipgo.UserAgent
	client   *sipgo.Client
	quit     chan struct{} // closed by Stop or Pause: no more REGISTERs
	quitOnce sync.Once
	loopDone chan struct{}
	readDone chan struct{}

	mu          sync.Mutex
	started     bool
	stopped     bool
	paused      bool
	frozen      bool // Registered's value when paused
	ok          bool // the last REGISTER got a 2xx
	expiresAt   time.Time
	lastAttempt time.Time
	lastCode    int
}

// New checks opts and returns a UA that has not sent anything yet.
func New(opts Options) (*UA, error) {
	if opts.User == "" {
		return nil, errors.New("sipua: no user")
	}
	proxy, err := ParseProxy(opts.Proxy)
	if err != nil {
		return nil, err
	}
	if opts.LocalIP == "" {
		opts.LocalIP = "127.0.0.1"
	}
	local, err := netip.ParseAddr(opts.LocalIP)
	if err != nil {
		return nil, fmt.Errorf("sipua: local IP %q is not an IP address", opts.LocalIP)
	}
	if opts.AuthUser == "" {
		opts.AuthUser = opts.User
	}
	if opts.Expires <= 0 {
		opts.Expires = DefaultExpires
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "basip-simulator"
	}
	domain := opts.Domain
	if domain == "" {
		domain = proxy.Addr().String()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UA{
		opts:    opts,
		proxy:   proxy,
		localIP: local.Unmap(),
		domain:  domain,
		log:     log.With("sip_user", opts.User, "proxy", proxy.String()),
		callID:  randomHex(16) + "@" + local.Unmap().String(),
		fromTag: sip.GenerateTagN(16),
	}, nil
}

// ParseProxy reads a proxy as devices name it: "IP:port", "IP", or a SIP
// URI ("sip:IP:port", "sip:user@IP;transport=udp"). The port is 5060 when
// missing. A host name is refused.
func ParseProxy(s string) (netip.AddrPort, error) {
	v := strings.TrimSpace(s)
	v = strings.TrimPrefix(strings.TrimPrefix(v, "<"), "sip:")
	v = strings.TrimSuffix(v, ">")
	if _, after, ok := strings.Cut(v, "@"); ok {
		v = after
	}
	if i := strings.IndexAny(v, ";?>"); i >= 0 {
		v = v[:i]
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DefaultPort), nil
	}
	return netip.AddrPort{}, fmt.Errorf("sipua: proxy %q is not an IP address with an optional port", s)
}

// Start binds LocalIP on a free UDP port and starts registering in the
// background. A UA starts once.
func (u *UA) Start() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.started {
		return errors.New("sipua: already started")
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(u.localIP.String(), "0"))
	if err != nil {
		return fmt.Errorf("sipua: %w", err)
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	stack, err := sipgo.NewUA(
		sipgo.WithUserAgent(u.opts.UserAgent),
		sipgo.WithUserAgentHostname(u.localIP.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(u.log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(u.log)),
	)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("sipua: %w", err)
	}
	srv, err := sipgo.NewServer(stack, sipgo.WithServerLogger(u.log))
	if err == nil {
		u.client, err = sipgo.NewClient(stack,
			sipgo.WithClientLogger(u.log),
			sipgo.WithClientConnectionAddr(local.String()))
	}
	if err != nil {
		_ = stack.Close()
		_ = conn.Close()
		return fmt.Errorf("sipua: %w", err)
	}
	u.conn, u.stack = conn, stack
	u.contact = sip.Uri{Scheme: "sip", User: u.opts.User, Host: u.localIP.String(), Port: local.Port}
	u.quit = make(chan struct{})
	u.loopDone, u.readDone = make(chan struct{}), make(chan struct{})
	u.started = true
	// The UDP socket is served so that the answers reach the transactions
	// of the requests sent from it.
	go func() {
		defer close(u.readDone)
		_ = srv.ServeUDP(conn)
	}()
	// Until the socket is served, a request would try to bind its address
	// again.
	if err := waitServed(stack.TransportLayer(), local.String(), closeTimeout); err != nil {
		_ = stack.Close()
		_ = conn.Close()
		select {
		case <-u.readDone:
		case <-time.After(closeTimeout):
		}
		u.started = false
		return fmt.Errorf("sipua: %w", err)
	}
	go u.run()
	return nil
}

// waitServed waits until the transport layer serves the UDP socket at
// addr, for at most timeout.
func waitServed(tp *sip.TransportLayer, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := tp.GetConnection("udp", addr); err == nil {
			_, _ = c.TryClose() // GetConnection took a reference
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the SIP socket %s is not served after %v", addr, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop stops refreshing, lets a REGISTER in flight finish (within
// Timeout), unregisters (Expires 0) when the last registration has not
// expired, waiting at most 1 s for the answer, and
// closes the UA. A stopped UA is not Registered; LastAttempt and LastCode
// keep the registration's last values. Stop does nothing when the UA was
// never started or is stopped already.
func (u *UA) Stop() {
	u.mu.Lock()
	if !u.started || u.stopped {
		u.mu.Unlock()
		return
	}
	u.stopped = true
	u.mu.Unlock()
	// A REGISTER in flight is let finish (within Timeout): the unregister
	// sent after its answer cannot overtake it at the registrar.
	u.quitOnce.Do(func() { close(u.quit) })
	<-u.loopDone

	u.mu.Lock()
	live := u.ok && time.Now().Before(u.expiresAt)
	u.mu.Unlock()
	if live {
		ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
		res, err := u.send(ctx, 0)
		cancel()
		switch {
		case err != nil:
			u.log.Debug("unregister failed", "err", err)
		default:
			u.log.Debug("unregistered", "code", res.StatusCode)
		}
	}
	u.mu.Lock()
	u.ok, u.paused = false, false
	u.mu.Unlock()
	_ = u.stack.Close()
	_ = u.conn.Close()
	select {
	case <-u.readDone:
	case <-time.After(closeTimeout):
		u.log.Warn("the SIP socket's reader did not end")
	}
}

// Pause stops refreshing without unregistering: the registrar lets the
// contact expire. A REGISTER in flight is let finish (within Timeout),
// its outcome not reported. What the UA reports (Registered, LastAttempt,
// LastCode) stays as it was at the pause, as on a device whose SIP stack
// hung while its API kept answering, until Stop.
func (u *UA) Pause() {
	u.mu.Lock()
	if !u.started || u.stopped || u.paused {
		u.mu.Unlock()
		return
	}
	u.frozen = u.registeredLocked(time.Now())
	u.paused = true
	u.mu.Unlock()
	u.quitOnce.Do(func() { close(u.quit) })
	<-u.loopDone
}

// Registered tells whether the last REGISTER got a 2xx whose expiry has
// not passed; false before the first answer and after a failed or timed
// out one. A paused UA keeps the value it had.
func (u *UA) Registered() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.paused {
		return u.frozen
	}
	return u.registeredLocked(time.Now())
}

func (u *UA) registeredLocked(now time.Time) bool {
	return u.ok && now.Before(u.expiresAt)
}

// LastAttempt is when the last REGISTER was sent; zero before the first.
func (u *UA) LastAttempt() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastAttempt
}

// LastCode is the final status code of the last REGISTER (after a digest
// answer, that of the answer); 0 before the first and when it got none.
func (u *UA) LastCode() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastCode
}

// Contact is the UA's Contact URI, sip:USER@LOCALIP:PORT; empty before
// Start.
func (u *UA) Contact() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.started {
		return ""
	}
	return u.contact.String()
}

// run registers, then refreshes at half the granted expiry, retrying a
// failure after RetryAfter, until Stop or Pause.
func (u *UA) run() {
	defer close(u.loopDone)
	for {
		select {
		case <-u.quit:
			return
		default:
		}
		wait := u.attempt()
		t := time.NewTimer(wait)
		select {
		case <-u.quit:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// attempt sends one REGISTER, records its outcome and returns the wait
// before the next one.
func (u *UA) attempt() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.Timeout)
	defer cancel()
	sent := time.Now()
	u.mu.Lock()
	if !u.paused {
		u.lastAttempt = sent
	}
	u.mu.Unlock()
	res, err := u.send(ctx, u.opts.Expires)
	code := 0
	if res != nil {
		code = res.StatusCode
	}
	granted := time.Duration(0)
	if err == nil && code >= 200 && code < 300 {
		granted = u.granted(res)
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	if u.paused {
		return 0
	}
	was := u.registeredLocked(time.Now())
	u.lastCode = code
	u.ok = granted > 0
	if u.ok {
		u.expiresAt = sent.Add(granted)
		if !was {
			u.log.Info("registered", "code", code, "expires", granted)
		}
		return granted / 2
	}
	switch {
	case err != nil:
		u.log.Warn("REGISTER failed", "err", err)
	default:
		u.log.Warn("REGISTER refused", "code", code, "reason", res.Reason)
	}
	return u.opts.RetryAfter
}

// send sends a REGISTER asking for expires (0 unregisters the Contact) and
// answers a 401 or 407 with digest once. It returns the final answer.
func (u *UA) send(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	req := u.newRequest(expires)
	res, err := u.client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && u.opts.Password != "" {
		res, err = u.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: u.opts.AuthUser, Password: u.opts.Password})
		if cseq := req.CSeq(); cseq != nil {
			u.cseq = cseq.SeqNo
		}
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// newRequest is the next REGISTER of the registration: same Call-ID and
// From tag, the next CSeq.
func (u *UA) newRequest(expires time.Duration) *sip.Request {
	u.cseq++
	aor := sip.Uri{Scheme: "sip", User: u.opts.User, Host: u.domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: u.domain})
	req.SetTransport("UDP")
	req.SetDestination(u.proxy.String())
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", u.fromTag)
	to := &sip.ToHeader{Address: aor, Params: sip.NewParams()}
	callID := sip.CallIDHeader(u.callID)
	cseq := &sip.CSeqHeader{SeqNo: u.cseq, MethodName: sip.REGISTER}
	maxFwd := sip.MaxForwardsHeader(70)
	exp := sip.ExpiresHeader(uint32((expires + time.Second - 1) / time.Second))
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(&sip.ContactHeader{Address: u.contact})
	req.AppendHeader(&exp)
	req.AppendHeader(sip.NewHeader("User-Agent", u.opts.UserAgent))
	return req
}

// granted is the lifetime the registrar gave the UA's Contact: its expires
// parameter in the answer, else the Expires header, else what was asked.
func (u *UA) granted(res *sip.Response) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.User != u.contact.User || c.Address.Host != u.contact.Host || c.Address.Port != u.contact.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return u.opts.Expires
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
