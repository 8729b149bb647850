// Package simulator serves simulated BAS-IP devices over HTTP on loopback,
// for the tests, the benchmarks and --demo. Each device speaks the API the
// exporter relies on (login, token expiry, 401, SIP settings, SIP status,
// /api/info) and can be told to misbehave.
package simulator

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault makes a device misbehave.
type Fault int

// The faults a device can show.
const (
	FaultNone Fault = iota
	// FaultHang accepts the request and never answers.
	FaultHang
	// FaultServerError answers 500 to every request.
	FaultServerError
	// FaultUnauthorized accepts logins but answers 401 to every API call.
	FaultUnauthorized
	// FaultRawSettings answers the settings request with RawSettings as is.
	FaultRawSettings
	// FaultRedirect answers every request with a redirect to RedirectTo.
	FaultRedirect
	// FaultTrickle sends the settings body one byte per TrickleDelay.
	FaultTrickle
	// FaultCloseMidBody announces a longer body than it sends, then closes.
	FaultCloseMidBody
	// FaultTrickleHeaders accepts logins, then writes the status line and
	// headers of the settings answer one byte per TrickleDelay on the raw
	// connection.
	FaultTrickleHeaders
	// FaultHugeBody accepts logins, then answers the settings request with
	// HugeBodySize bytes (64 MiB by default), streamed without holding them
	// in memory.
	FaultHugeBody
	// FaultRedirectSettings accepts logins, then redirects the settings
	// request (which carries the token) to RedirectTo.
	FaultRedirectSettings
	// FaultRawLogin answers the login with RawLogin as is, status 200.
	FaultRawLogin
	// FaultEarlyHints sends an informational "103 Early Hints" answer with
	// a Link header before the real answer to every request.
	FaultEarlyHints
	// FaultUnsolicited answers every request, then writes a second,
	// complete HTTP answer nobody asked for (status 200, the body set with
	// SetUnsolicited) on the same connection, and keeps the connection
	// open for the linger time (SetLinger): a client that sends its next
	// request on it reads the unsolicited answer as the reply.
	FaultUnsolicited
	// FaultCloseAfterResponse answers every request with "Connection:
	// close", then, instead of closing, sends the trailing bytes
	// (SetTrailing) and keeps the socket open for the linger time
	// (SetLinger) before closing it.
	FaultCloseAfterResponse
)

// DefaultHugeBodySize is the body FaultHugeBody sends unless told otherwise.
const DefaultHugeBodySize = 64 << 20

// Defaults of the transport faults.
const (
	// DefaultLinger is how long FaultUnsolicited and FaultCloseAfterResponse
	// keep a connection open after their answer.
	DefaultLinger = time.Second
	// EarlyHintsLink is the Link header of the FaultEarlyHints 103 answer.
	EarlyHintsLink = "</static/app.css>; rel=preload; as=style"
	// DefaultUnsolicitedBody is the body of the FaultUnsolicited extra
	// answer: settings that no device of the tests has.
	DefaultUnsolicitedBody = `{"proxy":"sip:unsolicited.invalid","realm":"unsolicited.invalid","user":"unsolicited","password":"WebPass","transport":"udp","user_id":"unsolicited","registration_interval":30}`
	// DefaultTrailing is what FaultCloseAfterResponse sends after an
	// answer that announced "Connection: close".
	DefaultTrailing = "junk after Connection: close\r\n"
)

// AuthMode is how a device authenticates API requests.
type AuthMode int

// The ways a device authenticates.
const (
	// AuthToken (the default): GET login with the MD5 of the password,
	// then "Authorization: Bearer TOKEN" on every API request.
	AuthToken AuthMode = iota
	// AuthBasic: "Authorization: Basic base64(user:password)", the password
	// in clear, on every API request. The login path answers 404, as on a
	// device that has none.
	AuthBasic
	// AuthBoth accepts a Bearer token or Basic credentials.
	AuthBoth
)

// MD5Case is the case of the hex MD5 a device's login accepts.
type MD5Case int

// The MD5 cases a login accepts.
const (
	// MD5Any (the default) accepts upper and lower case.
	MD5Any MD5Case = iota
	// MD5Upper accepts upper case only (E10ADC...).
	MD5Upper
	// MD5Lower accepts lower case only (e10adc...).
	MD5Lower
)

