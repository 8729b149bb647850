package basip

import (
	"bytes"
	"encoding/json"
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
