package basip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// SIPSettings is the answer of GET /api/vN/device/sip/settings. A nil field
// is one the device did not send: unknown, not zero.
type SIPSettings struct {
	Enable               *bool     `json:"enable"`
	Proxy                *string   `json:"proxy"`
	Realm                *string   `json:"realm"`
	User                 *string   `json:"user"`
	Password             *Password `json:"password"`
	Transport            *string   `json:"transport"`
	UserID               *string   `json:"user_id"`
	RingCode             *bool     `json:"is_enable_ring_code"`
	Timeout              *int64    `json:"timeout"`
	RegistrationInterval *int64    `json:"registration_interval"`
	STUN                 *STUN     `json:"stun"`
}

// STUN is the STUN server a device uses.
type STUN struct {
	IP   *string `json:"ip"`
	Port *int64  `json:"port"`
}

// MaskedPassword is what panels send instead of the SIP password.
const MaskedPassword = "WebPass"

// Password is the SIP password a device may reveal. It prints and marshals
// as "<secret>"; Reveal gives the value for the checks that need it.
type Password string

// Reveal returns the password.
func (p Password) Reveal() string { return string(p) }

// String implements fmt.Stringer.
func (p Password) String() string { return "<secret>" }

// GoString implements fmt.GoStringer.
func (p Password) GoString() string { return "<secret>" }

// MarshalJSON implements json.Marshaler.
func (p Password) MarshalJSON() ([]byte, error) { return []byte(`"<secret>"`), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (p *Password) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string", Type: reflectString, Field: "password"}
	}
	*p = Password(s)
	return nil
}

// DecodeSIPSettings decodes a settings answer. Unknown fields are ignored;
// a body that is not a JSON object, or a field of the wrong type, is an
// error.
func DecodeSIPSettings(body []byte) (*SIPSettings, error) {
	var s SIPSettings
	if err := decodeObject(body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// STUNAddress is the STUN server as host:port (or host alone when the device
// sent no port), empty when none is set.
func (s *SIPSettings) STUNAddress() string {
	if s.STUN == nil || s.STUN.IP == nil || *s.STUN.IP == "" {
		return ""
	}
	if s.STUN.Port == nil {
		return *s.STUN.IP
	}
	host := *s.STUN.IP
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, *s.STUN.Port)
}

var reflectString = reflect.TypeOf("")

func decodeToken(body []byte) (string, error) {
	var r struct {
		Token string `json:"token"`
	}
	if err := decodeObject(body, &r); err != nil {
		return "", err
	}
	if r.Token == "" {
		return "", errors.New("login answer has no token")
	}
	return r.Token, nil
}

func expectObject(body []byte) error {
	b := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(b) == 0:
		return errors.New("empty body")
	case b[0] != '{':
		return fmt.Errorf("body is not a JSON object (starts with %q)", printable(b[0]))
	}
	return nil
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf("\\x%02x", c)
}

// cleanJSONError keeps the decoder's description of what was wrong without
// echoing any of the body.
func cleanJSONError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %s: got JSON %s, want %s", te.Field, te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at offset %d", se.Offset)
	}
	return errors.New("malformed JSON")
}
