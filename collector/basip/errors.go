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

	"github.com/basip/basip_exporter/collector/device"
)

var (
	errRedirectOtherHost = errors.New("redirected to another host; not followed")
	errTooManyRedirects  = errors.New("too many redirects")
)

// transportError classifies an error from the HTTP round trip. A *url.Error
// prints the full URL, query and all (the login's password hash), so it is
// unwrapped and only its cause is kept.
func transportError(op string, err error) *device.Error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return &device.Error{Reason: classify(err), Op: op, Err: err}
}

func classify(err error) device.Reason {
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
		return device.ReasonHTTPStatus
	case errors.Is(err, errResponseTooLarge):
		return device.ReasonTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return device.ReasonTimeout
	case errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidErr),
		errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return device.ReasonTLS
	case errors.As(err, &netErr) && netErr.Timeout():
		return device.ReasonTimeout
	}
	return device.ReasonConnection
}

// redact replaces each secret in the error's message with <secret>, in
// upper and lower case. A device that echoes the request (a TCP echo service
// on its address, say) makes net/http quote the request line, login query
// and all, in its error.
func redact(e *device.Error, secrets ...string) *device.Error {
	msg := e.Err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(strings.ReplaceAll(msg, s, "<secret>"), strings.ToLower(s), "<secret>")
		}
	}
	if msg == e.Err.Error() {
		return e
	}
	return &device.Error{Reason: e.Reason, Op: e.Op, Err: redactedError{msg: msg, err: e.Err}}
}

// redactedError is an error with a redacted message; errors.Is and As still
// see the original.
type redactedError struct {
	msg string
	err error
}

func (r redactedError) Error() string { return r.msg }

func (r redactedError) Unwrap() error { return r.err }

func statusError(op string, code int) *device.Error {
	return &device.Error{Reason: device.ReasonHTTPStatus, Op: op, Err: fmt.Errorf("unexpected HTTP status %d", code), Status: code}
}
