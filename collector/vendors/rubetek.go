package vendors

import (
	"context"
	"fmt"
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
//	                        "unregistered" or "failed..." ("failed: 403")

// Rubetek is the client of a Rubetek device.
type Rubetek struct{ base }

var _ device.Client = (*Rubetek)(nil)

// decodeRubetekSettings decodes /api/v1/sip.
func decodeRubetekSettings(body []byte) (*device.SIPSettings, error) {
	kv, err := parseKeyValues(body)
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
	switch v := strings.ToLower(strings.TrimSpace(*r.Status)); {
	case v == "registered":
		st.Status = ptr(device.StatusOK)
	case v == "unregistered" || strings.HasPrefix(v, "failed"):
		st.Status = ptr(device.StatusError)
	default:
		return nil, fmt.Errorf("field acc1_register_status: not a known status")
	}
	return st, nil
}

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

// Info implements device.Client: no identity endpoint of a known shape.
func (c *Rubetek) Info(context.Context) (*device.Info, device.Result, error) {
	return nil, device.Result{}, device.ErrNotSupported
}
