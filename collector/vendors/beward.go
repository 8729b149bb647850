package vendors

import (
	"context"
	"fmt"

	"github.com/basip/basip_exporter/collector/device"
)

// Beward DKS and DS panels, from SmartYard-Server's driver
// (server/hw/ip/domophone/beward/beward.php, getSipConfig; common/beward
// for systeminfo), its Zabbix DKS/DS templates and its exporter (beward.js),
// and Selpol's SipTrait: key=value text, one pair a line; Basic auth
// (Digest-capable), user admin.
//
//	GET /cgi-bin/sip_cgi?action=get         AccountEnable1, AccUser1,
//	                                        AccPassword1 (in clear),
//	                                        RegServerUrl1, RegServerPort1,
//	                                        NatEnable1 (on/off), StunUrl1, StunPort1
//	GET /cgi-bin/sip_cgi?action=regstatus   AccountReg1=1 (online) or 0, AccountReg2
//	GET /cgi-bin/systeminfo_cgi?action=get  DeviceModel, SoftwareVersion

// Beward is the client of a Beward device.
type Beward struct{ base }

var _ device.Client = (*Beward)(nil)

// decodeBewardSettings decodes sip_cgi?action=get.
func decodeBewardSettings(body []byte) (*device.SIPSettings, error) {
	kv, err := parseKeyValues(body)
	if err != nil {
		return nil, err
	}
	s := &device.SIPSettings{User: kvString(kv, "AccUser1"), Password: kvSecret(kv, "AccPassword1")}
	if s.Enable, err = kvBool(kv, "AccountEnable1"); err != nil {
		return nil, err
	}
	port, err := kvInt(kv, "RegServerPort1")
	if err != nil {
		return nil, err
	}
	s.Proxy = hostPort(kvString(kv, "RegServerUrl1"), port)
	nat, err := kvBool(kv, "NatEnable1")
	if err != nil {
		return nil, err
	}
	stunPort, err := kvInt(kv, "StunPort1")
	if err != nil {
		return nil, err
	}
	s.STUN = stun(nat, kvString(kv, "StunUrl1"), stunPort)
	return s, nil
}

// decodeBewardStatus decodes sip_cgi?action=regstatus: AccountRegN is 1
// (registered) or 0; account 1 is the device's.
func decodeBewardStatus(body []byte) (*device.SIPStatus, error) {
	kv, err := parseKeyValues(body)
	if err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	for n := 1; n <= 2; n++ {
		key := fmt.Sprintf("AccountReg%d", n)
		reg, err := kvBool(kv, key)
		if err != nil {
			return nil, err
		}
		if reg == nil {
			continue
		}
		st.Accounts = append(st.Accounts, device.AccountStatus{Account: n, Registered: *reg})
		if n == 1 {
			st.Status = registration(nil, *reg) // 0 says offline, which is "not registered": no enabled flag here
		}
	}
	return st, nil
}

// decodeBewardInfo decodes systeminfo_cgi?action=get.
func decodeBewardInfo(body []byte) (*device.Info, error) {
	kv, err := parseKeyValues(body)
	if err != nil {
		return nil, err
	}
	return &device.Info{Model: device.FlexString(kv["DeviceModel"]), Firmware: device.FlexString(kv["SoftwareVersion"])}, nil
}

// SIPSettings implements device.Client.
func (c *Beward) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/cgi-bin/sip_cgi?action=get", &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decodeBewardSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Beward) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/cgi-bin/sip_cgi?action=regstatus", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeBewardStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// Info implements device.Client.
func (c *Beward) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/cgi-bin/systeminfo_cgi?action=get", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeBewardInfo(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return i, res, nil
}
