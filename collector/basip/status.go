package basip

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// SIPStatus reads the live registration status. A 404 gives
// ErrNotSupported.
func (c *Client) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	var s device.SIPStatus
	err := c.authorizedGet(ctx, "/sip/status", &res, func(body []byte) error { return decodeObject(body, &s) })
	if err != nil {
		return nil, res, c.redactErr(notSupported(err))
	}
	if s.LastAttempt != nil {
		t := device.UnixSeconds(*s.LastAttempt)
		s.LastAttempt = &t
	}
	return &s, res, nil
}

// Info reads /api/info, without logging in (in Basic mode the request
// carries the credentials, as every request does). A 404 gives
// device.ErrNotSupported.
func (c *Client) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	const path = "/api/info"
	code, body, err := c.get(ctx, path, c.basic, &res)
	if err != nil {
		return nil, res, c.redactErr(err)
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, res, device.ErrNotSupported
	default:
		return nil, res, devhttp.StatusError("GET "+path, code)
	}
	var info device.Info
	if err := decodeObject(body, &info); err != nil {
		return nil, res, c.redactErr(&device.Error{Reason: device.ReasonDecode, Op: "GET " + path, Err: err})
	}
	return &info, res, nil
}

func notSupported(err error) error {
	var e *device.Error
	if errors.As(err, &e) && e.Reason == device.ReasonHTTPStatus && e.Status == http.StatusNotFound {
		return device.ErrNotSupported
	}
	return err
}

func decodeObject(body []byte, v any) error {
	if err := expectObject(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return devhttp.JSONError(err)
	}
	return nil
}