// UnauthorizedBody is the shape of a device's 401 body.
type UnauthorizedBody int

// The 401 bodies.
const (
	// UnauthorizedLogIn (the default) is the v1 panels' {"error":"Log In"}.
	UnauthorizedLogIn UnauthorizedBody = iota
	// UnauthorizedCamdroid is the Camdroid monitors'
	// {"error":{"code":"invalid_authentication","message":"Invalid authentication"}}.
	UnauthorizedCamdroid
)

// TokenStyle is how a device's login tokens look.
type TokenStyle int

// The token styles.
const (
	// TokenHex (the default) is 32 hex digits.
	TokenHex TokenStyle = iota
	// TokenUUID is a random UUID, xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx, as
	// on Camdroid devices.
	TokenUUID
	// TokenJWT is shaped like a JSON Web Token: header.claims.signature,
	// each base64url.
	TokenJWT
)

// ForeignAnswer is how a device answers a request under an API prefix
// (/api/vN/...) other than its own, as a device's web server may.
type ForeignAnswer int

// The answers under another family's prefix.
const (
	// ForeignNotFound (the default) answers 404.
	ForeignNotFound ForeignAnswer = iota
	// ForeignHTML answers 200 with the web interface's HTML page.
	ForeignHTML
	// ForeignUnauthorized answers 401, as to a request without a token.
	ForeignUnauthorized
	// ForeignForbidden answers 403.
	ForeignForbidden
	// ForeignMethodNotAllowed answers 405.
	ForeignMethodNotAllowed
	// ForeignRedirect answers 302 to the device's own prefix, same path.
	ForeignRedirect
	// ForeignHang accepts the request and never answers.
	ForeignHang
	// ForeignServerError answers 500.
	ForeignServerError
)

// WebPage is the HTML a device with ForeignHTML answers.
const WebPage = "<!DOCTYPE html><html><head><title>Web interface</title></head><body>Log in</body></html>"

// CredentialEcho is what a device quotes of the credentials it was sent when it
// refuses them, as some web servers do in their error pages.
type CredentialEcho int

// The echoes.
const (
	// EchoNone (the default) quotes nothing.
	EchoNone CredentialEcho = iota
	// EchoAuthorization makes the error of a 401 the Authorization header
	// as received ("Basic YWRtaW46...").
	EchoAuthorization
	// EchoCredentials makes a refusal name what was received: the plain
	// password of Basic credentials, the token, or the login's MD5.
	EchoCredentials
)

// Device is one simulated intercom. Set its fields before serving it; use
// the setters to change it while it serves.
type Device struct {
	Username   string
	Password   string
	APIVersion string // "v0" or "v1"
	// TokenTTL is how long a token is accepted; 2h when zero.
	TokenTTL time.Duration
	// Latency delays every answer.
	Latency time.Duration
	// Auth is how API requests authenticate: AuthToken by default.
	Auth AuthMode
	// MD5Case is the case of the hex MD5 the login accepts: any by default.
	// A login in the other case is answered 400, as a wrong password.
	MD5Case MD5Case
	// UnauthorizedBody is the body of 401 answers: {"error":"Log In"} by
	// default.
	UnauthorizedBody UnauthorizedBody
	// TokenStyle is how tokens look: hex by default.
	TokenStyle TokenStyle
	// OneUseTokens makes a token good for one API request only: the next
	// request with it is answered 401, forcing a new login.
	OneUseTokens bool
	// RecordRequests keeps the path and Authorization scheme of every
	// request, for RequestLog.
	RecordRequests bool
	// Foreign is how requests under another API family's prefix are
	// answered: 404 by default.
	Foreign ForeignAnswer
	// Echo is what a refusal quotes of the credentials sent: nothing by
	// default.
	Echo CredentialEcho

	mu           sync.Mutex
	settings     map[string]any
	status       map[string]any
	info         map[string]any
	fault        Fault
	raw          []byte
	redirectTo   string
	trickleDelay time.Duration
	hugeSize     int64
	hugeChunked  bool
	rawLogin     []byte
	tokens       map[string]time.Time
	issued       []string
	linger       time.Duration
	unsolicited  []byte
	unsolDelay   time.Duration
	trailing     []byte
	log          []LoggedRequest
	sip          *sipState  // RegisterSIP's registration; nil when off
	sipMu        sync.Mutex // serializes the registration's starts and stops

	// Counters of what the device saw.
	Logins         atomic.Int64 // login requests, accepted or not
	RejectedLogins atomic.Int64
	Requests       atomic.Int64 // all HTTP requests
	Connections    atomic.Int64 // TCP connections accepted
	settingsReqs   atomic.Int64
	statusReqs     atomic.Int64
	infoReqs       atomic.Int64
	basicRejected  atomic.Int64
	inFlight       atomic.Int64
	maxInFlight    atomic.Int64
	openConns      atomic.Int64
}

