package vendors

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/basip/basip_exporter/collector/device"
)

// IS Sokol (ISCOM X1) rev.2 and rev.5, from SmartYard-Server's drivers
// (server/hw/ip/domophone/is/is.php and is5.php, getSipConfig) and its
// Zabbix Sokol v2/v5 templates; the vendor's documentation (doc.is74.ru)
// confirms Basic auth, user root. Plain JSON.
//
//	GET /v1/sip/settings (rev.5) or /sip/settings (rev.2)
//	      remote.domain, .port, .username, .password (in clear), .transport
//	GET /system/info      registerStatus: a boolean on rev.2, the text
//	                      "true"/"false" on rev.5
//
// The revision is found, not configured: the rev.5 path is asked first and
// a 404 there means rev.2; the revision found is kept, and asked again
// when its path answers 404 after having worked (a firmware change).

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

// decodeSokolSettings decodes a settings answer of either revision.
func decodeSokolSettings(body []byte) (*device.SIPSettings, error) {
	var r struct {
		Remote *struct {
			Domain    *string        `json:"domain"`
			Port      flexInt        `json:"port"`
			Username  *string        `json:"username"`
			Password  *device.Secret `json:"password"`
			Transport *string        `json:"transport"`
		} `json:"remote"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	s := &device.SIPSettings{}
	if m := r.Remote; m != nil {
		s.Proxy = hostPort(m.Domain, m.Port.ptr())
		s.User, s.Password, s.Transport = m.Username, m.Password, lowerTransport(m.Transport)
	}
	return s, nil
}

// decodeSokolStatus decodes /system/info: registerStatus true is
// registered, false not; there is no enabled flag.
func decodeSokolStatus(body []byte) (*device.SIPStatus, error) {
	var r struct {
		RegisterStatus json.RawMessage `json:"registerStatus"`
	}
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	st := &device.SIPStatus{}
	switch string(r.RegisterStatus) {
	case "", "null":
	case "true", `"true"`:
		st.Status = ptr(device.StatusOK)
	case "false", `"false"`:
		st.Status = ptr(device.StatusError)
	default:
		return nil, fmt.Errorf("field registerStatus: not a boolean")
	}
	return st, nil
}

// APIVersion is the revision found: "rev.5" or "rev.2".
func (c *Sokol) APIVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sokolRevisions[c.path]
}

// SIPSettings implements device.Client.
func (c *Sokol) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	c.mu.Lock()
	known := c.path
	c.mu.Unlock()
	paths := sokolPaths
	if known != "" {
		paths = []string{known}
	}
	var body []byte
	var op string
	var err error
	for _, p := range paths {
		if body, op, err = c.get(ctx, p, &res); notSupported(err) != device.ErrNotSupported {
			c.mu.Lock()
			if err == nil {
				c.path = p
			}
			c.mu.Unlock()
			break
		}
	}
	if err != nil {
		if known != "" && notSupported(err) == device.ErrNotSupported {
			c.mu.Lock()
			c.path = "" // found again next time
			c.mu.Unlock()
		}
		return nil, res, err
	}
	s, err := decodeSokolSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
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

// Info implements device.Client: Sokol has no identity endpoint known
// from a public client.
func (c *Sokol) Info(context.Context) (*device.Info, device.Result, error) {
	return nil, device.Result{}, device.ErrNotSupported
}
