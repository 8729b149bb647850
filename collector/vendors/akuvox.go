package vendors

import (
	"context"
	"fmt"

	"github.com/basip/basip_exporter/collector/device"
)

// Akuvox E12, R20A, S532 (and the Omny VDP-10L built on them), from
// SmartYard-Server's driver (server/hw/ip/domophone/akuvox/akuvox.php
// getSipConfig; common/akuvox apiCall, getConfigParams and getSysinfo),
// its Zabbix E12 template and its exporter (akuvox.js); Digest auth, user
// admin.
//
//	POST /api {"target":"config","action":"get","data":{"item":[...]}}
//	      data: Config.Account1.GENERAL.Enable, .GENERAL.AuthName,
//	      .SIP.Server, .SIP.Port, .SIP.TransType ("0" UDP, "1" TCP, "2" TLS),
//	      .STUN.Enable, .STUN.Server, .STUN.Port
//	GET /api/system/info
//	      data.Account1.Status: "2" online, "1" failure, "0" (see
//	      accountStates); any other value an error, kept raw;
//	      data.Status.Model, data.Status.FirmwareVersion
//
// The SIP password is not among the items asked for.

// Akuvox is the client of an Akuvox device.
type Akuvox struct{ base }

var _ device.Client = (*Akuvox)(nil)

// akuvoxItems are the config items read for the SIP settings, in one
// request.
var akuvoxItems = []string{
	"Config.Account1.GENERAL.Enable", "Config.Account1.GENERAL.AuthName",
	"Config.Account1.SIP.Server", "Config.Account1.SIP.Port", "Config.Account1.SIP.TransType",
	"Config.Account1.STUN.Enable", "Config.Account1.STUN.Server", "Config.Account1.STUN.Port",
}

// akuvoxTransports are the values of SIP.TransType: "0" UDP is in the
// public driver; "1" TCP and "2" TLS follow Akuvox's order and are not
// confirmed by a public source.
var akuvoxTransports = map[string]string{"0": "udp", "1": "tcp", "2": "tls"}

// decodeAkuvoxSettings decodes the answer of the config get.
func decodeAkuvoxSettings(body []byte) (*device.SIPSettings, error) {
	kv, err := configValues(body)
	if err != nil {
		return nil, err
	}
	const p = "Config.Account1."
	s := &device.SIPSettings{User: kvString(kv, p+"GENERAL.AuthName")}
	if s.Enable, err = kvBool(kv, p+"GENERAL.Enable"); err != nil {
		return nil, err
	}
	port, err := kvInt(kv, p+"SIP.Port")
	if err != nil {
		return nil, err
	}
	s.Proxy = hostPort(kvString(kv, p+"SIP.Server"), port)
	if t, ok := kv[p+"SIP.TransType"]; ok {
		name, known := akuvoxTransports[t]
		if !known { // undocumented: kept as sent, as BAS-IP's are (all 0 in the state set)
			name = t
		}
		s.Transport = &name
	}
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

type akuvoxSystemInfo struct {
	Account1 *struct {
		Status *device.FlexString `json:"Status"`
	} `json:"Account1"`
	Status *struct {
		Model           device.FlexString `json:"Model"`
		FirmwareVersion device.FlexString `json:"FirmwareVersion"`
	} `json:"Status"`
}

func decodeAkuvoxSystemInfo(body []byte) (*akuvoxSystemInfo, error) {
	data, err := decodeEnvelopeData(body)
	var d akuvoxSystemInfo
	if err != nil || data == nil {
		return &d, err
	}
	if err := decodeJSON(data, &d); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return &d, nil
}

// decodeAkuvoxStatus decodes the registration of /api/system/info.
func decodeAkuvoxStatus(body []byte) (*device.SIPStatus, error) {
	d, err := decodeAkuvoxSystemInfo(body)
	if err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	if d.Account1 != nil {
		accountStatus(st, d.Account1.Status)
	}
	return st, nil
}

// decodeAkuvoxInfo decodes the identity of /api/system/info.
func decodeAkuvoxInfo(body []byte) (*device.Info, error) {
	d, err := decodeAkuvoxSystemInfo(body)
	if err != nil {
		return nil, err
	}
	i := &device.Info{}
	if d.Status != nil {
		i.Model, i.Firmware = d.Status.Model, d.Status.FirmwareVersion
	}
	return i, nil
}

// SIPSettings implements device.Client.
func (c *Akuvox) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.post(ctx, "/api", map[string]any{"target": "config", "action": "get", "data": map[string]any{"item": akuvoxItems}}, &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decodeAkuvoxSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Akuvox) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/system/info", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeAkuvoxStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// Info implements device.Client.
func (c *Akuvox) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/system/info", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeAkuvoxInfo(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return i, res, nil
}