// SetSettings replaces the SIP settings object the device serves. With
// RegisterSIP, a new account or proxy starts the registration again.
func (d *Device) SetSettings(s map[string]any) {
	d.mu.Lock()
	d.settings = s
	registering := d.sip != nil
	d.mu.Unlock()
	if registering {
		d.syncSIP()
	}
}

// Settings returns a copy of the SIP settings object the device serves, to
// change and set back with SetSettings.
func (d *Device) Settings() map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]any, len(d.settings))
	for k, v := range d.settings {
		out[k] = v
	}
	return out
}

// SetStatus replaces the SIP status object; nil makes the endpoint 404.
func (d *Device) SetStatus(s map[string]any) {
	d.mu.Lock()
	d.status = s
	d.mu.Unlock()
}

// SetInfo replaces the /api/info object; nil makes the endpoint 404.
func (d *Device) SetInfo(s map[string]any) {
	d.mu.Lock()
	d.info = s
	d.mu.Unlock()
}

// SetFault makes the device misbehave (FaultNone to stop).
func (d *Device) SetFault(f Fault) {
	d.mu.Lock()
	d.fault = f
	d.mu.Unlock()
}

// SetRawSettings sets the body FaultRawSettings serves.
func (d *Device) SetRawSettings(b []byte) {
	d.mu.Lock()
	d.raw = b
	d.mu.Unlock()
}

// SetRedirect sets where FaultRedirect points.
func (d *Device) SetRedirect(url string) {
	d.mu.Lock()
	d.redirectTo = url
	d.mu.Unlock()
}

// SetTrickleDelay sets the pause between bytes for FaultTrickle.
func (d *Device) SetTrickleDelay(t time.Duration) {
	d.mu.Lock()
	d.trickleDelay = t
	d.mu.Unlock()
}

// SetHugeBody sets the size of the FaultHugeBody answer and whether it is
// sent chunked (no Content-Length) instead of with a Content-Length.
func (d *Device) SetHugeBody(size int64, chunked bool) {
	d.mu.Lock()
	d.hugeSize, d.hugeChunked = size, chunked
	d.mu.Unlock()
}

// SetRawLogin sets the body FaultRawLogin serves.
func (d *Device) SetRawLogin(b []byte) {
	d.mu.Lock()
	d.rawLogin = b
	d.mu.Unlock()
}

// SetPassword changes the password the device accepts and forgets every
// token it issued.
func (d *Device) SetPassword(p string) {
	d.mu.Lock()
	d.Password = p
	d.tokens = nil
	d.mu.Unlock()
}

// ExpireTokens forgets every token, as a reboot or expiry would.
func (d *Device) ExpireTokens() {
	d.mu.Lock()
	d.tokens = nil
	d.mu.Unlock()
}

// SetAPIVersion changes the path prefix the device answers under ("v0",
// "v1"), as a firmware upgrade that moves it to another API family would;
// paths under any other prefix answer 404. Tokens survive: call
// ExpireTokens too for the reboot of a real upgrade.
func (d *Device) SetAPIVersion(v string) {
	d.mu.Lock()
	d.APIVersion = v
	d.mu.Unlock()
}

// CurrentAPIVersion is the path prefix the device answers under now.
func (d *Device) CurrentAPIVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.APIVersion
}

// SetAuth changes how API requests authenticate while the device serves.
func (d *Device) SetAuth(m AuthMode) {
	d.mu.Lock()
	d.Auth = m
	d.mu.Unlock()
}

