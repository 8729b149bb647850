// Package device is what the exporter knows of an intercom, whoever made it:
// its SIP settings, its registration status and its identity, the reasons a
// request to it can fail, and the Client interface through which the
// collector reads them. It holds data and names only; package basip is the
// implementation for BAS-IP devices.
package device

import "context"

// Client reads one device. Implementations are safe for concurrent use, but
// the collector never calls one device's Client from two goroutines at once.
// Every error returned is an *Error, or ErrNotSupported.
type Client interface {
	// SIPSettings reads the SIP settings.
	SIPSettings(ctx context.Context) (*SIPSettings, Result, error)
	// SIPStatus reads the live SIP registration status; ErrNotSupported
	// when the device has no such endpoint.
	SIPStatus(ctx context.Context) (*SIPStatus, Result, error)
	// Info reads the device's model and firmware; ErrNotSupported when the
	// device has no such endpoint.
	Info(ctx context.Context) (*Info, Result, error)
	// APIVersion is the API family in use (for BAS-IP "v0" or "v1"),
	// empty while it is not known yet.
	APIVersion() string
	// Close releases the device's connection. The Client stays usable.
	Close()
}

// Result is what one call learned besides its data.
type Result struct {
	// AuthFailures counts the logins the device rejected during the call
	// and 401s that persisted right after a fresh login.
	AuthFailures int
	// Requests counts the HTTP requests sent (retries included).
	Requests int
}

// Endpoint is one kind of answer a device is polled for: the values of the
// `collect` setting and of the endpoint label of basip_poll_errors_total.
type Endpoint int

// The endpoints, in the order of Endpoints.
const (
	EndpointSettings Endpoint = iota
	EndpointStatus
	EndpointInfo
	NumEndpoints
)

// Endpoints names every Endpoint, indexed by it.
var Endpoints = [NumEndpoints]string{"settings", "status", "info"}

func (e Endpoint) String() string { return Endpoints[e] }

// Transports are the documented SIP transports.
var Transports = []string{"udp", "tcp", "tls"}

// CallTimeouts are the call timeouts, in seconds, the vendor documents.
var CallTimeouts = []int64{120, 300, 600, 1200, 1800}

// RegistrationStatuses are the registration states a device reports, in
// lower case.
var RegistrationStatuses = []string{"ok", "error", "offline"}
