package device

import "errors"

// Reason classifies why a request failed; the values are the `reason` label
// of basip_poll_errors_total.
type Reason string

// The reasons a request can fail.
const (
	ReasonAuth       Reason = "auth"
	ReasonTimeout    Reason = "timeout"
	ReasonConnection Reason = "connection"
	ReasonTLS        Reason = "tls"
	ReasonHTTPStatus Reason = "http_status"
	ReasonDecode     Reason = "decode"
	ReasonTooLarge   Reason = "too_large"
	// ReasonSkipped is a device the exporter did not ask at all: the
	// scrape's deadline passed before its turn came.
	ReasonSkipped Reason = "skipped"
)

// Reasons lists every Reason, in a fixed order.
var Reasons = [...]Reason{ReasonAuth, ReasonTimeout, ReasonConnection, ReasonTLS, ReasonHTTPStatus, ReasonDecode, ReasonTooLarge, ReasonSkipped}

// reasonDescriptions say what each reason means, for people.
var reasonDescriptions = map[Reason]string{
	ReasonAuth:       "Login rejected: wrong user name or password",
	ReasonTimeout:    "No answer within the deadline",
	ReasonConnection: "Cannot connect to the device",
	ReasonTLS:        "TLS handshake or certificate failed",
	ReasonHTTPStatus: "Unexpected HTTP status",
	ReasonDecode:     "Answer not understood",
	ReasonTooLarge:   "Answer larger than the exporter reads",
	ReasonSkipped:    "Not polled: the scrape's deadline came first",
}

// Description says what r means, for people; an unknown reason describes
// itself.
func (r Reason) Description() string {
	if d, ok := reasonDescriptions[r]; ok {
		return d
	}
	return string(r)
}

// NumReasons is the number of reasons, for arrays indexed by Reason.Index.
const NumReasons = len(Reasons)

var reasonIndex = func() map[Reason]int {
	m := make(map[Reason]int, NumReasons)
	for i, r := range Reasons {
		m[r] = i
	}
	return m
}()

// Index is the position of r in Reasons; an unknown reason counts as
// ReasonConnection, as ReasonOf does.
func (r Reason) Index() int {
	if i, ok := reasonIndex[r]; ok {
		return i
	}
	return reasonIndex[ReasonConnection]
}

// Error is a failed device request. Its message names the API path, never
// the query string, so it carries no credential.
type Error struct {
	Reason Reason
	Op     string // e.g. "GET /api/v1/device/sip/settings"
	Err    error
	// Status is the HTTP status of a ReasonHTTPStatus or ReasonAuth error,
	// when an answer came.
	Status int
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

// ErrNotSupported is returned for an endpoint the device does not have:
// monitors may have no SIP status endpoint. It is not a failure.
var ErrNotSupported = errors.New("endpoint not supported by the device (HTTP 404)")
