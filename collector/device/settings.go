package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// SIPSettings are a device's SIP settings. A nil field is one the device
// did not send: unknown, not zero.
type SIPSettings struct {
	Enable               *bool   `json:"enable"`
	Proxy                *string `json:"proxy"`
	Realm                *string `json:"realm"`
	User                 *string `json:"user"`
	Password             *Secret `json:"password"`
	Transport            *string `json:"transport"`
	UserID               *string `json:"user_id"`
	RingCode             *bool   `json:"is_enable_ring_code"`
	Timeout              *int64  `json:"timeout"`
	RegistrationInterval *int64  `json:"registration_interval"`
	STUN                 *STUN   `json:"stun"`
}

// STUN is the STUN server a device uses.
type STUN struct {
	IP   *string `json:"ip"`
	Port *int64  `json:"port"`
}

// MaskedPassword is what panels send instead of the SIP password.
const MaskedPassword = "WebPass"

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

// SIPStatus is a device's live SIP registration status.
type SIPStatus struct {
	// Status is "OK" (registered), "ERROR" (enabled, registration failed)
	// or "OFFLINE" (SIP disabled); nil when not sent.
	Status *string `json:"sip_status"`
	// LastAttempt is the Unix time of the last registration attempt; nil
	// when the device never attempted one.
	LastAttempt *float64 `json:"register_last_attempt"`
}

// Info is a device's identity: model, type and firmware.
type Info struct {
	Name       FlexString `json:"device_name"`
	Model      FlexString `json:"device_model"`
	Type       FlexString `json:"device_type"`
	Firmware   FlexString `json:"firmware_version"`
	APIVersion FlexString `json:"api_version"`
	Serial     FlexString `json:"device_serial_number"`
}

// FlexString decodes a JSON string, number or boolean as text, since
// firmware versions differ in how they type these fields; null is empty.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case bytes.Equal(b, []byte("true")) || bytes.Equal(b, []byte("false")):
		*f = FlexString(b)
	default:
		n, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(n, 0) {
			return &json.UnmarshalTypeError{Value: "non-scalar", Type: reflect.TypeOf("")}
		}
		*f = FlexString(b)
	}
	return nil
}
