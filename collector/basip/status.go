package basip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// ErrNotSupported is returned for an endpoint the device answers with 404:
// monitors may have no SIP status endpoint. It is not a failure.
var ErrNotSupported = errors.New("endpoint not supported by the device (HTTP 404)")

// SIPStatus is the answer of GET /api/vN/sip/status.
type SIPStatus struct {
	// Status is "OK" (registered), "ERROR" (enabled, registration failed)
	// or "OFFLINE" (SIP disabled); nil when not sent.
	Status *string `json:"sip_status"`
	// LastAttempt is the Unix time of the last registration attempt; nil
	// when the device never attempted one.
	LastAttempt *float64 `json:"register_last_attempt"`
}

// Info is the answer of GET /api/info, which needs no login.
type Info struct {
	Name       FlexString `json:"device_name"`
	Model      FlexString `json:"device_model"`
	Type       FlexString `json:"device_type"`
	Firmware   FlexString `json:"firmware_version"`
	APIVersion FlexString `json:"api_version"`
	Serial     FlexString `json:"device_serial_number"`
}

// FlexString decodes a JSON string, number or boolean as text, since
// firmware versions differ in how they type these fields; null is empty.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case bytes.Equal(b, []byte("true")) || bytes.Equal(b, []byte("false")):
		*f = FlexString(b)
	default:
		n, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(n, 0) {
			return &json.UnmarshalTypeError{Value: "non-scalar", Type: reflectString}
		}
		*f = FlexString(b)
	}
	return nil
}

// SIPStatus reads the live registration status. A 404 gives
// ErrNotSupported.
func (c *Client) SIPStatus(ctx context.Context) (*SIPStatus, Result, error) {
	var res Result
	path := c.prefix + "/sip/status"
	body, err := c.authorizedGet(ctx, path, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	var s SIPStatus
	if err := decodeObject(body, &s); err != nil {
		return nil, res, &Error{Reason: ReasonDecode, Op: "GET " + path, Err: err}
	}
	return &s, res, nil
}

// Info reads /api/info, without logging in. A 404 gives ErrNotSupported.
func (c *Client) Info(ctx context.Context) (*Info, Result, error) {
	var res Result
	const path = "/api/info"
	code, body, err := c.get(ctx, path, "", &res)
	if err != nil {
		return nil, res, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, res, ErrNotSupported
	default:
		return nil, res, statusError("GET "+path, code)
	}
	var info Info
	if err := decodeObject(body, &info); err != nil {
		return nil, res, &Error{Reason: ReasonDecode, Op: "GET " + path, Err: err}
	}
	return &info, res, nil
}

func notSupported(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Reason == ReasonHTTPStatus && e.status == http.StatusNotFound {
		return ErrNotSupported
	}
	return err
}

func decodeObject(body []byte, v any) error {
	if err := expectObject(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return cleanJSONError(err)
	}
	return nil
}
