package vendors

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/internal/safetext"
)

// The boundary between what a device sends and the device model. Every
// client New returns, BAS-IP's included, is wrapped in a guard that holds
// each answer to the same guarantees, whatever the vendor's decoder did:
//
//   - text from the device (proxy, realm, user, transport, model, firmware,
//     ...) is safe for every output: controls (C0, C1), bidi overrides and
//     bytes that are not UTF-8 are escaped as \x1b, \u202e, \xff
//     (safetext.Escape), and the value is cut to MaxTextLen bytes;
//   - the proxy has one form for every vendor (NormalizeProxy), the
//     transport is lower case, and a device of a vendor that makes door
//     panels only has the type "panel";
//   - accounts are unique by number, numbered within the vendor's
//     documented count, and only enabled SIP accounts are kept; an answer
//     that lists more is a decode error that gives the count;
//   - the registration is one of device.RegistrationStatuses: a value the
//     exporter does not know is an error kept raw for /debug, never a
//     decode failure; the device's state follows from its accounts: ok when
//     every enabled account is registered, error when one is not, offline
//     when none is enabled (or, for a device of one account, when the
//     settings last read say SIP is disabled).

// MaxTextLen bounds a text value from a device, in bytes.
const MaxTextLen = 256

// Spec is what the boundary knows of a vendor's devices, from the
// vendor's documentation and the public clients named in its file.
type Spec struct {
	// MaxAccounts is the number of SIP accounts the vendor documents; a
	// device of more than one reports each (basip_sip_account_registered).
	MaxAccounts int
	// Type is the device type of every device of the vendor, empty when
	// the device says it (BAS-IP's /api/info device_type).
	Type string
	// PasswordChecked says the settings answer read is one that carries
	// the SIP password when the device gives it out: only then is its
	// exposure reported (basip_sip_password_exposed).
	PasswordChecked bool
}

// Panel is the device type of a door panel.
const Panel = "panel"

// specs are the vendors' Specs. Every vendor here but BAS-IP is read by a
// public client's door-panel ("domophone") driver.
var specs = map[string]Spec{
	config.VendorBASIP:   {MaxAccounts: 1, PasswordChecked: true},
	config.Vendor2N:      {MaxAccounts: 4, Type: Panel},                        // the manual: up to 4 accounts; /api/phone/config has no password field
	config.VendorBeward:  {MaxAccounts: 2, Type: Panel, PasswordChecked: true}, // AccountReg1, AccountReg2
	config.VendorQtech:   {MaxAccounts: 1, Type: Panel},                        // the password key is never asked for
	config.VendorAkuvox:  {MaxAccounts: 1, Type: Panel},                        // the password item is never asked for
	config.VendorSokol:   {MaxAccounts: 1, Type: Panel, PasswordChecked: true},
	config.VendorRubetek: {MaxAccounts: 1, Type: Panel, PasswordChecked: true},
	config.VendorUfanet:  {MaxAccounts: 1, Type: Panel, PasswordChecked: true},
	// DS-KV and DS-KD door stations; the SIP list's password is read when
	// the device sends it (hikvision.go).
	config.VendorHikvision: {MaxAccounts: 1, Type: Panel, PasswordChecked: true},
}

// SpecOf is the Spec of vendor; BAS-IP's for an unknown one.
func SpecOf(vendor string) Spec {
	if s, ok := specs[vendor]; ok {
		return s
	}
	return specs[config.VendorBASIP]
}

// guard is a device.Client whose answers cross the boundary.
type guard struct {
	device.Client
	spec Spec
	// sipEnabled is the SIP enabled flag of the settings last read (tri).
	sipEnabled atomic.Int32
}

func newGuard(c device.Client, spec Spec) *guard { return &guard{Client: c, spec: spec} }

// A flag the device may not have sent, for an atomic.Int32.
const (
	flagUnknown int32 = iota
	flagOn
	flagOff
)

// tri is b as a flag.
func tri(b *bool) int32 {
	switch {
	case b == nil:
		return flagUnknown
	case *b:
		return flagOn
	}
	return flagOff
}

// SIPSettings implements device.Client.
func (g *guard) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	s, res, err := g.Client.SIPSettings(ctx)
	if err != nil || s == nil {
		return s, res, err
	}
	finishSettings(s)
	g.sipEnabled.Store(tri(s.Enable))
	return s, res, nil
}

// SIPStatus implements device.Client.
func (g *guard) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	st, res, err := g.Client.SIPStatus(ctx)
	if err != nil || st == nil {
		return st, res, err
	}
	if err := finishStatus(st, g.spec, g.sipEnabled.Load() == flagOff); err != nil {
		return nil, res, &device.Error{Reason: device.ReasonDecode, Op: "SIP status", Err: err}
	}
	return st, res, nil
}

// Info implements device.Client.
func (g *guard) Info(ctx context.Context) (*device.Info, device.Result, error) {
	i, res, err := g.Client.Info(ctx)
	if err != nil || i == nil {
		return i, res, err
	}
	finishInfo(i, g.spec)
	return i, res, nil
}

