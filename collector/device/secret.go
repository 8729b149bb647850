package device

import (
	"encoding/json"
	"log/slog"
	"reflect"
)

const redacted = "<secret>"

// Secret holds a credential: a device's admin password from the
// configuration, or the SIP password a device reveals. Every way of
// printing or marshalling it yields "<secret>" (an empty one stays empty);
// only Reveal returns the value, for the places that send or check it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v is redacted too.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalJSON implements json.Unmarshaler. A value that is not a string
// is an error that quotes nothing of it.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeOf(""), Field: "password"}
	}
	*s = Secret(v)
	return nil
}
