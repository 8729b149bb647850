package basip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/basip/basip_exporter/collector/device"
)

// DecodeSIPSettings decodes a settings answer. Unknown fields are ignored;
// a body that is not a JSON object, or a field of the wrong type, is an
// error.
func DecodeSIPSettings(body []byte) (*device.SIPSettings, error) {
	var s device.SIPSettings
	if err := decodeObject(body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

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
