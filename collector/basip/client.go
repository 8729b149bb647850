// Package basip is a client for the HTTP API of BAS-IP intercoms: it
// authenticates (a login and a cached token, or HTTP Basic on every
// request), finds the device's API family when asked to, and reads the SIP
// settings, status and device info. It knows nothing about Prometheus.
package basip

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// Login back-off after the device rejects the credentials: no login is tried
// for loginBackoffMin, doubling up to loginBackoffMax.
const (
	loginBackoffMin = time.Minute
	loginBackoffMax = time.Hour
)

// Options configure a Client.
type Options struct {
	// BaseURL is scheme://host:port of the device.
	BaseURL *url.URL
	// APIVersion is "v0" or "v1": the path prefix /api/v0 or /api/v1; or
	// AutoAPIVersion: found by the first request (see Client.family).
	APIVersion string
	Username   string
	Password   string
	// Basic sends "Authorization: Basic" with the plain password on every
	// request instead of logging in for a token.
	Basic bool
	// LowerMD5 sends the login's password MD5 in lower-case hex; the
	// vendor documents upper case.
	LowerMD5 bool
	// TLSConfig is used for https; it may be shared by many clients and is
	// not modified. nil verifies against the system's roots.
	TLSConfig *tls.Config
	// IdleTimeout closes the kept-alive connection after this long unused;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// AutoAPIVersion as Options.APIVersion finds the device's API family.
const AutoAPIVersion = "auto"

// Families are the API families, in the order they are probed: panels,
// the majority, first.
var Families = []string{"v1", "v0"}

// DefaultIdleTimeout is how long a device's connection is kept unused.
const DefaultIdleTimeout = devhttp.DefaultIdleTimeout

// Client talks to one device over at most one connection, kept alive
// between calls. It is safe for concurrent use; its requests go one at a
// time.
type Client struct {
	auto     bool
	username string
	passMD5  string
	basic    string // the Authorization header in Basic mode, else empty
	conn     *devhttp.Conn
	now      func() time.Time

	loginMu  sync.Mutex // one login at a time per device
	detectMu sync.Mutex // one detection of the API family at a time

	// secrets are the credentials in every form the client sends them
	// (see secretForms), redacted by value from its errors.
	secrets []string

	mu           sync.Mutex
	tokens       []string        // the last tokens issued, newest last, also redacted by value
	prefix       string          // "/api/v1"; empty while the family is unknown
	worked       map[string]bool // paths (after the prefix) answered under prefix
	failures     int             // requests failed in a row under a found prefix
	token        string
	backoff      time.Duration
	blockedUntil time.Time
}

var _ device.Client = (*Client)(nil)

// New returns a Client for one device. Close it when the device leaves the
// configuration.
func New(o Options) *Client {
	sum := md5.Sum([]byte(o.Password))
	passMD5 := hex.EncodeToString(sum[:])
	if !o.LowerMD5 {
		passMD5 = strings.ToUpper(passMD5)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{
		auto:     o.APIVersion == AutoAPIVersion,
		username: o.Username,
		passMD5:  passMD5,
		now:      now,
	}
	c.conn = devhttp.New(devhttp.Options{BaseURL: o.BaseURL, TLSConfig: o.TLSConfig, IdleTimeout: o.IdleTimeout, NoRedirect: isLoginPath,
		Secrets: c.secretValues})
	if !c.auto {
		c.prefix = "/api/" + o.APIVersion
	}
	if o.Basic {
		c.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password))
	}
	c.secrets = devhttp.SecretForms(o.Username, o.Password)
	return c
}

// maxTokensKept is how many of the last tokens issued are redacted by
// value: a device may quote an old one.
const maxTokensKept = 4

// secretValues are the client's secrets and the last tokens it was
// issued, for device.RedactValues.
func (c *Client) secretValues() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(slices.Clip(c.secrets), c.tokens...)
}

// redactErr redacts the client's secrets, by value and by shape, from an
// error it returns.
func (c *Client) redactErr(err error) error {
	var e *device.Error
	if err == nil || !errors.As(err, &e) || e != err {
		return err
	}
	return devhttp.Redact(e, c.secretValues())
}

// authError is a refusal by the device (see devhttp.AuthError), its
// reason redacted of the client's secrets.
func (c *Client) authError(op string, code int, format string, body []byte) *device.Error {
	return devhttp.AuthError(op, code, format, body, c.secretValues())
}

// statusText is devhttp.StatusText with the client's secrets.
func (c *Client) statusText(code int, body []byte) string {
	return devhttp.StatusText(code, body, c.secretValues())
}

