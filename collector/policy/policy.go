// Package policy checks a device's SIP settings against the operator's
// policy and against the constraints the vendor documents. Its functions
// are pure: settings in, findings out.
package policy

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
)

// Results are the verdicts on a set of rules (or fields), as bits: bit i
// stands for Rule i (or Field i). A check not made has its Checked bit
// clear. Being two integers, results cost no allocation per device.
type Results struct {
	Checked, Violated uint16
}

// The bits of Results hold every rule and every field.
var (
	_ [16 - NumRules]struct{}
	_ [16 - NumFields]struct{}
)

func (r *Results) set(i int, violated bool) {
	r.Checked |= 1 << i
	if violated {
		r.Violated |= 1 << i
	}
}

// Each calls f for every check made, in the order of names (Rules[:] or
// Fields[:]).
func (r Results) Each(names []string, f func(name string, violated bool)) {
	for i, n := range names {
		if r.Checked&(1<<i) != 0 {
			f(n, r.Violated&(1<<i) != 0)
		}
	}
}

// Get reports whether check i (a Rule or a Field) was made and whether it
// is violated.
func (r Results) Get(i int) (checked, violated bool) {
	return r.Checked&(1<<i) != 0, r.Violated&(1<<i) != 0
}

// Compliant reports whether no check is violated.
func (r Results) Compliant() bool { return r.Violated == 0 }

// Rule is one rule of a policy: a bit of Results and an index of Rules.
type Rule int

// The rules, in the order of Results' bits.
const (
	RuleEnabled Rule = iota
	RuleTransports
	RuleRegistrationInterval
	RuleCallTimeouts
	RuleProxy
	RuleRealm
	RuleSTUN
	RuleRingCode
	RuleFirmware
	RulePasswordExposed
	NumRules
)

// Rules names every Rule, indexed by it: the `rule` label of
// basip_sip_policy_violation, which is the policy's key.
var Rules = [NumRules]string{
	RuleEnabled:              "enabled",
	RuleTransports:           "transports",
	RuleRegistrationInterval: "registration_interval",
	RuleCallTimeouts:         "call_timeouts",
	RuleProxy:                "proxy",
	RuleRealm:                "realm",
	RuleSTUN:                 "stun",
	RuleRingCode:             "ring_code",
	RuleFirmware:             "firmware",
	RulePasswordExposed:      "password_exposed",
}

func (r Rule) String() string { return Rules[r] }

func (r *Results) setRule(rule Rule, violated bool) { r.set(int(rule), violated) }

// Field is a settings field with a documented constraint: a bit of Results
// and an index of Fields.
type Field int

// The fields, in the order of Results' bits.
const (
	FieldRegistrationInterval Field = iota
	FieldTimeout
	FieldTransport
	FieldUser
	FieldUserID
	FieldPassword
	NumFields
)

// Fields names every Field, indexed by it: the `field` label of
// basip_sip_schema_violation.
var Fields = [NumFields]string{
	FieldRegistrationInterval: "registration_interval",
	FieldTimeout:              "timeout",
	FieldTransport:            "transport",
	FieldUser:                 "user",
	FieldUserID:               "user_id",
	FieldPassword:             "password",
}

func (f Field) String() string { return Fields[f] }

func (r *Results) setField(f Field, violated bool) { r.set(int(f), violated) }