// SetLinger sets how long FaultUnsolicited and FaultCloseAfterResponse keep
// a connection open after their answer: DefaultLinger when zero, not at
// all when negative. The client hanging up or the server closing ends it
// sooner.
func (d *Device) SetLinger(t time.Duration) {
	d.mu.Lock()
	d.linger = t
	d.mu.Unlock()
}

// SetUnsolicited sets the body of the FaultUnsolicited extra answer
// (DefaultUnsolicitedBody when nil) and the pause between the real answer
// and it (none when zero: both go out in one write).
func (d *Device) SetUnsolicited(body []byte, delay time.Duration) {
	d.mu.Lock()
	d.unsolicited, d.unsolDelay = body, delay
	d.mu.Unlock()
}

// SetTrailing sets the bytes FaultCloseAfterResponse sends after its
// answer: DefaultTrailing when nil, nothing when empty.
func (d *Device) SetTrailing(b []byte) {
	d.mu.Lock()
	d.trailing = b
	d.mu.Unlock()
}

// SetForeign changes how requests under another API family's prefix are
// answered.
func (d *Device) SetForeign(a ForeignAnswer) {
	d.mu.Lock()
	d.Foreign = a
	d.mu.Unlock()
}

// SettingsRequests counts GET device/sip/settings requests.
func (d *Device) SettingsRequests() int64 { return d.settingsReqs.Load() }

// StatusRequests counts GET sip/status requests.
func (d *Device) StatusRequests() int64 { return d.statusReqs.Load() }

// InfoRequests counts GET /api/info requests.
func (d *Device) InfoRequests() int64 { return d.infoReqs.Load() }

// RejectedBasicAuth counts API requests that carried wrong Basic
// credentials (AuthBasic and AuthBoth).
func (d *Device) RejectedBasicAuth() int64 { return d.basicRejected.Load() }

// InFlight is the number of requests the device is serving now, on every
// endpoint together (a hanging or lingering one included until it ends).
func (d *Device) InFlight() int64 { return d.inFlight.Load() }

// MaxInFlight is the most requests the device was serving at one moment,
// on every endpoint together, since it started or since ResetCounters.
func (d *Device) MaxInFlight() int64 { return d.maxInFlight.Load() }

// OpenConnections is the number of TCP connections to the device open now,
// for a device served by Serve, ServeTLS or ServeTLSWith. A connection a
// fault took over counts until the fault closes it.
func (d *Device) OpenConnections() int64 { return d.openConns.Load() }

// ResetCounters zeroes the request, login and connection counters, and
// sets MaxInFlight to the requests in flight now. InFlight and
// OpenConnections are states, not counters: they stay.
func (d *Device) ResetCounters() {
	d.Logins.Store(0)
	d.RejectedLogins.Store(0)
	d.Requests.Store(0)
	d.Connections.Store(0)
	d.settingsReqs.Store(0)
	d.statusReqs.Store(0)
	d.infoReqs.Store(0)
	d.basicRejected.Store(0)
	d.maxInFlight.Store(d.inFlight.Load())
}

// Tokens returns the tokens the device currently accepts.
func (d *Device) Tokens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.tokens))
	for t := range d.tokens {
		out = append(out, t)
	}
	return out
}

// IssuedTokens returns every token the device ever issued, expired and
// forgotten ones included.
func (d *Device) IssuedTokens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.issued...)
}

// LoggedRequest is a request a device with RecordRequests saw.
type LoggedRequest struct {
	Path string
	// Auth is the scheme of the Authorization header ("Basic", "Bearer"),
	// empty when the request had none.
	Auth string
	// Query tells whether the request had a query string.
	Query bool
}

// RequestLog returns the requests seen while RecordRequests was set.
func (d *Device) RequestLog() []LoggedRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]LoggedRequest(nil), d.log...)
}

// ServeHTTP implements http.Handler.
func (d *Device) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.Requests.Add(1)
	if d.RecordRequests {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		d.mu.Lock()
		d.log = append(d.log, LoggedRequest{Path: r.URL.Path, Auth: scheme, Query: r.URL.RawQuery != ""})
		d.mu.Unlock()
	}
	fl := d.enter()
	defer fl.leave()
	d.mu.Lock()
	fault, redirect, prefix := d.fault, d.redirectTo, "/api/"+d.APIVersion
	d.mu.Unlock()
	if d.Latency > 0 {
		select {
		case <-time.After(d.Latency):
		case <-r.Context().Done():
			return
		}
	}
	switch fault {
	case FaultHang:
		<-r.Context().Done()
		return
	case FaultServerError:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal error"})
		return
	case FaultRedirect:
		http.Redirect(w, r, redirect+r.URL.RequestURI(), http.StatusFound)
		return
	case FaultEarlyHints:
		w.Header().Set("Link", EarlyHintsLink)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
	case FaultUnsolicited, FaultCloseAfterResponse:
		d.serveHijacked(w, r, fault, prefix, fl.leave)
		return
	}
	d.route(w, r, fault, prefix)
}