// APIVersion is the API family the client uses ("v0", "v1"), or empty
// while it is unknown: a client with AutoAPIVersion has not found it yet.
func (c *Client) APIVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimPrefix(c.prefix, "/api/")
}

// Close closes the kept-alive connection: at once if it is idle, or as
// soon as the request it carries is answered. The Client stays usable: the
// next request opens a new connection.
func (c *Client) Close() { c.conn.Close() }

// isLoginPath reports whether path is the login of an API family: its
// query carries the password hash, so it is never redirected.
func isLoginPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/")
	return ok && strings.HasSuffix(rest, "/login")
}

// SIPSettings reads the device's SIP settings, logging in first when no
// token is cached and once more when the cached token is refused.
func (c *Client) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	var s *device.SIPSettings
	err := c.authorizedGet(ctx, "/device/sip/settings", &res, func(body []byte) (err error) {
		s, err = DecodeSIPSettings(body)
		return err
	})
	if err != nil {
		return nil, res, c.redactErr(err)
	}
	return s, res, nil
}

// authorizedGet sends an authorized GET of path under the device's API
// prefix; op names the request for errors. With AutoAPIVersion, a 404 to
// a path that answered before under the same prefix (or to the login)
// means the device moved to another API family, say by a firmware
// upgrade: the family is found again and the request repeated once.
// decode reads the answer; its error is a device.ReasonDecode error.
func (c *Client) authorizedGet(ctx context.Context, path string, res *device.Result, decode func([]byte) error) error {
	prefix, err := c.family(ctx, res)
	if err != nil {
		return err
	}
	body, err := c.authorizedGetAt(ctx, prefix+path, res)
	if c.auto && isNotFound(err) && c.forget(prefix, path, err) {
		if prefix, err = c.family(ctx, res); err != nil {
			return err
		}
		body, err = c.authorizedGetAt(ctx, prefix+path, res)
	}
	if err == nil {
		if derr := decode(body); derr != nil {
			err = &device.Error{Reason: device.ReasonDecode, Op: "GET " + prefix + path, Err: derr}
		}
	}
	if err == nil {
		c.mu.Lock()
		if c.prefix == prefix {
			if c.worked == nil {
				c.worked = map[string]bool{}
			}
			c.worked[path] = true
			c.failures = 0
		}
		c.mu.Unlock()
	} else if c.auto && suspectsFamily(err) {
		c.failed(prefix)
	}
	return err
}

// familyFailures is how many requests in a row may fail under a found API
// family, in ways that say the family may be wrong, before it is found
// again.
const familyFailures = 3

// suspectsFamily reports whether err says the request may have gone to
// the wrong API family: the device answered, but not as the API does (a
// body that does not decode, a redirect, 400, 403, 405). A 404 is handled
// by forget; no answer, a 5xx or a rejection of the credentials says
// nothing about the family.
func suspectsFamily(err error) bool {
	var e *device.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Reason {
	case device.ReasonDecode:
		return true
	case device.ReasonHTTPStatus:
		return e.Status >= 300 && e.Status < 500 && e.Status != http.StatusNotFound
	}
	return false
}

// dropFamily drops the API family prefix, with its token and the paths
// known to work under it: it is to be found again.
func (c *Client) dropFamily(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prefix == prefix {
		c.prefix, c.worked, c.token, c.failures = "", nil, "", 0
	}
}

// failed counts a failure under prefix; at familyFailures in a row the
// family, its token and the paths known to work under it are dropped, to
// be found again.
func (c *Client) failed(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prefix != prefix {
		return
	}
	if c.failures++; c.failures >= familyFailures {
		c.prefix, c.worked, c.token, c.failures = "", nil, "", 0
	}
}

func isNotFound(err error) bool {
	var e *device.Error
	return errors.As(err, &e) && e.Reason == device.ReasonHTTPStatus && e.Status == http.StatusNotFound
}

// forget drops the API family prefix, with the token and the paths known
// to work under it, when path answered there before or err is the
// login's: the family is to be found again. It reports whether it did.
func (c *Client) forget(prefix, path string, err error) bool {
	var e *device.Error
	login := errors.As(err, &e) && e.Op == "GET "+prefix+"/login"
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prefix != prefix || (!c.worked[path] && !login) {
		return false
	}
	c.prefix, c.worked, c.token = "", nil, ""
	return true
}

