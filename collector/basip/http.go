package basip

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
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

// NewHTTPClient returns an HTTP client for devices sharing one TLS setting.
// Its connections are kept alive and pooled across scrapes; it follows a
// redirect only to the same host.
func NewHTTPClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		// keepIdle hides CloseIdleConnections: retryablehttp calls it after
		// every failed request, which would drop the whole fleet's pool
		// because of one bad device.
		Transport:     keepIdle{newTransport(tlsConfig)},
		CheckRedirect: checkRedirect,
	}
}

type keepIdle struct{ rt http.RoundTripper }

func (k keepIdle) RoundTrip(r *http.Request) (*http.Response, error) { return k.rt.RoundTrip(r) }

// checkRedirect follows a redirect only to the same host (say http to
// https): the Authorization header and the login query must not reach
// another one.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errTooManyRedirects
	}
	if !strings.EqualFold(req.URL.Hostname(), via[0].URL.Hostname()) {
		return errRedirectOtherHost
	}
	return nil
}

func newRetryClient(hc *http.Client) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil, // its messages name URLs; ours name paths only
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     retryMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, r *http.Request, _ int) {
			if a, ok := r.Context().Value(attemptsKey{}).(*attempts); ok {
				a.n++
			}
		},
	}
}

// checkRetry retries transient faults only while the deadline leaves room
// for the wait and another attempt, so retries never outlast the scrape.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if errors.Is(err, errRedirectOtherHost) || errors.Is(err, errTooManyRedirects) {
		return false, nil
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*retryWaitMax {
		return false, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff is retryablehttp's exponential back-off, with a Retry-After
// header capped at retryWaitMax.
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(minWait, maxWait, attempt, resp), maxWait)
}

type attemptsKey struct{}

type attempts struct{ n int }

func withAttempts(ctx context.Context, a *attempts) context.Context {
	return context.WithValue(ctx, attemptsKey{}, a)
}

// CloseIdleConnections closes the idle connections of a client made by
// NewHTTPClient, for when no device uses it any more.
func CloseIdleConnections(hc *http.Client) {
	if k, ok := hc.Transport.(keepIdle); ok {
		if t, ok := k.rt.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
}
