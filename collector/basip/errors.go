package basip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Reason classifies why a poll failed; the values are the `reason` label of
// basip_poll_errors_total.
type Reason string

// The reasons a poll can fail.
const (
	ReasonAuth       Reason = "auth"
	ReasonTimeout    Reason = "timeout"
	ReasonConnection Reason = "connection"
	ReasonTLS        Reason = "tls"
	ReasonHTTPStatus Reason = "http_status"
	ReasonDecode     Reason = "decode"
	ReasonTooLarge   Reason = "too_large"
)

// Reasons lists every Reason, in a fixed order.
var Reasons = []Reason{ReasonAuth, ReasonTimeout, ReasonConnection, ReasonTLS, ReasonHTTPStatus, ReasonDecode, ReasonTooLarge}

// Error is a failed device request. Its message names the API path, never
// the query string, so it carries no credential.
type Error struct {
	Reason Reason
	Op     string // e.g. "GET /api/v1/device/sip/settings"
	Err    error

	status int // the HTTP status of a ReasonHTTPStatus error, when one came
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of err, or ReasonConnection for an error that
// carries none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonConnection
}

var (
	errRedirectOtherHost = errors.New("redirected to another host; not followed")
	errTooManyRedirects  = errors.New("too many redirects")
)

// transportError classifies an error from the HTTP round trip. A *url.Error
// prints the full URL, query and all (the login's password hash), so it is
// unwrapped and only its cause is kept.
func transportError(op string, err error) *Error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return &Error{Reason: classify(err), Op: op, Err: err}
}

func classify(err error) Reason {
	var (
		netErr      net.Error
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
	)
	switch {
	case errors.Is(err, errRedirectOtherHost), errors.Is(err, errTooManyRedirects):
		return ReasonHTTPStatus
	case errors.Is(err, errResponseTooLarge):
		return ReasonTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ReasonTimeout
	case errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidErr),
		errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return ReasonTLS
	case errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	}
	return ReasonConnection
}

// redact replaces each secret in the error's message with <secret>, in
// upper and lower case. A device that echoes the request (a TCP echo service
// on its address, say) makes net/http quote the request line, login query
// and all, in its error.
func (e *Error) redact(secrets ...string) *Error {
	msg := e.Err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(strings.ReplaceAll(msg, s, "<secret>"), strings.ToLower(s), "<secret>")
		}
	}
	if msg == e.Err.Error() {
		return e
	}
	return &Error{Reason: e.Reason, Op: e.Op, Err: redactedError{msg: msg, err: e.Err}}
}

// redactedError is an error with a redacted message; errors.Is and As still
// see the original.
type redactedError struct {
	msg string
	err error
}

func (r redactedError) Error() string { return r.msg }

func (r redactedError) Unwrap() error { return r.err }

func statusError(op string, code int) *Error {
	return &Error{Reason: ReasonHTTPStatus, Op: op, Err: fmt.Errorf("unexpected HTTP status %d", code), status: code}
}
