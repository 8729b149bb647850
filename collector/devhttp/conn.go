// Package devhttp is how the exporter talks HTTP to a device, whoever made
// it: one device's requests go one at a time over at most one kept-alive
// HTTP/1.1 connection (transport.go), transient faults are retried within
// the deadline, redirects are followed only on the device (http.go), bodies
// are bounded, and errors name the request and the kind of failure without
// quoting the device's bytes or a credential (errors.go). auth.go adds HTTP
// Basic and Digest (RFC 7616) with a back-off after a rejection, for the
// vendors that use them; the BAS-IP token login lives in package basip.
package devhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/hashicorp/go-retryablehttp"
)

// maxBodySize bounds every response body read from a device.
const maxBodySize = 1 << 20

// MaxBodySize is maxBodySize, for the tests of the clients.
const MaxBodySize = maxBodySize

// DefaultIdleTimeout is how long a device's connection is kept unused.
const DefaultIdleTimeout = 5 * time.Minute

// Options configure a Conn.
type Options struct {
	// BaseURL is scheme://host:port of the device.
	BaseURL *url.URL
	// TLSConfig is used for https; it may be shared by many Conns and is
	// not modified. nil verifies against the system's roots.
	TLSConfig *tls.Config
	// IdleTimeout closes the kept-alive connection after this long unused;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// NoRedirect names the paths whose redirects are never followed: those
	// whose query carries a credential.
	NoRedirect func(path string) bool
	// Secrets returns the client's secrets, redacted by value (as well as
	// by shape) from every error; nil when there are none.
	Secrets func() []string
}

// Conn sends one device's requests, one at a time, over at most one
// kept-alive connection. It is safe for concurrent use.
type Conn struct {
	base      string
	transport *transport
	http      *retryablehttp.Client
	turn      chan struct{} // holds a token while a request is under way
	secrets   func() []string
}

// New returns a Conn to one device. Close it when the device leaves the
// configuration.
func New(o Options) *Conn {
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	t := newTransport(o.TLSConfig, idle)
	return &Conn{
		base:      strings.TrimSuffix(o.BaseURL.String(), "/"),
		transport: t,
		http:      newRetryClient(t, o.NoRedirect),
		turn:      make(chan struct{}, 1),
		secrets:   o.Secrets,
	}
}

// Secrets are the secrets redacted by value from the Conn's errors.
func (c *Conn) Secrets() []string {
	if c.secrets == nil {
		return nil
	}
	return c.secrets()
}

// Close closes the kept-alive connection: at once if it is idle, or as soon
// as the request it carries is answered. The Conn stays usable.
func (c *Conn) Close() { c.transport.CloseIdleConnections() }

// Request is one request to a device.
type Request struct {
	Method string // GET when empty
	// Target is the path and query, as sent: "/cgi-bin/sip_cgi?action=get".
	Target string
	Body   []byte      // for POST
	Header http.Header // Authorization, Content-Type, ...
}

// Op names the request in errors: method and path, never the query.
func (r *Request) Op() string {
	path, _, _ := strings.Cut(r.Target, "?")
	return r.method() + " " + path
}

func (r *Request) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// Response is a device's answer, its body read whole (at most
// maxBodySize bytes).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r (with bounded retries) and reads the answer through the size
// limit. It counts the requests sent in res and records them in the
// context's device.Trace. The error, if any, is a *device.Error, redacted.
func (c *Conn) Do(ctx context.Context, r *Request, res *device.Result) (*Response, error) {
	op := r.Op()
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, &device.Error{Reason: device.ReasonTimeout, Op: op, Err: ctx.Err()}
	}
	defer func() { <-c.turn }()
	var body any
	if r.Body != nil {
		body = r.Body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method(), c.base+r.Target, body)
	if err != nil {
		return nil, &device.Error{Reason: device.ReasonConnection, Op: op, Err: errors.New("cannot build request")}
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range r.Header {
		req.Header[k] = v
	}
	sent := c.transport.requests.Load()
	start := time.Now()
	resp, derr := c.do(req, op)
	var err2 error
	if derr != nil {
		derr = Redact(derr, c.Secrets())
		err2 = derr
	}
	n := int(c.transport.requests.Load() - sent)
	res.Requests += n
	if t := device.TraceFrom(ctx); t != nil {
		path, _, _ := strings.Cut(r.Target, "?")
		tr := device.TracedRequest{Method: r.method(), Path: path, Attempts: n, Duration: time.Since(start)}
		if resp != nil {
			tr.Status = resp.Status
		}
		if derr != nil {
			tr.Error = derr.Error()
		}
		t.Add(tr)
	}
	if err2 != nil {
		return resp, err2
	}
	return resp, nil
}

// do returns the response (with its status even when reading the body
// failed) and the error.
func (c *Conn) do(req *retryablehttp.Request, op string) (*Response, *device.Error) {
	resp, err := c.http.Do(req)
	if err != nil {
		e := TransportError(op, err)
		if resp != nil && IsRedirectError(err) {
			e.Status = resp.StatusCode
		}
		return nil, e
	}
	defer resp.Body.Close()
	out := &Response{Status: resp.StatusCode, Header: resp.Header}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		return &Response{Status: resp.StatusCode}, TransportError(op, err)
	}
	if len(body) > maxBodySize {
		return &Response{Status: resp.StatusCode}, &device.Error{Reason: device.ReasonTooLarge, Op: op, Err: fmt.Errorf("response body larger than %d bytes", maxBodySize)}
	}
	out.Body = body
	return out, nil
}
