// Package basip is a client for the HTTP API of BAS-IP intercoms: it logs in,
// caches the token, and reads the SIP settings. It knows nothing about
// Prometheus.
package basip

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/hashicorp/go-retryablehttp"
)

// maxBodySize bounds every response body read from a device.
const maxBodySize = 1 << 20

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
	// APIVersion is "v0" or "v1": the path prefix /api/v0 or /api/v1.
	APIVersion string
	Username   string
	Password   string
	// TLSConfig is used for https; it may be shared by many clients and is
	// not modified. nil verifies against the system's roots.
	TLSConfig *tls.Config
	// IdleTimeout closes the kept-alive connection after this long unused;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// DefaultIdleTimeout is how long a device's connection is kept unused.
const DefaultIdleTimeout = 5 * time.Minute

// Client talks to one device over at most one connection, kept alive
// between calls. It is safe for concurrent use; its requests go one at a
// time.
type Client struct {
	base      string
	prefix    string
	username  string
	passMD5   string
	transport *transport
	http      *retryablehttp.Client
	turn      chan struct{} // holds a token while a request is under way
	now       func() time.Time

	loginMu sync.Mutex // one login at a time per device

	mu           sync.Mutex
	token        string
	backoff      time.Duration
	blockedUntil time.Time
}

var _ device.Client = (*Client)(nil)

// New returns a Client for one device. Close it when the device leaves the
// configuration.
func New(o Options) *Client {
	sum := md5.Sum([]byte(o.Password))
	now := o.Now
	if now == nil {
		now = time.Now
	}
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	prefix := "/api/" + o.APIVersion
	t := newTransport(o.TLSConfig, idle)
	return &Client{
		base:      strings.TrimSuffix(o.BaseURL.String(), "/"),
		prefix:    prefix,
		username:  o.Username,
		passMD5:   strings.ToUpper(hex.EncodeToString(sum[:])),
		transport: t,
		http:      newRetryClient(t, prefix+"/login"),
		turn:      make(chan struct{}, 1),
		now:       now,
	}
}

// Close closes the kept-alive connection: at once if it is idle, or as
// soon as the request it carries is answered. The Client stays usable: the
// next request opens a new connection.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// SIPSettings reads the device's SIP settings, logging in first when no
// token is cached and once more when the cached token is refused.
func (c *Client) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, err := c.authorizedGet(ctx, c.prefix+"/device/sip/settings", &res)
	if err != nil {
		return nil, res, err
	}
	s, err := DecodeSIPSettings(body)
	if err != nil {
		return nil, res, &device.Error{Reason: device.ReasonDecode, Op: "GET " + c.prefix + "/device/sip/settings", Err: err}
	}
	return s, res, nil
}

// authorizedGet sends an authorized GET. A 401 to a cached token means the
// token expired: reauthorize logs in again and repeats the request once.
func (c *Client) authorizedGet(ctx context.Context, path string, res *device.Result) ([]byte, error) {
	token, fresh, err := c.ensureToken(ctx, res)
	if err != nil {
		return nil, err
	}
	code, body, err := c.get(ctx, path, token, res)
	if err != nil {
		return nil, err
	}
	if code == http.StatusUnauthorized {
		if fresh {
			res.AuthFailures++
			return nil, authError("GET "+path, code, "token from a fresh login refused: %s", body)
		}
		if code, body, err = c.reauthorize(ctx, path, token, res); err != nil {
			return nil, err
		}
	}
	if code != http.StatusOK {
		return nil, statusError("GET "+path, code)
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
	code, body, err := c.get(ctx, path, token, res)
	if err != nil {
		return 0, nil, err
	}
	if code == http.StatusUnauthorized {
		res.AuthFailures++
		c.dropToken(token)
		return 0, nil, authError("GET "+path, code, "refused again after a fresh login: %s", body)
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
	op := "GET " + c.prefix + "/login"
	c.mu.Lock()
	until := c.blockedUntil
	c.mu.Unlock()
	if c.now().Before(until) {
		return "", false, &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("login suspended until %s after the device rejected the credentials", until.UTC().Format(time.RFC3339))}
	}
	t, err := c.login(ctx, res)
	if err != nil {
		return "", false, err
	}
	c.mu.Lock()
	c.token, c.backoff, c.blockedUntil = t, 0, time.Time{}
	c.mu.Unlock()
	return t, true, nil
}

func (c *Client) login(ctx context.Context, res *device.Result) (string, error) {
	op := "GET " + c.prefix + "/login"
	q := url.Values{"username": {c.username}, "password": {c.passMD5}}
	code, body, err := c.get(ctx, c.prefix+"/login?"+q.Encode(), "", res)
	if err != nil {
		return "", err
	}
	switch {
	case code == http.StatusBadRequest || code == http.StatusUnauthorized || code == http.StatusForbidden:
		res.AuthFailures++
		c.mu.Lock()
		c.backoff = min(max(2*c.backoff, loginBackoffMin), loginBackoffMax)
		c.blockedUntil = c.now().Add(c.backoff)
		c.mu.Unlock()
		return "", authError(op, code, "device rejected the credentials: %s", body)
	case code != http.StatusOK:
		return "", statusError(op, code)
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

// get sends one GET (with bounded retries) and reads the body through the
// size limit. The error, if any, is an *device.Error. The device's requests
// go one at a time, which also makes the transport's count of requests
// this call's own.
func (c *Client) get(ctx context.Context, pathAndQuery, token string, res *device.Result) (int, []byte, error) {
	path, _, _ := strings.Cut(pathAndQuery, "?")
	op := "GET " + path
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, &device.Error{Reason: device.ReasonTimeout, Op: op, Err: ctx.Err()}
	}
	defer func() { <-c.turn }()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.base+pathAndQuery, nil)
	if err != nil {
		return 0, nil, &device.Error{Reason: device.ReasonConnection, Op: op, Err: errors.New("cannot build request")}
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	sent := c.transport.requests.Load()
	start := time.Now()
	code, body, gerr := c.do(req, op)
	if gerr != nil {
		gerr = redact(gerr)
	}
	n := int(c.transport.requests.Load() - sent)
	res.Requests += n
	if t := device.TraceFrom(ctx); t != nil {
		tr := device.TracedRequest{Method: http.MethodGet, Path: path, Status: code, Attempts: n, Duration: time.Since(start)}
		if gerr != nil {
			tr.Error = gerr.Error()
		}
		t.Add(tr)
	}
	if gerr != nil {
		return code, nil, gerr
	}
	return code, body, nil
}

func (c *Client) do(req *retryablehttp.Request, op string) (int, []byte, *device.Error) {
	resp, err := c.http.Do(req)
	if err != nil {
		e := transportError(op, err)
		if resp != nil && isRedirectError(err) {
			e.Status = resp.StatusCode
		}
		return 0, nil, e
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		return resp.StatusCode, nil, transportError(op, err)
	}
	if len(body) > maxBodySize {
		return resp.StatusCode, nil, &device.Error{Reason: device.ReasonTooLarge, Op: op, Err: fmt.Errorf("response body larger than %d bytes", maxBodySize)}
	}
	return resp.StatusCode, body, nil
}