// route answers r as the device's API does under prefix.
func (d *Device) route(w http.ResponseWriter, r *http.Request, fault Fault, prefix string) {
	switch r.URL.Path {
	case "/api/info":
		d.infoReqs.Add(1)
		d.serveObject(w, func() map[string]any { return d.info })
	case prefix + "/login":
		d.Logins.Add(1)
		d.mu.Lock()
		auth, raw := d.Auth, d.rawLogin
		d.mu.Unlock()
		switch {
		case auth == AuthBasic:
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not found"})
		case fault == FaultRawLogin:
			writeBody(w, http.StatusOK, raw)
		default:
			d.login(w, r)
		}
	case prefix + "/device/sip/settings":
		d.settingsReqs.Add(1)
		if d.authorized(w, r) {
			d.serveSettings(w, r, fault)
		}
	case prefix + "/sip/status":
		d.statusReqs.Add(1)
		if d.authorized(w, r) {
			d.serveObject(w, d.sipStatus)
		}
	default:
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v"); ok && strings.Contains(rest, "/") {
			d.foreign(w, r, prefix)
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not found"})
	}
}

// foreign answers a request under another API family's prefix.
func (d *Device) foreign(w http.ResponseWriter, r *http.Request, prefix string) {
	d.mu.Lock()
	answer := d.Foreign
	d.mu.Unlock()
	switch answer {
	case ForeignHTML:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(WebPage))
	case ForeignUnauthorized:
		writeUnauthorized(w, d.UnauthorizedBody)
	case ForeignForbidden:
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "Forbidden"})
	case ForeignMethodNotAllowed:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "Method not allowed"})
	case ForeignRedirect:
		_, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
		http.Redirect(w, r, prefix+"/"+rest, http.StatusFound)
	case ForeignHang:
		<-r.Context().Done()
	case ForeignServerError:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal error"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not found"})
	}
}

// flight is one request in flight; leave may be called more than once.
type flight struct {
	d    *Device
	once sync.Once
}

func (d *Device) enter() *flight {
	n := d.inFlight.Add(1)
	for {
		m := d.maxInFlight.Load()
		if n <= m || d.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return &flight{d: d}
}

func (f *flight) leave() { f.once.Do(func() { f.d.inFlight.Add(-1) }) }

func (d *Device) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, hash := q.Get("username"), q.Get("password")
	if user == "" || hash == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Required parameters missed"})
		return
	}
	d.mu.Lock()
	ok := user == d.Username && d.hashMatches(hash)
	var token string
	if ok {
		token = newToken(d.TokenStyle)
		if d.tokens == nil {
			d.tokens = map[string]time.Time{}
		}
		ttl := d.TokenTTL
		if ttl == 0 {
			ttl = 2 * time.Hour
		}
		d.tokens[token] = time.Now().Add(ttl)
		d.issued = append(d.issued, token)
	}
	d.mu.Unlock()
	if !ok {
		d.RejectedLogins.Add(1)
		msg := "Wrong login or password"
		if d.Echo == EchoCredentials {
			msg = "Wrong password hash " + hash
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "account_type": "admin"})
}

// hashMatches tells whether hash is the hex MD5 of the password in a case
// the device accepts. d.mu must be held.
func (d *Device) hashMatches(hash string) bool {
	sum := md5.Sum([]byte(d.Password))
	lower := hex.EncodeToString(sum[:])
	switch d.MD5Case {
	case MD5Upper:
		return hash == strings.ToUpper(lower)
	case MD5Lower:
		return hash == lower
	default:
		return strings.EqualFold(hash, lower)
	}
}

