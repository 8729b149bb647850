package vendors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	AccountType         *string `json:"accountType"`
	Enabled             *bool   `json:"enabled"`
	SIPNumber           *string `json:"sipNumber"`
	Domain              *string `json:"domain"`
	ProxyAddress        *string `json:"proxyAddress"`
	ProxyPort           flexInt `json:"proxyPort"`
	RegistrarAddress    *string `json:"registrarAddress"`
	RegistrarPort       flexInt `json:"registrarPort"`
	RegistrationEnabled *bool   `json:"registrationEnabled"`
	Registered          *bool   `json:"registered"`
}

// sip reports whether the account is a SIP account: newer firmware lists
// local and Microsoft Teams accounts beside them (accountType "local",
// "msteams"; a SIP account is "general"), older firmware has no
// accountType.
func (a *twoNAccount) sip() bool {
	return a.AccountType == nil || !slices.Contains([]string{"local", "msteams"}, strings.ToLower(*a.AccountType))
}

// number is the account's number; its place in the list, from 1, when
// the device does not say.
func (a *twoNAccount) number(i int) int {
	if a.Account.ok {
		return int(a.Account.v)
	}
	return i + 1
}

// settings2N picks the account the settings describe: the first enabled
// SIP account (on newer firmware account 1 may be disabled while account
// 2 registers), else account 1, else the first listed; nil for none.
func settings2N(accounts []twoNAccount) *twoNAccount {
	var first *twoNAccount
	for i := range accounts {
		a := &accounts[i]
		if a.sip() && a.Enabled != nil && *a.Enabled {
			return a
		}
		if first == nil || a.number(i) == 1 {
			first = a
		}
	}
	return first
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
	if a := settings2N(r.Accounts); a != nil {
		s.Enable, s.User, s.Realm = a.Enabled, a.SIPNumber, a.Domain
		s.Proxy = hostPort(a.ProxyAddress, a.ProxyPort.ptr())
		if s.Proxy == nil || *s.Proxy == "" { // registering through the registrar alone
			if reg := hostPort(a.RegistrarAddress, a.RegistrarPort.ptr()); reg != nil && *reg != "" {
				s.Proxy = reg
			}
		}
	}
	return s, nil
}

// decode2NStatus decodes /api/phone/status: every account listed, those
// that are disabled, do not register or are not SIP accounts as OFFLINE
// (the boundary drops them).
func decode2NStatus(op string, body []byte) (*device.SIPStatus, error) {
	var r struct {
		Accounts []twoNAccount `json:"accounts"`
	}
	if err := decode2N(op, body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{Accounts: make([]device.AccountStatus, 0, min(len(r.Accounts), 8))}
	for i := range r.Accounts {
		a := &r.Accounts[i]
		as := device.AccountStatus{Account: a.number(i), State: device.StatusOffline}
		switch {
		case !a.sip(), a.Enabled != nil && !*a.Enabled, a.RegistrationEnabled != nil && !*a.RegistrationEnabled:
		case a.Registered == nil:
			as.State, as.Raw = device.StatusError, "registered absent"
		case *a.Registered:
			as.State = device.StatusOK
		default:
			as.State = device.StatusError
		}
		st.Accounts = append(st.Accounts, as)
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
