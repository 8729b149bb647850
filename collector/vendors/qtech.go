package vendors

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/basip/basip_exporter/collector/device"
)

// Qtech QDB-27C-H, from SmartYard-Server's driver
// (server/hw/ip/domophone/qtech/qtech.php getSipConfig; common/qtech
// apiCall, getParam and getSysinfo), its Zabbix QDB-27C-H template and its
// exporter (qtech.js): every request is a POST to /api of
// {"target","action","session":"","data"}, the answer's values in "data";
// Basic auth, user admin.
//
//	config get, one key a request:  Config.Account1.SIP.Server, .SIP.Port,
//	                                .GENERAL.UserName, .STUN.Enable,
//	                                .STUN.Server, .STUN.Port
//	sip get {"AccountId":0}         data.SipAccount.AccountStatus: "2" online,
//	                                "1" failure, "0" disabled
//	firmware status                 data.model, data.firmware
//
// The SIP password (Config.Account1.GENERAL.Pwd) comes back in clear when
// asked for; the exporter does not ask for it, so Qtech devices have no
// basip_sip_password_exposed series (Spec.PasswordChecked): a request that
// fetches a password only to report that it can be fetched is a risk of
// its own, and a 0 would claim what was never looked at.

// Qtech is the client of a Qtech device.
type Qtech struct{ base }

var _ device.Client = (*Qtech)(nil)

// qtechSettingsKeys are the config keys read for the SIP settings, one
// request each.
var qtechSettingsKeys = []string{
	"Config.Account1.SIP.Server", "Config.Account1.SIP.Port", "Config.Account1.GENERAL.UserName",
	"Config.Account1.STUN.Enable", "Config.Account1.STUN.Server", "Config.Account1.STUN.Port",
}

type qtechRequest struct {
	Target  string `json:"target"`
	Action  string `json:"action"`
	Session string `json:"session"`
	Data    any    `json:"data"`
}

// decodeEnvelopeData returns the "data" object of a Qtech or Akuvox answer.
func decodeEnvelopeData(body []byte) (json.RawMessage, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := decodeJSON(body, &env); err != nil {
		return nil, err
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil, nil
	}
	if env.Data[0] != '{' {
		return nil, fmt.Errorf("field data: not an object")
	}
	return env.Data, nil
}

// configValues decodes the data of a config get: key to value, values as
// text (numbers and booleans written as they are).
func configValues(body []byte) (map[string]string, error) {
	data, err := decodeEnvelopeData(body)
	if err != nil || data == nil {
		return map[string]string{}, err
	}
	var raw map[string]device.FlexString
	if err := decodeJSON(data, &raw); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = string(v)
	}
	return out, nil
}

// qtechSettings maps the config values onto the SIP settings.
func qtechSettings(kv map[string]string) (*device.SIPSettings, error) {
	const p = "Config.Account1."
	s := &device.SIPSettings{User: kvString(kv, p+"GENERAL.UserName")}
	port, err := kvInt(kv, p+"SIP.Port")
	if err != nil {
		return nil, err
	}
	s.Proxy = hostPort(kvString(kv, p+"SIP.Server"), port)
	enabled, err := kvBool(kv, p+"STUN.Enable")
	if err != nil {
		return nil, err
	}
	stunPort, err := kvInt(kv, p+"STUN.Port")
	if err != nil {
		return nil, err
	}
	s.STUN = stun(enabled, kvString(kv, p+"STUN.Server"), stunPort)
	return s, nil
}

// accountStates are Qtech's and Akuvox's AccountStatus: "2" registered,
// "1" failure. "0" is "Disable" in the public Zabbix templates' value
// maps, but their triggers fire on it as "SIP: Registration failure"
// (SmartYard-Server install/monitoring/zabbix/templates, QDB-27C-H and
// E12): it is an error here too; an account the settings say is
// disabled is OFFLINE (the boundary's rule), which Akuvox's settings
// tell (GENERAL.Enable) and Qtech's, as read, do not.
var accountStates = map[string]string{"2": device.StatusOK, "1": device.StatusError, "0": device.StatusError}

// accountStatus maps an AccountStatus onto st; nil is not sent.
func accountStatus(st *device.SIPStatus, v *device.FlexString) {
	if v != nil {
		s, raw := mapState(string(*v), accountStates)
		st.Status, st.Raw = &s, raw
	}
}

// decodeQtechStatus decodes the answer of sip get.
func decodeQtechStatus(body []byte) (*device.SIPStatus, error) {
	data, err := decodeEnvelopeData(body)
	if err != nil || data == nil {
		return &device.SIPStatus{}, err
	}
	var d struct {
		SipAccount *struct {
			AccountStatus *device.FlexString `json:"AccountStatus"`
		} `json:"SipAccount"`
	}
	if err := decodeJSON(data, &d); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	st := &device.SIPStatus{}
	if d.SipAccount != nil {
		accountStatus(st, d.SipAccount.AccountStatus)
	}
	return st, nil
}

// decodeQtechInfo decodes the answer of firmware status.
func decodeQtechInfo(body []byte) (*device.Info, error) {
	data, err := decodeEnvelopeData(body)
	if err != nil || data == nil {
		return &device.Info{}, err
	}
	var d struct {
		Model    device.FlexString `json:"model"`
		Firmware device.FlexString `json:"firmware"`
	}
	if err := decodeJSON(data, &d); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return &device.Info{Model: d.Model, Firmware: d.Firmware}, nil
}

// SIPSettings implements device.Client: one request per key, in turn.
func (c *Qtech) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	kv := map[string]string{}
	for _, key := range qtechSettingsKeys {
		body, op, err := c.post(ctx, "/api", qtechRequest{Target: "config", Action: "get", Data: map[string]string{"config_key": key}}, &res)
		if err != nil {
			return nil, res, err
		}
		vals, err := configValues(body)
		if err != nil {
			return nil, res, decodeError(op, err)
		}
		if v, ok := vals[key]; ok {
			kv[key] = v
		}
	}
	s, err := qtechSettings(kv)
	if err != nil {
		return nil, res, decodeError("POST /api", err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Qtech) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.post(ctx, "/api", qtechRequest{Target: "sip", Action: "get", Data: map[string]int{"AccountId": 0}}, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeQtechStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// Info implements device.Client.
func (c *Qtech) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.post(ctx, "/api", qtechRequest{Target: "firmware", Action: "status", Data: struct{}{}}, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeQtechInfo(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return i, res, nil
}