// family returns the API prefix, finding it first when it is unknown.
//
// Detection costs at most one request per family, neither retried nor
// redirected, and sends no credential. A family is taken only on the
// answer that proves it: with a token, 400 to GET of its login path
// without parameters ("Required parameters missed"); with Basic, 401 to
// GET of its settings path without credentials. Anything else (404, a
// page of HTML with 200, 401 or 403 or 405 to the login, a redirect, no
// answer in time, a 5xx) proves nothing, and the next family is tried, so
// no login is sent to a family that is not confirmed. /api/info does not
// tell the prefix. Families are tried in the order of Families, each
// within a share of the time left, so one that hangs leaves time for the
// next. When none is confirmed the family stays unknown, and the next
// call tries again.
func (c *Client) family(ctx context.Context, res *device.Result) (string, error) {
	if p := c.currentPrefix(); p != "" {
		return p, nil
	}
	c.detectMu.Lock()
	defer c.detectMu.Unlock()
	if p := c.currentPrefix(); p != "" {
		return p, nil
	}
	probe, proof := "/login", http.StatusBadRequest
	if c.basic != "" {
		probe, proof = "/device/sip/settings", http.StatusUnauthorized
	}
	answers := make([]string, 0, len(Families))
	var lastErr *device.Error
	notFound, transportOnly := 0, true
	for i, v := range Families {
		path := "/api/" + v + probe
		code, err := c.probe(ctx, path, len(Families)-i, res)
		switch {
		case code == proof && err == nil:
			c.mu.Lock()
			c.prefix, c.worked, c.failures = "/api/"+v, nil, 0
			c.mu.Unlock()
			return "/api/" + v, nil
		case err != nil:
			answers, lastErr = append(answers, fmt.Sprintf("%s: %s", path, err.Err)), err
			continue
		case code == http.StatusNotFound:
			notFound++
		}
		answers, transportOnly = append(answers, fmt.Sprintf("%s: HTTP %d", path, code)), false
	}
	if notFound == len(Families) {
		hint := ""
		if c.basic == "" {
			hint = "; a device that has no login path may want HTTP Basic auth"
		}
		return "", &device.Error{Reason: device.ReasonHTTPStatus, Op: "detect API family",
			Err: fmt.Errorf("GET %s answered 404 under every family (%s)%s", probe, strings.Join(Families, ", "), hint)}
	}
	reason := device.ReasonHTTPStatus
	if transportOnly && lastErr != nil { // the device did not answer: say how
		reason = lastErr.Reason
	}
	return "", &device.Error{Reason: reason, Op: "detect API family",
		Err: fmt.Errorf("no family answered GET %s without credentials with HTTP %d (%s)", probe, proof, strings.Join(answers, "; "))}
}

// probe sends one detection request: without credentials, retries or
// redirects, within 1/(left+1) of the time the context leaves, left being
// the families still to probe, this one included.
func (c *Client) probe(ctx context.Context, path string, left int, res *device.Result) (int, *device.Error) {
	ctx = devhttp.WithProbe(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(d)/time.Duration(left+1))
		defer cancel()
	}
	code, _, err := c.get(ctx, path, "", res)
	if err != nil {
		var e *device.Error
		if errors.As(err, &e) {
			return code, e
		}
		return code, &device.Error{Reason: device.ReasonConnection, Op: "GET " + path, Err: err}
	}
	return code, nil
}

func (c *Client) currentPrefix() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prefix
}

// authorizedGetAt sends an authorized GET of the full path. A 401 to a
// cached token means the token expired: reauthorize logs in again and
// repeats the request once. In Basic mode a 401 is a rejection of the
// credentials, and backs off as a rejected login does.
func (c *Client) authorizedGetAt(ctx context.Context, path string, res *device.Result) ([]byte, error) {
	if c.basic != "" {
		return c.basicGet(ctx, path, res)
	}
	token, fresh, err := c.ensureToken(ctx, res)
	if err != nil {
		return nil, err
	}
	code, body, err := c.get(ctx, path, "Bearer "+token, res)
	if err != nil {
		return nil, err
	}
	if code == http.StatusUnauthorized {
		if fresh {
			res.AuthFailures++
			return nil, c.authError("GET "+path, code, "token from a fresh login refused: %s", body)
		}
		if code, body, err = c.reauthorize(ctx, path, token, res); err != nil {
			return nil, err
		}
	}
	if code != http.StatusOK {
		return nil, devhttp.StatusError("GET "+path, code)
	}
	return body, nil
}

// reauthorize drops the refused token, logs in and sends the request once
// more with the new token. A 401 then is an authentication failure.
func (c *Client) reauthorize(ctx context.Context, path, refused string, res *device.Result) (int, []byte, error) {
	c.dropToken(refused)
	token, _, err := c.ensureToken(ctx, res)
	if err != nil {
		return 0, nil, err
	}
	code, body, err := c.get(ctx, path, "Bearer "+token, res)
	if err != nil {
		return 0, nil, err
	}
	if code == http.StatusUnauthorized {
		res.AuthFailures++
		c.dropToken(token)
		return 0, nil, c.authError("GET "+path, code, "refused again after a fresh login: %s", body)
	}
	return code, body, nil
}