// Evaluate checks s, and the firmware of info, against p. It checks every
// rule p sets whose field the device sent; a rule on a field the device did
// not send is not evaluated, nor is the firmware rule while the firmware is
// unknown (info nil, not collected, or without a version).
func Evaluate(p *config.Policy, s *device.SIPSettings, info *device.Info) Results {
	var r Results
	if p.Enabled != nil && s.Enable != nil {
		r.setRule(RuleEnabled, *s.Enable != *p.Enabled)
	}
	if len(p.Transports) > 0 && s.Transport != nil {
		r.setRule(RuleTransports, !slices.Contains(p.Transports, strings.ToLower(*s.Transport)))
	}
	if rng := p.RegistrationInterval; rng != nil && s.RegistrationInterval != nil {
		v := *s.RegistrationInterval
		r.setRule(RuleRegistrationInterval, (rng.Min != nil && v < *rng.Min) || (rng.Max != nil && v > *rng.Max))
	}
	if len(p.CallTimeouts) > 0 && s.Timeout != nil {
		r.setRule(RuleCallTimeouts, !slices.Contains(p.CallTimeouts, *s.Timeout))
	}
	if p.ProxyRE != nil && s.Proxy != nil {
		r.setRule(RuleProxy, !p.ProxyRE.MatchString(*s.Proxy))
	}
	if p.RealmRE != nil && s.Realm != nil {
		r.setRule(RuleRealm, !p.RealmRE.MatchString(*s.Realm))
	}
	if p.STUN != "" && s.STUN != nil {
		set := s.STUN.IP != nil && *s.STUN.IP != ""
		r.setRule(RuleSTUN, set != (p.STUN == config.STUNRequired))
	}
	if p.RingCode != nil && s.RingCode != nil {
		r.setRule(RuleRingCode, *s.RingCode != *p.RingCode)
	}
	if fw := p.Firmware; fw != nil && info != nil {
		if v, ok := config.ParseVersion(string(info.Firmware)); ok {
			r.setRule(RuleFirmware, config.CompareVersions(v, fw.MinVersion) < 0)
		}
	}
	if p.PasswordExposed == config.PasswordForbidden {
		r.setRule(RulePasswordExposed, s.PasswordExposed())
	}
	return r
}

// The documented constraints of the settings answer.
const (
	minRegistrationInterval = 30
	maxRegistrationInterval = 900
)

// sipCharset is the character set the vendor documents for user, user_id
// and password: letters, digits, white space and ~`!@#$%^&;*()_-+={[}]|"<,>.?/
const sipCharset = "~`!@#$%^&;*()_-+={[}]|\"<,>.?/"

func inCharset(s string) bool {
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
		case r < utf8.RuneSelf && strings.ContainsRune(sipCharset, r):
		default:
			return false
		}
	}
	return true
}

func lengthIn(s string, lo, hi int) bool {
	n := utf8.RuneCountInString(s)
	return n >= lo && n <= hi
}

// Schema checks every field the device sent that has a documented
// constraint. The password is checked only where the device reveals it.
func Schema(s *device.SIPSettings) Results {
	var r Results
	if v := s.RegistrationInterval; v != nil {
		r.setField(FieldRegistrationInterval, *v < minRegistrationInterval || *v > maxRegistrationInterval)
	}
	if v := s.Timeout; v != nil {
		r.setField(FieldTimeout, !slices.Contains(device.CallTimeouts, *v))
	}
	if v := s.Transport; v != nil {
		r.setField(FieldTransport, *v != "udp" && *v != "tcp" && *v != "tls")
	}
	if v := s.User; v != nil {
		r.setField(FieldUser, !lengthIn(*v, 1, 31) || !inCharset(*v))
	}
	if v := s.UserID; v != nil {
		r.setField(FieldUserID, !lengthIn(*v, 0, 31) || !inCharset(*v))
	}
	if p, ok := revealed(s); ok {
		r.setField(FieldPassword, !lengthIn(p, 6, 31) || !inCharset(p))
	}
	return r
}

// knownDefaults are passwords shipped as defaults or found in the vendor's
// examples, and the commonest weak ones.
var knownDefaults = []string{
	"123456", "123abc", "1234", "12345", "12345678", "123456789", "0000", "000000", "111111",
	"admin", "password", "qwerty", "abc123", "sip", "basip", "bas-ip",
}

// WeakPassword reports whether the device reveals a SIP password that is a
// known default, equals the SIP user, or is shorter than 8 characters. ok is
// false when the device does not reveal it (masked as WebPass, empty or
// asterisks, or absent).
func WeakPassword(s *device.SIPSettings) (weak, ok bool) {
	p, ok := revealed(s)
	if !ok {
		return false, false
	}
	switch {
	case utf8.RuneCountInString(p) < 8:
		return true, true
	case s.User != nil && p == *s.User:
		return true, true
	}
	for _, d := range knownDefaults {
		if strings.EqualFold(p, d) {
			return true, true
		}
	}
	return false, true
}

func revealed(s *device.SIPSettings) (string, bool) {
	if !s.PasswordExposed() {
		return "", false
	}
	return s.Password.Reveal(), true
}
