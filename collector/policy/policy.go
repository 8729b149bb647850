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
// stands for Rules[i] (or Fields[i]). A check not made has its Checked bit
// clear. Being two integers, results cost no allocation per device.
type Results struct {
	Checked, Violated uint16
}

func (r *Results) set(i int, violated bool) {
	r.Checked |= 1 << i
	if violated {
		r.Violated |= 1 << i
	}
}

// Each calls f for every check made, in the order of names (Rules or
// Fields).
func (r Results) Each(names []string, f func(name string, violated bool)) {
	for i, n := range names {
		if r.Checked&(1<<i) != 0 {
			f(n, r.Violated&(1<<i) != 0)
		}
	}
}

// Get reports whether check i was made and whether it is violated.
func (r Results) Get(i int) (checked, violated bool) {
	return r.Checked&(1<<i) != 0, r.Violated&(1<<i) != 0
}

// Compliant reports whether no check is violated.
func (r Results) Compliant() bool { return r.Violated == 0 }

// The rule names, the `rule` label of basip_sip_policy_violation: the
// policy's keys.
const (
	RuleEnabled              = "enabled"
	RuleTransports           = "transports"
	RuleRegistrationInterval = "registration_interval"
	RuleCallTimeouts         = "call_timeouts"
	RuleProxy                = "proxy"
	RuleRealm                = "realm"
	RuleSTUN                 = "stun"
	RuleRingCode             = "ring_code"
)

// Rules are the rule names in the order of Results' bits.
var Rules = []string{RuleEnabled, RuleTransports, RuleRegistrationInterval, RuleCallTimeouts, RuleProxy, RuleRealm, RuleSTUN, RuleRingCode}

// Fields are the settings fields with a documented constraint, the `field`
// label of basip_sip_schema_violation, in the order of Results' bits.
var Fields = []string{"registration_interval", "timeout", "transport", "user", "user_id", "password"}

// Evaluate checks s against p. It checks every rule p sets whose field the
// device sent; a rule on a field the device did not send is not evaluated.
func Evaluate(p *config.Policy, s *device.SIPSettings) Results {
	var r Results
	if p.Enabled != nil && s.Enable != nil {
		r.set(0, *s.Enable != *p.Enabled)
	}
	if len(p.Transports) > 0 && s.Transport != nil {
		r.set(1, !slices.Contains(p.Transports, strings.ToLower(*s.Transport)))
	}
	if rng := p.RegistrationInterval; rng != nil && s.RegistrationInterval != nil {
		v := *s.RegistrationInterval
		r.set(2, (rng.Min != nil && v < *rng.Min) || (rng.Max != nil && v > *rng.Max))
	}
	if len(p.CallTimeouts) > 0 && s.Timeout != nil {
		r.set(3, !slices.Contains(p.CallTimeouts, *s.Timeout))
	}
	if p.ProxyRE != nil && s.Proxy != nil {
		r.set(4, !p.ProxyRE.MatchString(*s.Proxy))
	}
	if p.RealmRE != nil && s.Realm != nil {
		r.set(5, !p.RealmRE.MatchString(*s.Realm))
	}
	if p.STUN != "" && s.STUN != nil {
		set := s.STUN.IP != nil && *s.STUN.IP != ""
		r.set(6, set != (p.STUN == config.STUNRequired))
	}
	if p.RingCode != nil && s.RingCode != nil {
		r.set(7, *s.RingCode != *p.RingCode)
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
		r.set(0, *v < minRegistrationInterval || *v > maxRegistrationInterval)
	}
	if v := s.Timeout; v != nil {
		r.set(1, !slices.Contains(device.CallTimeouts, *v))
	}
	if v := s.Transport; v != nil {
		r.set(2, *v != "udp" && *v != "tcp" && *v != "tls")
	}
	if v := s.User; v != nil {
		r.set(3, !lengthIn(*v, 1, 31) || !inCharset(*v))
	}
	if v := s.UserID; v != nil {
		r.set(4, !lengthIn(*v, 0, 31) || !inCharset(*v))
	}
	if p, ok := revealed(s); ok {
		r.set(5, !lengthIn(p, 6, 31) || !inCharset(p))
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
// false when the device does not reveal it (masked as WebPass, or absent).
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
	if s.Password == nil || s.Password.Reveal() == device.MaskedPassword {
		return "", false
	}
	return s.Password.Reveal(), true
}