// SafeText makes a device's text safe for every output: invalid UTF-8
// replaced (U+FFFD), controls and bidi overrides escaped, cut to
// MaxTextLen bytes on a character boundary.
func SafeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = safetext.Escape(s)
	if len(s) > MaxTextLen {
		cut := MaxTextLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func safePtr(p *string) {
	if p != nil {
		*p = SafeText(*p)
	}
}

// finishSettings brings decoded settings to the model's one form.
func finishSettings(s *device.SIPSettings) {
	for _, p := range []*string{s.Realm, s.Outbound, s.User, s.UserID} {
		safePtr(p)
	}
	if s.Proxy != nil {
		s.Proxy = ptr(NormalizeProxy(*s.Proxy))
	}
	if s.Transport != nil {
		s.Transport = ptr(SafeText(strings.ToLower(strings.TrimSpace(*s.Transport))))
	}
	if s.STUN != nil {
		safePtr(s.STUN.IP)
	}
}

// finishInfo makes the identity safe and gives it the vendor's type.
func finishInfo(i *device.Info, spec Spec) {
	for _, f := range []*device.FlexString{&i.Name, &i.Model, &i.Type, &i.Firmware, &i.APIVersion, &i.Serial} {
		*f = device.FlexString(SafeText(strings.TrimSpace(string(*f))))
	}
	if spec.Type != "" {
		i.Type = device.FlexString(spec.Type)
	}
}

// finishStatus checks the accounts and derives the device's state. An
// error is an answer that is not a device's.
func finishStatus(st *device.SIPStatus, spec Spec, settingsDisabled bool) error {
	if st.Status != nil {
		v, raw := knownStatus(*st.Status)
		st.Status = &v
		if raw != "" {
			st.Raw = raw
		}
	}
	st.Raw = SafeText(st.Raw)
	if st.Accounts != nil {
		if err := finishAccounts(st, spec.MaxAccounts); err != nil {
			return err
		}
	}
	if settingsDisabled && spec.MaxAccounts <= 1 && st.Status != nil && *st.Status != device.StatusOK {
		st.Status = ptr(device.StatusOffline)
	}
	return nil
}

// knownStatus maps a status to one of the model's values, with the raw
// value when it is not one of them.
func knownStatus(s string) (status, raw string) {
	for _, v := range []string{device.StatusOK, device.StatusError, device.StatusOffline} {
		if strings.EqualFold(strings.TrimSpace(s), v) {
			return v, ""
		}
	}
	return device.StatusError, s
}

// finishAccounts keeps the enabled accounts, checks them against the
// vendor's count, and sets the device's state from them.
func finishAccounts(st *device.SIPStatus, max int) error {
	if n := len(st.Accounts); n > max {
		return fmt.Errorf("%d accounts listed, at most %d", n, max)
	}
	seen := make([]bool, max+1)
	kept := st.Accounts[:0]
	for _, a := range st.Accounts {
		if a.Account < 1 || a.Account > max {
			return fmt.Errorf("account number %d out of 1..%d", a.Account, max)
		}
		if seen[a.Account] {
			return fmt.Errorf("account %d listed twice", a.Account)
		}
		seen[a.Account] = true
		v, raw := knownStatus(a.State)
		if raw != "" || a.Raw != "" {
			a.Raw = SafeText(a.Raw + raw)
		}
		if v == device.StatusOffline {
			continue
		}
		a.State, a.Registered = v, v == device.StatusOK
		kept = append(kept, a)
	}
	slices.SortFunc(kept, func(a, b device.AccountStatus) int { return a.Account - b.Account })
	st.Accounts = kept
	state := device.StatusOffline
	if len(kept) > 0 {
		state = device.StatusOK
		for _, a := range kept {
			if !a.Registered {
				state = device.StatusError
			}
		}
	}
	st.Status = &state
	return nil
}

// mapState maps a device's registration value through known (keys in
// lower case): a value it does not hold is an error, with the value kept
// raw.
func mapState(v string, known map[string]string) (state, raw string) {
	if s, ok := known[strings.ToLower(strings.TrimSpace(v))]; ok {
		return s, ""
	}
	return device.StatusError, v
}

// NormalizeProxy writes a SIP proxy in one form whatever the vendor:
// sip:host or sip:host:port (sips: kept), the host in lower case, the
// port left out when it is the scheme's default (5060, 5061 for sips),
// user, parameters and headers dropped. BAS-IP devices send "sip:host",
// the others "host" and a port; both become the same proxy. An empty
// value stays empty; a value that is not a host[:port] is kept as sent
// (made safe).
func NormalizeProxy(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	scheme, rest, defPort := "sip:", p, "5060"
	switch lower := strings.ToLower(p); {
	case strings.HasPrefix(lower, "sips:"):
		scheme, rest, defPort = "sips:", p[5:], "5061"
	case strings.HasPrefix(lower, "sip:"):
		rest = p[4:]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.TrimSuffix(rest, "/")
	host, port := rest, ""
	if h, pt, err := net.SplitHostPort(rest); err == nil {
		host, port = h, pt
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	}
	if !hostName(host) {
		return SafeText(p)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return SafeText(p)
		}
	}
	host = strings.ToLower(host)
	if port == "" || port == defPort {
		if strings.Contains(host, ":") {
			return SafeText(scheme + "[" + host + "]")
		}
		return SafeText(scheme + host)
	}
	return SafeText(scheme + net.JoinHostPort(host, port))
}

// hostName reports whether h is shaped like a host name or an IP address.
func hostName(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range []byte(h) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_:%", c) >= 0) {
			return false
		}
	}
	return true
}
