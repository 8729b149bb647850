package vendors

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// Ufanet Secret Top, Solo and Mini, from SmartYard-Server's driver
// (server/hw/ip/domophone/ufanet/ufanet.php, getSipConfig) and its Zabbix
// Secret Top template; Basic auth, user admin. Plain JSON.
//
//	GET /api/v1/configuration      sip.domain ("host:port"), sip.user,
//	                               sip.password (in clear)
//	GET :85/api/v1/status          sipreg: registered or not (the port is
//	                               the template's; status_port overrides it)
//	GET :85/cgi-bin/magicBox.cgi?action=getSerialNo, getMachineName,
//	    getSoftwareVersion, getDeviceVariant
//	                               INI text: sn=, name=, version=,
//	                               device_variant=

// Ufanet is the client of a Ufanet device: the web API on the address's
// port, the status on the status port, each its own connection.
type Ufanet struct {
	base
	status *devhttp.Authed
}

var _ device.Client = (*Ufanet)(nil)

// Close implements device.Client.
func (c *Ufanet) Close() {
	c.conn.Close()
	c.status.Close()
}

// decodeUfanetSettings decodes /api/v1/configuration.
func decodeUfanetSettings(body []byte) (*device.SIPSettings, error) {
	var r struct {
		SIP *struct {
			Domain   *string        `json:"domain"`
			User     *string        `json:"user"`
			Password *device.Secret `json:"password"`
		} `json:"sip"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	s := &device.SIPSettings{}
	if m := r.SIP; m != nil {
		s.User, s.Password = m.User, m.Password
		if m.Domain != nil {
			host, port, err := net.SplitHostPort(*m.Domain)
			if err != nil { // a host without a port
				s.Proxy = m.Domain
			} else {
				p, perr := strconv.ParseInt(port, 10, 64)
				if perr != nil {
					return nil, fmt.Errorf("field sip.domain: port is not a number")
				}
				s.Proxy = hostPort(&host, &p)
			}
		}
	}
	return s, nil
}

// decodeUfanetStatus decodes the status answer: sipreg true (or 1) is
// registered; there is no enabled flag.
func decodeUfanetStatus(body []byte) (*device.SIPStatus, error) {
	var r struct {
		SIPReg json.RawMessage `json:"sipreg"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	if v := string(r.SIPReg); v != "" && v != "null" {
		state, raw := mapState(strings.Trim(v, `"`), ufanetStates)
		st.Status, st.Raw = &state, raw
	}
	return st, nil
}

// ufanetStates are the values of sipreg: a boolean, or 1/0.
var ufanetStates = map[string]string{"true": device.StatusOK, "1": device.StatusOK, "false": device.StatusError, "0": device.StatusError}

// ufanetIdentity are the magicBox.cgi actions read for the identity, each
// an INI answer of one key: serial, name, firmware and model (the Zabbix
// template's device_variant; SmartYard-Server takes the name for it).
var ufanetIdentity = [4]struct{ action, key string }{
	{"getSerialNo", "sn"}, {"getMachineName", "name"}, {"getSoftwareVersion", "version"}, {"getDeviceVariant", "device_variant"},
}

// SIPSettings implements device.Client.
func (c *Ufanet) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/api/v1/configuration", &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decodeUfanetSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Ufanet) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	r := &devhttp.Request{Target: "/api/v1/status"}
	body, err := c.status.Fetch(ctx, r, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeUfanetStatus(body)
	if err != nil {
		return nil, res, decodeError(r.Op(), err)
	}
	return s, res, nil
}

// Info implements device.Client: the serial number, name, firmware and
// model from magicBox.cgi on the status port (SmartYard-Server's driver
// reads them with parse_ini_string; its template calls magicBox on port
// 85).
func (c *Ufanet) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	var vals [len(ufanetIdentity)]string
	for n, q := range ufanetIdentity {
		r := &devhttp.Request{Target: "/cgi-bin/magicBox.cgi?action=" + q.action}
		body, err := c.status.Fetch(ctx, r, &res)
		if err != nil {
			return nil, res, notSupported(err)
		}
		kv, err := parseKeyValues(body, q.key)
		if err != nil {
			return nil, res, decodeError(r.Op(), err)
		}
		vals[n] = kv[q.key]
	}
	return &device.Info{Serial: device.FlexString(vals[0]), Name: device.FlexString(vals[1]), Firmware: device.FlexString(vals[2]),
		Model: device.FlexString(vals[3])}, res, nil
}