// ensureToken returns the cached token or logs in. fresh is true when the
// token comes from a login made by this call.
func (c *Client) ensureToken(ctx context.Context, res *device.Result) (token string, fresh bool, err error) {
	if t := c.cachedToken(); t != "" {
		return t, false, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if t := c.cachedToken(); t != "" { // another poll logged in meanwhile
		return t, false, nil
	}
	prefix := c.currentPrefix()
	if err := c.blocked("GET " + prefix + "/login"); err != nil {
		return "", false, err
	}
	t, err := c.login(ctx, prefix, res)
	if err != nil {
		return "", false, err
	}
	c.mu.Lock()
	c.token, c.backoff, c.blockedUntil = t, 0, time.Time{}
	if c.tokens = append(c.tokens, t); len(c.tokens) > maxTokensKept {
		c.tokens = slices.Delete(c.tokens, 0, len(c.tokens)-maxTokensKept)
	}
	c.mu.Unlock()
	return t, true, nil
}

// blocked is the error for a request while the back-off after a rejection
// of the credentials lasts, nil after it.
func (c *Client) blocked(op string) error {
	c.mu.Lock()
	until := c.blockedUntil
	c.mu.Unlock()
	if c.now().Before(until) {
		return &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("login suspended until %s after the device rejected the credentials", until.UTC().Format(time.RFC3339))}
	}
	return nil
}

// rejected counts a rejection of the credentials and extends the back-off.
func (c *Client) rejected(res *device.Result) {
	res.AuthFailures++
	c.mu.Lock()
	c.backoff = min(max(2*c.backoff, loginBackoffMin), loginBackoffMax)
	c.blockedUntil = c.now().Add(c.backoff)
	c.mu.Unlock()
}

// basicGet sends a GET with Basic credentials, unless the back-off after a
// rejection lasts.
func (c *Client) basicGet(ctx context.Context, path string, res *device.Result) ([]byte, error) {
	op := "GET " + path
	if err := c.blocked(op); err != nil {
		return nil, err
	}
	code, body, err := c.get(ctx, path, c.basic, res)
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		c.rejected(res)
		return nil, c.authError(op, code, "device rejected the Basic credentials: %s", body)
	case code != http.StatusOK:
		return nil, devhttp.StatusError(op, code)
	}
	c.mu.Lock()
	c.backoff, c.blockedUntil = 0, time.Time{}
	c.mu.Unlock()
	return body, nil
}

func (c *Client) login(ctx context.Context, prefix string, res *device.Result) (string, error) {
	op := "GET " + prefix + "/login"
	q := url.Values{"username": {c.username}, "password": {c.passMD5}}
	code, body, err := c.get(ctx, prefix+"/login?"+q.Encode(), "", res)
	if err != nil {
		return "", err
	}
	switch {
	case c.auto && (code == http.StatusUnauthorized || code == http.StatusForbidden):
		// A found family's login rejects with 400; another answer says the
		// family changed (a firmware upgrade): it is found again, and the
		// credentials are not held to blame.
		c.dropFamily(prefix)
		return "", &device.Error{Reason: device.ReasonHTTPStatus, Op: op, Status: code,
			Err: fmt.Errorf("login answered %s, not as this API family's login does; the family is to be found again", c.statusText(code, body))}
	case code == http.StatusBadRequest || code == http.StatusUnauthorized || code == http.StatusForbidden:
		c.rejected(res)
		return "", c.authError(op, code, "device rejected the credentials: %s", body)
	case code != http.StatusOK:
		return "", devhttp.StatusError(op, code)
	}
	token, err := decodeToken(body)
	if err != nil {
		return "", &device.Error{Reason: device.ReasonDecode, Op: op, Err: err}
	}
	return token, nil
}

func (c *Client) cachedToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

func (c *Client) dropToken(token string) {
	c.mu.Lock()
	if c.token == token {
		c.token = ""
	}
	c.mu.Unlock()
}

// get sends one GET (with bounded retries) with the Authorization header
// authz (none when empty) and reads the body through the size limit. The
// error, if any, is an *device.Error.
func (c *Client) get(ctx context.Context, pathAndQuery, authz string, res *device.Result) (int, []byte, error) {
	r := &devhttp.Request{Target: pathAndQuery}
	if authz != "" {
		r.Header = http.Header{"Authorization": {authz}}
	}
	resp, err := c.conn.Do(ctx, r, res)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.Status
		}
		return code, nil, err
	}
	return resp.Status, resp.Body, nil
}
