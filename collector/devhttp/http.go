package devhttp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Retry policy for transient faults (connection refused or reset, 5xx).
const (
	retryMax     = 2
	retryWaitMin = 100 * time.Millisecond
	retryWaitMax = 400 * time.Millisecond
	maxRedirects = 3
)

// RetryWaitMax is the longest wait between two attempts, for the tests of
// the clients.
const RetryWaitMax = retryWaitMax

// RetryMax is how many times a transient fault is retried.
const RetryMax = retryMax

// The redirects not followed.
var (
	ErrRedirectRefused   = errors.New("redirected to another host, port or scheme; not followed")
	ErrRedirectedLogin   = errors.New("login redirected; not followed") // a request whose query carries a credential
	ErrTooManyRedirects  = errors.New("too many redirects")
	ErrRedirectDowngrade = errors.New("redirected from https to http; not followed")
	ErrRedirectedProbe   = errors.New("redirected; not followed, as an answer from elsewhere proves no API family")
)

// probeKey marks the context of a request that probes for an API family:
// it is neither retried nor redirected, so its answer is one answer of the
// path probed.
type probeKey struct{}

// WithProbe marks ctx's requests as probes: neither retried nor
// redirected.
func WithProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

func isProbe(ctx context.Context) bool { return ctx.Value(probeKey{}) != nil }

// newRetryClient is the one retry layer for transient faults, over the
// device's own transport. A new authorization after a 401 is not a retry:
// the clients decide on it. noRedirect names the paths never redirected.
func newRetryClient(t *transport, noRedirect func(path string) bool) *retryablehttp.Client {
	return &retryablehttp.Client{
		// After a failed request retryablehttp closes the HTTP client's
		// idle connections. The transport serves this device only, so that
		// drops at most this device's idle connection, and a failure
		// leaves none anyway.
		HTTPClient: &http.Client{
			Transport:     t,
			CheckRedirect: func(req *http.Request, via []*http.Request) error { return checkRedirect(req, via, noRedirect) },
		},
		Logger:       nil, // its messages name URLs; ours name paths only
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     retryMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// checkRetry retries transient faults only while the deadline leaves room
// for the wait and another attempt, so retries never outlast the scrape.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if IsRedirectError(err) || isProbe(ctx) {
		return false, nil
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*retryWaitMax {
		return false, nil
	}
	retry, perr := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	if err == nil {
		// For a 5xx the library's policy returns an error, which would
		// stand in for the response once the retries are used up; the
		// client decides on the status itself.
		return retry, nil
	}
	return retry, perr
}

// IsRedirectError reports whether err is a redirect the transport refused
// to follow.
func IsRedirectError(err error) bool {
	return errors.Is(err, ErrRedirectRefused) || errors.Is(err, ErrRedirectedLogin) ||
		errors.Is(err, ErrTooManyRedirects) || errors.Is(err, ErrRedirectDowngrade) ||
		errors.Is(err, ErrRedirectedProbe)
}

// backoff is retryablehttp's exponential back-off, with a Retry-After
// header capped at retryWaitMax.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(minWait, maxWait, attempt, resp), maxWait)
}

// checkRedirect follows a redirect only when it stays on the device (see
// redirectAllowed, against the first request and the previous one), never
// for a path noRedirect names (a login whose query carries the password
// hash), at most maxRedirects times, and without the Referer header
// net/http adds: it would carry the previous URL to the next hop.
func checkRedirect(req *http.Request, via []*http.Request, noRedirect func(string) bool) error {
	req.Header.Del("Referer")
	first, prev := via[0].URL, via[len(via)-1].URL
	switch {
	case isProbe(req.Context()):
		return ErrRedirectedProbe
	case noRedirect != nil && noRedirect(first.Path):
		return ErrRedirectedLogin
	case len(via) > maxRedirects:
		return ErrTooManyRedirects
	case prev.Scheme == "https" && req.URL.Scheme != "https":
		return ErrRedirectDowngrade
	case !redirectAllowed(first, req.URL) || !redirectAllowed(prev, req.URL):
		return ErrRedirectRefused
	}
	return nil
}

// redirectAllowed reports whether a request to from may be redirected to
// to: the same scheme, host and port; or from http to https on the same
// host, on the same port, or from the http default port (80) to the https
// default port (443). Another port of the same address may be another
// device (behind a port forward), so a configured non-default port is kept;
// https is never left for http.
func redirectAllowed(from, to *url.URL) bool {
	if !strings.EqualFold(from.Hostname(), to.Hostname()) || to.User != nil {
		return false
	}
	fromPort, toPort := portOf(from), portOf(to)
	switch {
	case from.Scheme == to.Scheme:
		return fromPort == toPort
	case from.Scheme == "http" && to.Scheme == "https":
		return toPort == fromPort || (fromPort == "80" && toPort == "443")
	}
	return false
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return defaultPort(u.Scheme)
}
