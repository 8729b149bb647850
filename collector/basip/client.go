// Package basip is a client for the HTTP API of BAS-IP intercoms: it logs in,
// caches the token, and reads the SIP settings. It knows nothing about
// Prometheus.
package basip

import (
	"context"
	"crypto/md5"
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

// MaxBodySize bounds every response body read from a device.
const MaxBodySize = 1 << 20

// Login back-off after the device rejects the credentials: no login is tried
// for LoginBackoffMin, doubling up to LoginBackoffMax.
const (
	LoginBackoffMin = time.Minute
	LoginBackoffMax = time.Hour
)

// Options configure a Client.
type Options struct {
	// BaseURL is scheme://host:port of the device.
	BaseURL *url.URL
	// APIVersion is "v0" or "v1": the path prefix /api/v0 or /api/v1.
	APIVersion string
	Username   string
	Password   string
	// HTTP carries the requests; share one per TLS setting across devices so
	// connections are pooled. See NewHTTPClient.
	HTTP *http.Client
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// Client talks to one device. It is safe for concurrent use.
type Client struct {
	base     string
	prefix   string
	username string
	passMD5  string
	http     *retryablehttp.Client
	now      func() time.Time

	loginMu sync.Mutex // one login at a time per device

	mu           sync.Mutex
	token        string
	backoff      time.Duration
	blockedUntil time.Time
}

// New returns a Client for one device.
func New(o Options) *Client {
	sum := md5.Sum([]byte(o.Password))
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		base:     strings.TrimSuffix(o.BaseURL.String(), "/"),
		prefix:   "/api/" + o.APIVersion,
		username: o.Username,
		passMD5:  strings.ToUpper(hex.EncodeToString(sum[:])),
		http:     newRetryClient(o.HTTP),
		now:      now,
	}
}

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

// ResetBackoff forgets a login back-off, as after a config reload.
func (c *Client) ResetBackoff() {
	c.mu.Lock()
	c.backoff, c.blockedUntil = 0, time.Time{}
	c.mu.Unlock()
}

// HasToken reports whether a token is cached.
func (c *Client) HasToken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token != ""
}

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
		op := "GET " + path
		if fresh {
			res.AuthFailures++
			return nil, &device.Error{Reason: device.ReasonAuth, Op: op, Err: errors.New("token from a fresh login refused (HTTP 401)")}
		}
		c.dropToken(token)
		if token, _, err = c.ensureToken(ctx, res); err != nil {
			return nil, err
		}
		if code, body, err = c.get(ctx, path, token, res); err != nil {
			return nil, err
		}
		if code == http.StatusUnauthorized {
			res.AuthFailures++
			c.dropToken(token)
			return nil, &device.Error{Reason: device.ReasonAuth, Op: op, Err: errors.New("HTTP 401 persisted after a fresh login")}
		}
	}
	if code != http.StatusOK {
		return nil, statusError("GET "+path, code)
	}
	return body, nil
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
		c.backoff = min(max(2*c.backoff, LoginBackoffMin), LoginBackoffMax)
		c.blockedUntil = c.now().Add(c.backoff)
		c.mu.Unlock()
		return "", &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("device rejected the credentials (HTTP %d)", code)}
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
// size limit. The error, if any, is an *device.Error.
func (c *Client) get(ctx context.Context, pathAndQuery, token string, res *device.Result) (int, []byte, error) {
	path, _, _ := strings.Cut(pathAndQuery, "?")
	op := "GET " + path
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.base+pathAndQuery, nil)
	if err != nil {
		return 0, nil, &device.Error{Reason: device.ReasonConnection, Op: op, Err: errors.New("cannot build request")}
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	counter := &attempts{}
	start := time.Now()
	code, body, gerr := c.do(req.WithContext(withAttempts(ctx, counter)), op)
	if gerr != nil {
		gerr = redact(gerr, c.passMD5, token)
	}
	res.Requests += counter.n
	if t := device.TraceFrom(ctx); t != nil {
		tr := device.TracedRequest{Method: http.MethodGet, Path: path, Status: code, Attempts: counter.n, Duration: time.Since(start)}
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
		return 0, nil, transportError(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return resp.StatusCode, nil, transportError(op, err)
	}
	if len(body) > MaxBodySize {
		return resp.StatusCode, nil, &device.Error{Reason: device.ReasonTooLarge, Op: op, Err: fmt.Errorf("response body larger than %d bytes", MaxBodySize)}
	}
	return resp.StatusCode, body, nil
}
