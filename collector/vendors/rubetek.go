package vendors

import (
	"context"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
)

// Rubetek RV-3434 and RV-3437, from SmartYard-Server's driver
// (server/hw/ip/domophone/rubetek/rubetek.php, getSipConfig and
// parseParamValue) and its Zabbix RV-3434 template; Basic auth, user
// api_user.
//
//	GET /api/v1/sip         key=value text: Acc1Login, Acc1Password (in
//	                        clear), Acc1SipServer, Acc1SipServerPort,
//	                        Acc1SipTransport, Acc1RegInterval, Acc1NATType
//	                        ("stun" or empty), Acc1StunServer, Acc1StunPort
//	GET /api/v1/reg_status  JSON acc1_register_status: "registered",
//	                        "unregistered" or "failed..." ("failed: 403");
//	                        any other value an error, kept raw
//	GET /api/v1/version     JSON model, firmware_version, serial_number
//	                        (the driver's getSysinfo, the template's items)

// Rubetek is the client of a Rubetek device.
type Rubetek struct{ base }

var _ device.Client = (*Rubetek)(nil)

// rubetekSettingsKeys are the keys read from /api/v1/sip.
var rubetekSettingsKeys = []string{"Acc1Login", "Acc1Password", "Acc1SipServer", "Acc1SipServerPort",
	"Acc1SipTransport", "Acc1RegInterval", "Acc1NATType", "Acc1StunServer", "Acc1StunPort"}

// decodeRubetekSettings decodes /api/v1/sip.
func decodeRubetekSettings(body []byte) (*device.SIPSettings, error) {
	kv, err := parseKeyValues(body, rubetekSettingsKeys...)
	if err != nil {
		return nil, err
	}
	s := &device.SIPSettings{User: kvString(kv, "Acc1Login"), Password: kvSecret(kv, "Acc1Password"),
		Transport: lowerTransport(kvString(kv, "Acc1SipTransport"))}
	port, err := kvInt(kv, "Acc1SipServerPort")
	if err != nil {
		return nil, err
	}
	s.Proxy = hostPort(kvString(kv, "Acc1SipServer"), port)
	if s.RegistrationInterval, err = kvInt(kv, "Acc1RegInterval"); err != nil {
		return nil, err
	}
	stunPort, err := kvInt(kv, "Acc1StunPort")
	if err != nil {
		return nil, err
	}
	var stunOn *bool
	if t, ok := kv["Acc1NATType"]; ok {
		stunOn = ptr(strings.EqualFold(t, "stun"))
	}
	s.STUN = stun(stunOn, kvString(kv, "Acc1StunServer"), stunPort)
	return s, nil
}

// decodeRubetekStatus decodes /api/v1/reg_status.
func decodeRubetekStatus(body []byte) (*device.SIPStatus, error) {
	var r struct {
		Status *string `json:"acc1_register_status"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	if r.Status == nil {
		return st, nil
	}
	v := strings.ToLower(strings.TrimSpace(*r.Status))
	state, raw := mapState(v, rubetekStates)
	if strings.HasPrefix(v, "failed") { // "failed: 403": the cause, for /debug
		raw = *r.Status
	}
	st.Status, st.Raw = &state, raw
	return st, nil
}

// rubetekStates are the values of acc1_register_status the Zabbix
// template maps; it passes any other through ("registering" is an error
// here, kept raw), and "failed..." carries a cause.
var rubetekStates = map[string]string{"registered": device.StatusOK, "unregistered": device.StatusError}

// SIPSettings implements device.Client.
func (c *Rubetek) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/v1/sip", &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decodeRubetekSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Rubetek) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/v1/reg_status", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeRubetekStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// decodeRubetekVersion decodes /api/v1/version.
func decodeRubetekVersion(body []byte) (*device.Info, error) {
	var r struct {
		Model    device.FlexString `json:"model"`
		Firmware device.FlexString `json:"firmware_version"`
		Serial   device.FlexString `json:"serial_number"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	return &device.Info{Model: r.Model, Firmware: r.Firmware, Serial: r.Serial}, nil
}

// Info implements device.Client.
func (c *Rubetek) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/v1/version", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeRubetekVersion(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return i, res, nil
}
