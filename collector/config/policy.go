package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
	"go.yaml.in/yaml/v3"
)

// Policy names with a meaning of their own.
const (
	// DefaultPolicy applies to devices that name no policy.
	DefaultPolicy = "default"
	// NoPolicy, as a device's policy, turns policy checks off for it.
	NoPolicy = "none"
)

// Policy is the operator's intended SIP configuration. Every rule is
// optional; only the rules set are checked.
type Policy struct {
	Enabled              *bool    `yaml:"enabled,omitempty"`
	Transports           []string `yaml:"transports,omitempty"`
	RegistrationInterval *Range   `yaml:"registration_interval,omitempty"`
	CallTimeouts         []int64  `yaml:"call_timeouts,omitempty"`
	Proxy                string   `yaml:"proxy,omitempty"` // regular expression
	Realm                string   `yaml:"realm,omitempty"` // regular expression
	STUN                 string   `yaml:"stun,omitempty"`  // required | forbidden
	RingCode             *bool    `yaml:"ring_code,omitempty"`
	// Firmware sets the oldest firmware allowed, compared as dotted numbers.
	Firmware *FirmwareRule `yaml:"firmware,omitempty"`
	// PasswordExposed, when "forbidden", flags a device whose settings
	// answer carries the SIP password in clear.
	PasswordExposed string `yaml:"password_exposed,omitempty"`

	// Name is the policy's key in the file.
	Name    string         `yaml:"-"`
	ProxyRE *regexp.Regexp `yaml:"-"`
	RealmRE *regexp.Regexp `yaml:"-"`
}

// Range is an inclusive range; either end may be left open.
type Range struct {
	Min *int64 `yaml:"min,omitempty"`
	Max *int64 `yaml:"max,omitempty"`
}

// FirmwareRule is a policy's firmware rule.
type FirmwareRule struct {
	Min string `yaml:"min"`

	// MinVersion is Min parsed.
	MinVersion []int `yaml:"-"`
}

// PasswordForbidden is the value of a policy's password_exposed rule.
const PasswordForbidden = "forbidden"

// The values of a policy's stun rule.
const (
	STUNRequired  = "required"
	STUNForbidden = "forbidden"
)

// policies checks every policy; the error names each that is wrong.
func (v *validator) policies(cfg *Config) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		if err := v.policy(name, cfg.Policies[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// policy checks one policy; the error joins every problem of it.
func (v *validator) policy(name string, p *Policy) error {
	node := v.entry("policies", name)
	what := fmt.Sprintf("policy %q", name)
	if name == NoPolicy {
		return v.errorf(line(node), what, "", "%q is reserved: a device with policy %q is not checked", NoPolicy, NoPolicy)
	}
	if p == nil {
		return v.errorf(line(node), what, "", "empty policy: set at least one rule")
	}
	p.Name = name
	var errs []error
	for _, t := range p.Transports {
		if !slices.Contains(device.Transports, t) {
			errs = append(errs, v.errorf(fieldLine(node, "transports"), what, "transports", "%q is not one of %s", t, strings.Join(device.Transports, ", ")))
		}
	}
	if r := p.RegistrationInterval; r != nil {
		if r.Min == nil && r.Max == nil {
			errs = append(errs, v.errorf(fieldLine(node, "registration_interval"), what, "registration_interval", "set min, max or both"))
		}
		if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			errs = append(errs, v.errorf(fieldLine(node, "registration_interval"), what, "registration_interval", "min %d is greater than max %d", *r.Min, *r.Max))
		}
	}
	for _, t := range p.CallTimeouts {
		if !slices.Contains(device.CallTimeouts, t) {
			errs = append(errs, v.errorf(fieldLine(node, "call_timeouts"), what, "call_timeouts", "%d is not a documented call timeout (%s)", t, joinInts(device.CallTimeouts)))
		}
	}
	var err error
	if p.ProxyRE, err = compile(p.Proxy); err != nil {
		errs = append(errs, v.errorf(fieldLine(node, "proxy"), what, "proxy", "%v", err))
	}
	if p.RealmRE, err = compile(p.Realm); err != nil {
		errs = append(errs, v.errorf(fieldLine(node, "realm"), what, "realm", "%v", err))
	}
	if p.STUN != "" && p.STUN != STUNRequired && p.STUN != STUNForbidden {
		errs = append(errs, v.errorf(fieldLine(node, "stun"), what, "stun", "%q is not required or forbidden", p.STUN))
	}
	if fw := p.Firmware; fw != nil {
		ver, ok := ParseVersion(fw.Min)
		if !ok || !strictVersion.MatchString(fw.Min) {
			errs = append(errs, v.errorf(fieldLine(node, "firmware"), what, "firmware", "min %q is not a dotted version such as 3.9.2", fw.Min))
		}
		fw.MinVersion = ver
	}
	if p.PasswordExposed != "" && p.PasswordExposed != PasswordForbidden {
		errs = append(errs, v.errorf(fieldLine(node, "password_exposed"), what, "password_exposed", "%q is not %s", p.PasswordExposed, PasswordForbidden))
	}
	return errors.Join(errs...)
}

var strictVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// ParseVersion reads a firmware version as dotted numbers: "3.9.2" is
// [3 9 2]. Each part counts by its leading digits ("3.9.2-beta" is [3 9
// 2]); the version ends at the first part without one. ok is false when
// not even the first part is a number.
func ParseVersion(s string) (v []int, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	for part := range strings.SplitSeq(s, ".") {
		n, digits := 0, 0
		for _, c := range part {
			if c < '0' || c > '9' || digits == 9 {
				break
			}
			n, digits = 10*n+int(c-'0'), digits+1
		}
		if digits == 0 {
			break
		}
		v = append(v, n)
		if digits < len(part) { // "2-beta": nothing after it counts
			break
		}
	}
	return v, len(v) > 0
}

// CompareVersions compares two parsed versions part by part, a missing
// part counting as 0: -1 when a is older than b, 0 when equal, +1 when
// newer.
func CompareVersions(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func joinInts(ns []int64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, ", ")
}

func compile(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("bad regular expression: %s", se.Code)
		}
		return nil, errors.New("bad regular expression")
	}
	return re, nil
}

// resolvePolicy sets d.PolicyRef from d.Policy.
func (v *validator) resolvePolicy(cfg *Config, d *Device, node *yaml.Node, what string) error {
	switch d.Policy {
	case NoPolicy:
		return nil
	case "":
		d.PolicyRef = cfg.Policies[DefaultPolicy]
		return nil
	}
	p, ok := cfg.Policies[d.Policy]
	if !ok {
		return v.errorf(fieldLine(node, "policy"), what, "policy", "no policy named %q", d.Policy)
	}
	d.PolicyRef = p
	return nil
}
