package vendors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
)

// 2N IP intercoms (IP Verso, IP Style, IP Solo, ...), from the vendor's
// manual "2N IP Intercom HTTP API" (wiki.2n.com, hip/hapi): every answer is
// an envelope {"success":true,"result":{...}} or {"success":false,
// "error":{"code":N,"param":"...","description":"..."}}; the user needs the
// Phone/Call Monitoring privilege; Digest or Basic as the API is set.
//
//	GET /api/phone/config   accounts[]: account, enabled, sipNumber, domain,
//	                        proxyAddress, proxyPort (no password)
//	GET /api/phone/status   accounts[]: account, enabled, registrationEnabled,
//	                        registered (up to 4 accounts)
//	GET /api/system/info    variant, swVersion, serialNumber, deviceName

// TwoN is the client of a 2N device.
type TwoN struct{ base }

var _ device.Client = (*TwoN)(nil)

// twoNEnvelope is 2N's answer envelope.
type twoNEnvelope struct {
	Success *bool           `json:"success"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code int `json:"code"`
	} `json:"error"`
}

// decode2N unwraps the envelope into v. An error answer with a code for
// a missing function is ErrNotSupported (codes 1, 2, 4), for rights or
// authentication method an auth error (8, 9, 10), other codes a decode
// error naming the code.
func decode2N(op string, body []byte, v any) error {
	var env twoNEnvelope
	if err := decodeJSON(body, &env); err != nil {
		return decodeError(op, err)
	}
	if env.Success == nil {
		return decodeError(op, fmt.Errorf("no success field"))
	}
	if !*env.Success {
		code := 0
		if env.Error != nil {
			code = env.Error.Code
		}
		switch code {
		case 1, 2, 4:
			return device.ErrNotSupported
		case 8, 9, 10:
			return &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("device refused the request (2N error %d: authentication method or privileges)", code)}
		}
		return decodeError(op, fmt.Errorf("device answered 2N error %d", code))
	}
	if len(env.Result) == 0 || string(env.Result) == "null" {
		return decodeError(op, fmt.Errorf("no result"))
	}
	if err := decodeJSON(env.Result, v); err != nil {
		return decodeError(op, fmt.Errorf("result: %w", err))
	}
	return nil
}

// flexInt is a JSON number or a string of one, as firmware versions differ
// (2N's manual shows ports as strings, "" for none); "" and null are
// absent.
type flexInt struct {
	v  int64
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" || s == `""` {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	*f = flexInt{v: n, ok: true}
	return nil
}

// ptr is the value, nil when absent.
func (f flexInt) ptr() *int64 {
	if !f.ok {
		return nil
	}
	return ptr(f.v)
}

type twoNAccount struct {
	Account             flexInt `json:"account"`
	Enabled             *bool   `json:"enabled"`
	SIPNumber           *string `json:"sipNumber"`
	Domain              *string `json:"domain"`
	ProxyAddress        *string `json:"proxyAddress"`
	ProxyPort           flexInt `json:"proxyPort"`
	RegistrationEnabled *bool   `json:"registrationEnabled"`
	Registered          *bool   `json:"registered"`
}

// first returns account 1, or the first listed; nil for none.
func first2N(accounts []twoNAccount) *twoNAccount {
	for i := range accounts {
		if a := accounts[i].Account; a.ok && a.v == 1 {
			return &accounts[i]
		}
	}
	if len(accounts) > 0 {
		return &accounts[0]
	}
	return nil
}

// decode2NSettings decodes /api/phone/config.
func decode2NSettings(op string, body []byte) (*device.SIPSettings, error) {
	var r struct {
		Accounts []twoNAccount `json:"accounts"`
	}
	if err := decode2N(op, body, &r); err != nil {
		return nil, err
	}
	s := &device.SIPSettings{}
	if a := first2N(r.Accounts); a != nil {
		s.Enable, s.User, s.Realm = a.Enabled, a.SIPNumber, a.Domain
		s.Proxy = hostPort(a.ProxyAddress, a.ProxyPort.ptr())
	}
	return s, nil
}

// decode2NStatus decodes /api/phone/status.
func decode2NStatus(op string, body []byte) (*device.SIPStatus, error) {
	var r struct {
		Accounts []twoNAccount `json:"accounts"`
	}
	if err := decode2N(op, body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	for i, a := range r.Accounts {
		n := i + 1
		if a.Account.ok {
			n = int(a.Account.v)
		}
		reg := a.Registered != nil && *a.Registered
		st.Accounts = append(st.Accounts, device.AccountStatus{Account: n, Registered: reg})
	}
	if a := first2N(r.Accounts); a != nil && a.Registered != nil {
		enabled := a.Enabled
		if enabled != nil && *enabled && a.RegistrationEnabled != nil {
			enabled = a.RegistrationEnabled // an account that does not register is offline
		}
		st.Status = registration(enabled, *a.Registered)
	}
	return st, nil
}

// decode2NInfo decodes /api/system/info.
func decode2NInfo(op string, body []byte) (*device.Info, error) {
	var r struct {
		Variant      device.FlexString `json:"variant"`
		SWVersion    device.FlexString `json:"swVersion"`
		SerialNumber device.FlexString `json:"serialNumber"`
		DeviceName   device.FlexString `json:"deviceName"`
	}
	if err := decode2N(op, body, &r); err != nil {
		return nil, err
	}
	return &device.Info{Model: r.Variant, Firmware: r.SWVersion, Serial: r.SerialNumber, Name: r.DeviceName}, nil
}

// SIPSettings implements device.Client.
func (c *TwoN) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/phone/config", &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decode2NSettings(op, body)
	return s, res, err
}

// SIPStatus implements device.Client.
func (c *TwoN) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/phone/status", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decode2NStatus(op, body)
	return s, res, err
}

// Info implements device.Client.
func (c *TwoN) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/system/info", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decode2NInfo(op, body)
	return i, res, err
}
