// Package simulator serves simulated BAS-IP devices over HTTP on loopback,
// for the tests, the benchmarks and --demo. Each device speaks the API the
// exporter relies on (login, token expiry, 401, SIP settings, SIP status,
// /api/info) and can be told to misbehave.
package simulator

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
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
)

// DefaultHugeBodySize is the body FaultHugeBody sends unless told otherwise.
const DefaultHugeBodySize = 64 << 20

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

	// Counters of what the device saw.
	Logins         atomic.Int64 // login requests, accepted or not
	RejectedLogins atomic.Int64
	Requests       atomic.Int64 // all HTTP requests
	Connections    atomic.Int64 // TCP connections accepted
	settingsReqs   atomic.Int64
	statusReqs     atomic.Int64
	infoReqs       atomic.Int64
}

// SetSettings replaces the SIP settings object the device serves.
func (d *Device) SetSettings(s map[string]any) {
	d.mu.Lock()
	d.settings = s
	d.mu.Unlock()
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

// SettingsRequests counts GET device/sip/settings requests.
func (d *Device) SettingsRequests() int64 { return d.settingsReqs.Load() }

// StatusRequests counts GET sip/status requests.
func (d *Device) StatusRequests() int64 { return d.statusReqs.Load() }

// InfoRequests counts GET /api/info requests.
func (d *Device) InfoRequests() int64 { return d.infoReqs.Load() }

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

// ServeHTTP implements http.Handler.
func (d *Device) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.Requests.Add(1)
	d.mu.Lock()
	fault, redirect := d.fault, d.redirectTo
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
	}
	prefix := "/api/" + d.APIVersion
	switch r.URL.Path {
	case "/api/info":
		d.infoReqs.Add(1)
		d.serveObject(w, func() map[string]any { return d.info })
	case prefix + "/login":
		if fault == FaultRawLogin {
			d.Logins.Add(1)
			d.mu.Lock()
			raw := d.rawLogin
			d.mu.Unlock()
			writeBody(w, http.StatusOK, raw)
			return
		}
		d.login(w, r)
	case prefix + "/device/sip/settings":
		d.settingsReqs.Add(1)
		if d.authorized(w, r) {
			d.serveSettings(w, r, fault)
		}
	case prefix + "/sip/status":
		d.statusReqs.Add(1)
		if d.authorized(w, r) {
			d.serveObject(w, func() map[string]any { return d.status })
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "Not found"})
	}
}

func (d *Device) login(w http.ResponseWriter, r *http.Request) {
	d.Logins.Add(1)
	q := r.URL.Query()
	user, hash := q.Get("username"), q.Get("password")
	if user == "" || hash == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Required parameters missed"})
		return
	}
	d.mu.Lock()
	sum := md5.Sum([]byte(d.Password))
	ok := user == d.Username && strings.EqualFold(hash, hex.EncodeToString(sum[:]))
	var token string
	if ok {
		token = newToken()
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
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Wrong login or password"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "account_type": "admin"})
}

func (d *Device) authorized(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	d.mu.Lock()
	exp, known := d.tokens[token]
	if known && time.Now().After(exp) {
		delete(d.tokens, token)
		known = false
	}
	unauthorized := d.fault == FaultUnauthorized
	d.mu.Unlock()
	if !ok || !known || unauthorized {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Log In"})
		return false
	}
	return true
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

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
