package devhttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
)

// TransportError classifies an error from the HTTP round trip. A *url.Error
// prints the full URL, query and all (the login's password hash), so it is
// unwrapped and only its cause is kept.
func TransportError(op string, err error) *device.Error {
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
	case IsRedirectError(err):
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

// Redact replaces, in the error's message, each secret in values and
// anything shaped like a credential with <secret> (see
// device.RedactValues). The transport already keeps the device's bytes out
// of its errors; this is the second line, for what another layer might
// quote (a URL, a header, a body).
func Redact(e *device.Error, values []string) *device.Error {
	msg := e.Err.Error()
	red := device.RedactValues(msg, values)
	if red == msg {
		return e
	}
	return &device.Error{Reason: e.Reason, Op: e.Op, Err: redactedError{msg: red, err: e.Err}, Status: e.Status}
}

// redactedError is an error with a redacted message; errors.Is and As still
// see the original.
type redactedError struct {
	msg string
	err error
}

func (r redactedError) Error() string { return r.msg }

func (r redactedError) Unwrap() error { return r.err }

// StatusError is an unexpected HTTP status.
func StatusError(op string, code int) *device.Error {
	return &device.Error{Reason: device.ReasonHTTPStatus, Op: op, Err: fmt.Errorf("unexpected HTTP status %d", code), Status: code}
}

// AuthError is a refusal by the device: format has one %s, for the status
// and the device's reason (see statusText).
func AuthError(op string, code int, format string, body []byte, values []string) *device.Error {
	return &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf(format, StatusText(code, body, values)), Status: code}
}

// StatusText is "HTTP 401: Log In": the status code and the device's short
// reason from the body, when it has one, with the secrets in values
// redacted.
func StatusText(code int, body []byte, values []string) string {
	if r := DeviceReason(body, values); r != "" {
		return fmt.Sprintf("HTTP %d: %s", code, r)
	}
	return fmt.Sprintf("HTTP %d", code)
}

// maxReason bounds the device's words quoted in an error.
const maxReason = 64

// DeviceReason returns the "error" string of {"error":"Log In"} (panels)
// or the code of {"error":{"code":"invalid_authentication"}} (Camdroid),
// printable ASCII only, redacted (the secrets in values, and by shape)
// before it is cut to maxReason bytes, so no cut leaves a piece of a
// secret; "" for any other body. It is for reading only: decisions go by
// the status code.
func DeviceReason(body []byte, values []string) string {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.Error) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.Error, &s) != nil {
		var obj struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(v.Error, &obj) != nil {
			return ""
		}
		s = obj.Code
	}
	b := make([]byte, 0, min(len(s), 4*maxReason))
	for i := 0; i < len(s) && len(b) < 4*maxReason; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	r := strings.TrimSpace(device.RedactValues(string(b), values))
	if len(r) > maxReason {
		r = r[:maxReason-3] + "..."
	}
	return r
}

// JSONError keeps the JSON decoder's description of what was wrong without
// echoing any of the body: every vendor's decoder uses it.
func JSONError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %s: got JSON %s, want %s", te.Field, te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at offset %d", se.Offset)
	}
	return errors.New("malformed JSON")
}
