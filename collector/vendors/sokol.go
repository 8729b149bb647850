package vendors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/basip/basip_exporter/collector/device"
)

// IS Sokol (ISCOM X1) rev.2 and rev.5, from SmartYard-Server's drivers
// (server/hw/ip/domophone/is/is.php and is5.php, getSipConfig) and its
// Zabbix Sokol v2/v5 templates; the vendor's documentation (doc.is74.ru)
// confirms Basic auth, user root. Plain JSON.
//
//	GET /v1/sip/settings (rev.5) or /sip/settings (rev.2)
//	      remote.domain, .port, .username, .password (in clear),
//	      .transport (a string on rev.2, {"udp":true,"tcp":false} on
//	      rev.5), .domainRegister, .portRegister (rev.5: the registrar,
//	      the proxy when domain is empty)
//	GET /system/info      registerStatus: a boolean on rev.2, the text
//	                      "true"/"false" on rev.5; model, deviceID
//	GET /v2/system/versions  opt.name: the firmware (the driver's
//	                      getSysinfo, the templates' $.opt.name)
//
// The revision is found, not configured: the rev.5 path is asked first,
// and a 404 or an answer that is not settings there means rev.2; the
// revision found is kept, and found again when its path stops answering
// with settings (a firmware change).

// Sokol is the client of an IS Sokol device.
type Sokol struct {
	base
	mu   sync.Mutex
	path string // the settings path found; empty while unknown
}

var _ device.Client = (*Sokol)(nil)

// sokolPaths are the settings paths of rev.5 and rev.2, in the order
// tried.
var sokolPaths = []string{"/v1/sip/settings", "/sip/settings"}

// sokolRevisions name the revision of each of sokolPaths.
var sokolRevisions = map[string]string{"/v1/sip/settings": "rev.5", "/sip/settings": "rev.2"}

// sokolTransport is remote.transport: a string on rev.2, an object of
// flags on rev.5 ({"udp": true, "tcp": false}, SmartYard-Server is5.php
// setSip's PUT body, the GET shape inferred from it), the first flag set
// being the transport.
type sokolTransport struct{ v *string }

// UnmarshalJSON implements json.Unmarshaler.
func (t *sokolTransport) UnmarshalJSON(b []byte) error {
	switch b = bytes.TrimSpace(b); {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &t.v)
	case len(b) > 0 && b[0] == '{':
		var flags map[string]bool
		if err := json.Unmarshal(b, &flags); err != nil {
			return fmt.Errorf("not an object of booleans")
		}
		for _, name := range device.Transports {
			if flags[name] {
				t.v = ptr(name)
				return nil
			}
		}
		t.v = ptr("") // every flag off: the device names no transport
		return nil
	}
	return fmt.Errorf("not a string or an object")
}

// decodeSokolSettings decodes a settings answer of either revision.
func decodeSokolSettings(body []byte) (*device.SIPSettings, error) {
	var r struct {
		Remote *struct {
			Domain         *string        `json:"domain"`
			Port           flexInt        `json:"port"`
			DomainRegister *string        `json:"domainRegister"`
			PortRegister   flexInt        `json:"portRegister"`
			Username       *string        `json:"username"`
			Password       *device.Secret `json:"password"`
			Transport      sokolTransport `json:"transport"`
		} `json:"remote"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if r.Remote == nil { // not a settings answer: a panel's web server answering any path
		return nil, fmt.Errorf("no remote object")
	}
	m := r.Remote
	s := &device.SIPSettings{User: m.Username, Password: m.Password, Transport: m.Transport.v}
	s.Proxy = hostPort(m.Domain, m.Port.ptr())
	if s.Proxy == nil || *s.Proxy == "" { // rev.5 registering through its registrar alone
		if reg := hostPort(m.DomainRegister, m.PortRegister.ptr()); reg != nil && *reg != "" {
			s.Proxy = reg
		}
	}
	return s, nil
}

// sokolStates are the values of registerStatus: a boolean on rev.2, text
// on rev.5.
var sokolStates = map[string]string{"true": device.StatusOK, "false": device.StatusError}

// decodeSokolStatus decodes /system/info: registerStatus true is
// registered, false not, anything else an error kept raw; there is no
// enabled flag.
func decodeSokolStatus(body []byte) (*device.SIPStatus, error) {
	var r struct {
		RegisterStatus json.RawMessage `json:"registerStatus"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	if v := string(r.RegisterStatus); v != "" && v != "null" {
		state, raw := mapState(strings.Trim(v, `"`), sokolStates)
		st.Status, st.Raw = &state, raw
	}
	return st, nil
}

// decodeSokolInfo decodes /system/info's identity: model, deviceID.
func decodeSokolInfo(body []byte) (*device.Info, error) {
	var r struct {
		Model    device.FlexString `json:"model"`
		DeviceID device.FlexString `json:"deviceID"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	return &device.Info{Model: r.Model, Serial: r.DeviceID}, nil
}

// decodeSokolFirmware decodes /v2/system/versions: opt.name.
func decodeSokolFirmware(body []byte) (device.FlexString, error) {
	var v struct {
		Opt *struct {
			Name device.FlexString `json:"name"`
		} `json:"opt"`
	}
	if err := decodeJSON(body, &v); err != nil || v.Opt == nil {
		return "", err
	}
	return v.Opt.Name, nil
}

// APIVersion is the revision found: "rev.5" or "rev.2".
func (c *Sokol) APIVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sokolRevisions[c.path]
}

// SIPSettings implements device.Client. A path is kept only when its
// answer decodes: a web server that answers 200 to any path does not make
// it rev.5.
func (c *Sokol) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	c.mu.Lock()
	known := c.path
	c.mu.Unlock()
	paths := sokolPaths
	if known != "" {
		paths = []string{known}
	}
	var err error
	for _, p := range paths {
		var s *device.SIPSettings
		if s, err = c.readSettings(ctx, p, &res); err == nil {
			c.mu.Lock()
			c.path = p
			c.mu.Unlock()
			return s, res, nil
		}
		if r := device.ReasonOf(err); r != device.ReasonDecode && notSupported(err) != device.ErrNotSupported {
			break // the device failed, not the path
		}
	}
	if known != "" && (device.ReasonOf(err) == device.ReasonDecode || notSupported(err) == device.ErrNotSupported) {
		c.mu.Lock()
		c.path = "" // found again next time
		c.mu.Unlock()
	}
	return nil, res, err
}

// readSettings reads and decodes the settings at path.
func (c *Sokol) readSettings(ctx context.Context, path string, res *device.Result) (*device.SIPSettings, error) {
	body, op, err := c.get(ctx, path, res)
	if err != nil {
		return nil, err
	}
	s, err := decodeSokolSettings(body)
	if err != nil {
		return nil, decodeError(op, err)
	}
	return s, nil
}

// SIPStatus implements device.Client.
func (c *Sokol) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/system/info", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeSokolStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// Info implements device.Client: /system/info's identity, and the
// firmware from /v2/system/versions when the device has it.
func (c *Sokol) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, "/system/info", &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeSokolInfo(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	i.APIVersion = device.FlexString(c.APIVersion()) // the revision found, empty before the settings were read
	body, op, err = c.get(ctx, "/v2/system/versions", &res)
	switch {
	case notSupported(err) == device.ErrNotSupported:
	case err != nil:
		return nil, res, err
	default:
		if i.Firmware, err = decodeSokolFirmware(body); err != nil {
			return nil, res, decodeError(op, err)
		}
	}
	return i, res, nil
}
