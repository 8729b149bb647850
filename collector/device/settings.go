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
	Outbound             *string `json:"outbound,omitempty"` // omitted when absent: settings fingerprints predate it
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

// PasswordExposed reports whether the answer carries a SIP password in
// clear: a password field that is not a mask (MaskedPassword, empty, or
// only asterisks).
func (s *SIPSettings) PasswordExposed() bool {
	if s.Password == nil {
		return false
	}
	p := s.Password.Reveal()
	return p != MaskedPassword && strings.Trim(p, "*") != ""
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

// SIPStatus is a device's live SIP registration status.
type SIPStatus struct {
	// Status is "OK" (registered), "ERROR" (enabled, registration failed)
	// or "OFFLINE" (SIP disabled); nil when not sent.
	Status *string `json:"sip_status"`
	// LastAttempt is the Unix time in seconds of the last registration
	// attempt; nil when the device never attempted one. Decoders convert
	// answers in milliseconds with UnixSeconds.
	LastAttempt *float64 `json:"register_last_attempt"`
	// Raw is the device's own value when it is not one the exporter
	// knows (Status is then ERROR); shown in /debug, never exported.
	Raw string `json:"raw_status,omitempty"`
	// Accounts are the registrations of each enabled SIP account, for
	// devices that report several (2N, Beward); Status then follows from
	// them: OK when every one is registered, ERROR when one is not,
	// OFFLINE when there is none.
	Accounts []AccountStatus `json:"accounts,omitempty"`
}

// AccountStatus is the registration of one of a device's SIP accounts.
type AccountStatus struct {
	Account int `json:"account"` // from 1
	// State is one of the Status values as the decoder mapped the
	// device's own value: OFFLINE for an account that is disabled or not
	// a SIP account (the boundary drops it).
	State      string `json:"state"`
	Registered bool   `json:"registered"` // State is OK
	// Raw is the device's own value when it is not one the exporter
	// knows.
	Raw string `json:"raw,omitempty"`
}

// The values of SIPStatus.Status, one meaning for every vendor: OK when the
// account is registered, ERROR when it is enabled and not registered, and
// OFFLINE only when the device says the account or SIP is disabled.
const (
	StatusOK      = "OK"
	StatusError   = "ERROR"
	StatusOffline = "OFFLINE"
)

// MillisThreshold separates Unix times in seconds from Unix times in
// milliseconds: 10^11 seconds is the year 5138, 10^11 milliseconds is
// March 1973, so a timestamp above it can only be in milliseconds.
const MillisThreshold = 1e11

// UnixSeconds returns a Unix time that a device may send in seconds or in
// milliseconds (see MillisThreshold) in seconds.
func UnixSeconds(t float64) float64 {
	if t > MillisThreshold {
		return t / 1000
	}
	return t
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

// Equal reports whether s and o hold the same settings, field by field
// (the SIP password included): what reflect.DeepEqual says of them, at a
// fraction of its cost on every poll.
func (s *SIPSettings) Equal(o *SIPSettings) bool {
	if s == nil || o == nil {
		return s == o
	}
	return eq(s.Enable, o.Enable) && eq(s.Proxy, o.Proxy) && eq(s.Realm, o.Realm) && eq(s.Outbound, o.Outbound) &&
		eq(s.User, o.User) && eq(s.Password, o.Password) && eq(s.Transport, o.Transport) && eq(s.UserID, o.UserID) &&
		eq(s.RingCode, o.RingCode) && eq(s.Timeout, o.Timeout) && eq(s.RegistrationInterval, o.RegistrationInterval) &&
		s.STUN.equal(o.STUN)
}

func (t *STUN) equal(o *STUN) bool {
	if t == nil || o == nil {
		return t == o
	}
	return eq(t.IP, o.IP) && eq(t.Port, o.Port)
}

// eq compares two optional values: both absent, or both present and equal.
func eq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
