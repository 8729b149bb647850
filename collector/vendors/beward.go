package vendors

import (
	"context"
	"fmt"
	"sync/atomic"

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
type Beward struct {
	base
	// enabled are AccountEnable1 and AccountEnable2 of the settings last
	// read (tri): regstatus says nothing of them, and
	// sends AccountReg2=0 for an account 2 never set up.
	enabled [2]atomic.Int32
}

var _ device.Client = (*Beward)(nil)

// bewardSettingsKeys are the keys read from sip_cgi?action=get.
var bewardSettingsKeys = []string{"AccountEnable1", "AccountEnable2", "AccUser1", "AccPassword1",
	"RegServerUrl1", "RegServerPort1", "NatEnable1", "StunUrl1", "StunPort1"}

// decodeBewardSettings decodes sip_cgi?action=get, with the enabled
// flags of accounts 1 and 2.
func decodeBewardSettings(body []byte) (*device.SIPSettings, [2]*bool, error) {
	var enabled [2]*bool
	kv, err := parseKeyValues(body, bewardSettingsKeys...)
	if err != nil {
		return nil, enabled, err
	}
	s := &device.SIPSettings{User: kvString(kv, "AccUser1"), Password: kvSecret(kv, "AccPassword1")}
	for i := range enabled {
		if enabled[i], err = kvBool(kv, fmt.Sprintf("AccountEnable%d", i+1)); err != nil {
			return nil, enabled, err
		}
	}
	s.Enable = enabled[0]
	port, err := kvInt(kv, "RegServerPort1")
	if err != nil {
		return nil, enabled, err
	}
	s.Proxy = hostPort(kvString(kv, "RegServerUrl1"), port)
	nat, err := kvBool(kv, "NatEnable1")
	if err != nil {
		return nil, enabled, err
	}
	stunPort, err := kvInt(kv, "StunPort1")
	if err != nil {
		return nil, enabled, err
	}
	s.STUN = stun(nat, kvString(kv, "StunUrl1"), stunPort)
	return s, enabled, nil
}

// decodeBewardStatus decodes sip_cgi?action=regstatus: AccountRegN is 1
// (registered) or 0. enabled are the accounts' flags from the settings
// (0 unknown, 1 on, 2 off): a disabled account is OFFLINE, and account 2
// counts only when the settings say it is enabled.
func decodeBewardStatus(body []byte, enabled [2]int32) (*device.SIPStatus, error) {
	kv, err := parseKeyValues(body, "AccountReg1", "AccountReg2")
	if err != nil {
		return nil, err
	}
	st := &device.SIPStatus{Accounts: []device.AccountStatus{}}
	for n := 1; n <= 2; n++ {
		key := fmt.Sprintf("AccountReg%d", n)
		v, ok := kv[key]
		if !ok {
			continue
		}
		a := device.AccountStatus{Account: n}
		switch {
		case enabled[n-1] == flagOff, n == 2 && enabled[1] != flagOn:
			a.State = device.StatusOffline
		default:
			a.State, a.Raw = mapState(v, bewardStates)
		}
		st.Accounts = append(st.Accounts, a)
	}
	return st, nil
}

// bewardStates are the values of AccountRegN.
var bewardStates = map[string]string{"1": device.StatusOK, "0": device.StatusError}

// decodeBewardInfo decodes systeminfo_cgi?action=get.
func decodeBewardInfo(body []byte) (*device.Info, error) {
	kv, err := parseKeyValues(body, "DeviceModel", "SoftwareVersion", "HardwareVersion")
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
	s, enabled, err := decodeBewardSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	for i, e := range enabled {
		c.enabled[i].Store(tri(e))
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
	s, err := decodeBewardStatus(body, [2]int32{c.enabled[0].Load(), c.enabled[1].Load()})
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
