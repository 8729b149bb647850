package basip

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

var (
	errRedirectRefused   = errors.New("redirected to another host, port or scheme; not followed")
	errRedirectedLogin   = errors.New("login redirected; not followed")
	errTooManyRedirects  = errors.New("too many redirects")
	errRedirectDowngrade = errors.New("redirected from https to http; not followed")
	errRedirectedProbe   = errors.New("redirected; not followed, as an answer from elsewhere proves no API family")
)

// probeKey marks the context of a request that probes for an API family:
// it is neither retried nor redirected, so its answer is one answer of the
// path probed.
type probeKey struct{}

func withProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

func isProbe(ctx context.Context) bool { return ctx.Value(probeKey{}) != nil }

// newRetryClient is the one retry layer for transient faults, over the
// device's own transport. A re-login after a 401 is not a retry: see
// Client.reauthorize.
func newRetryClient(t *transport) *retryablehttp.Client {
	return &retryablehttp.Client{
		// After a failed request retryablehttp closes the HTTP client's
		// idle connections. The transport serves this device only, so that
		// drops at most this device's idle connection, and a failure
		// leaves none anyway.
		HTTPClient: &http.Client{
			Transport:     t,
			CheckRedirect: checkRedirect,
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
	if isRedirectError(err) || isProbe(ctx) {
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

func isRedirectError(err error) bool {
	return errors.Is(err, errRedirectRefused) || errors.Is(err, errRedirectedLogin) ||
		errors.Is(err, errTooManyRedirects) || errors.Is(err, errRedirectDowngrade) ||
		errors.Is(err, errRedirectedProbe)
}

// backoff is retryablehttp's exponential back-off, with a Retry-After
// header capped at retryWaitMax.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(minWait, maxWait, attempt, resp), maxWait)
}

// checkRedirect follows a redirect only when it stays on the device (see
// redirectAllowed, against the first request and the previous one), never
// for the login (the password hash is in its query), at most maxRedirects
// times, and without the Referer header net/http adds: it would carry the
// previous URL to the next hop.
func checkRedirect(req *http.Request, via []*http.Request) error {
	req.Header.Del("Referer")
	first, prev := via[0].URL, via[len(via)-1].URL
	switch {
	case isProbe(req.Context()):
		return errRedirectedProbe
	case isLoginPath(first.Path):
		return errRedirectedLogin
	case len(via) > maxRedirects:
		return errTooManyRedirects
	case prev.Scheme == "https" && req.URL.Scheme != "https":
		return errRedirectDowngrade
	case !redirectAllowed(first, req.URL) || !redirectAllowed(prev, req.URL):
		return errRedirectRefused
	}
	return nil
}

// isLoginPath reports whether path is the login of an API family.
func isLoginPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/")
	return ok && strings.HasSuffix(rest, "/login")
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