// authorized checks the request's credentials as the device's Auth mode
// wants, and answers 401 when they do not do.
func (d *Device) authorized(w http.ResponseWriter, r *http.Request) bool {
	authz := r.Header.Get("Authorization")
	d.mu.Lock()
	mode, shape := d.Auth, d.UnauthorizedBody
	ok, badBasic := false, false
	if d.fault != FaultUnauthorized {
		if token, bearer := strings.CutPrefix(authz, "Bearer "); bearer && mode != AuthBasic {
			exp, known := d.tokens[token]
			if known && time.Now().After(exp) {
				delete(d.tokens, token)
				known = false
			}
			if known && d.OneUseTokens {
				delete(d.tokens, token)
			}
			ok = known
		}
		if user, pass, basic := r.BasicAuth(); basic && !ok && mode != AuthToken {
			ok = user == d.Username && pass == d.Password
			badBasic = !ok
		}
	}
	d.mu.Unlock()
	if badBasic {
		d.basicRejected.Add(1)
	}
	switch {
	case ok:
	case d.Echo == EchoAuthorization:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": authz})
	case d.Echo == EchoCredentials:
		msg := "Unknown token " + strings.TrimPrefix(authz, "Bearer ")
		if _, pass, basic := r.BasicAuth(); basic {
			msg = "Wrong password " + pass
		}
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": msg})
	default:
		writeUnauthorized(w, shape)
	}
	return ok
}

func writeUnauthorized(w http.ResponseWriter, shape UnauthorizedBody) {
	if shape == UnauthorizedCamdroid {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
			"code": "invalid_authentication", "message": "Invalid authentication"}})
		return
	}
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Log In"})
}

func (d *Device) serveObject(w http.ResponseWriter, get func() map[string]any) {
	d.mu.Lock()
	obj := get()
	var body []byte
	if obj != nil {
		body, _ = json.Marshal(obj)
	}
	d.mu.Unlock()
	if obj == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not found"})
		return
	}
	writeBody(w, http.StatusOK, body)
}

func (d *Device) serveSettings(w http.ResponseWriter, r *http.Request, fault Fault) {
	d.mu.Lock()
	body, _ := json.Marshal(d.settings)
	raw, delay, redirect := d.raw, d.trickleDelay, d.redirectTo
	hugeSize, hugeChunked := d.hugeSize, d.hugeChunked
	d.mu.Unlock()
	switch fault {
	case FaultRedirectSettings:
		http.Redirect(w, r, redirect+r.URL.RequestURI(), http.StatusFound)
	case FaultHugeBody:
		serveHuge(w, r, hugeSize, hugeChunked)
	case FaultTrickleHeaders:
		trickleHeaders(w, r, body, delay)
	case FaultRawSettings:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(raw)
	case FaultTrickle:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	case FaultCloseMidBody:
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	default:
		writeBody(w, http.StatusOK, body)
	}
}

// serveHuge streams size bytes of JSON-looking filler from one small buffer.
func serveHuge(w http.ResponseWriter, r *http.Request, size int64, chunked bool) {
	if size <= 0 {
		size = DefaultHugeBodySize
	}
	w.Header().Set("Content-Type", "application/json")
	if !chunked {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	chunk := bytes.Repeat([]byte(`{"proxy":"sip:x","user":"1"},`), 1024)
	for size > 0 {
		if r.Context().Err() != nil {
			return
		}
		n := min(int64(len(chunk)), size)
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		size -= n
	}
}

// trickleHeaders takes over the connection and writes a complete HTTP
// answer, status line and headers one byte per delay, then the body. It
// stops when the client goes away or the server closes.
func trickleHeaders(w http.ResponseWriter, r *http.Request, body []byte, delay time.Duration) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: %s\r\nContent-Length: %d\r\n\r\n",
		strings.Repeat("x", 64), len(body))
	for i := 0; i < len(head); i++ {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			return
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	_, _ = conn.Write(body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	writeBody(w, code, b)
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func newToken(style TokenStyle) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	if style == TokenJWT {
		enc := base64.RawURLEncoding
		return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + enc.EncodeToString([]byte(`{"sub":"admin","jti":"`+hex.EncodeToString(b[:8])+`"}`)) +
			"." + enc.EncodeToString(b)
	}
	if style == TokenUUID {
		b[6] = b[6]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	return hex.EncodeToString(b)
}
