package simulator

import (
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

// SIPRegistration makes a device register its SIP account for real
// (RegisterSIP).
type SIPRegistration struct {
	// LocalIP is the device's address, the one it registers from:
	// 127.0.0.1 when empty.
	LocalIP string
	// Domain is the address of record's domain: the proxy's host when
	// empty.
	Domain string
	// Expires, Timeout and RetryAfter are the UA's (sipua.Options): 60 s,
	// 2 s and 1 s when zero.
	Expires    time.Duration
	Timeout    time.Duration
	RetryAfter time.Duration
	// Logger receives the UA's messages: none when nil.
	Logger *slog.Logger
}

// sipState is a device's registration: the options and the UA running
// with the settings of key.
type sipState struct {
	reg SIPRegistration
	ua  *sipua.UA
	key sipAccount
	off bool // the settings disable SIP
}

// sipAccount is what of the SIP settings the UA registers with.
type sipAccount struct{ proxy, user, authUser, password string }

// RegisterSIP makes the device register the account of its SIP settings
// (user, password, user_id as the digest user) at the proxy they name
// ("sip:IP:port", "IP:port"; port 5060 when missing), from r.LocalIP, and
// its sip/status follow the registration: sip_status "OK" while
// registered, "ERROR" when not, "OFFLINE" when the settings have
// "enable": false, and register_last_attempt the last REGISTER's time.
// The status object's other fields, and a nil status's 404, stay. A
// change of those settings by SetSettings starts the registration again
// with the new ones. It fails when the settings name no user or a proxy
// that is not an IP address. StopSIP ends it.
func (d *Device) RegisterSIP(r SIPRegistration) error {
	d.sipMu.Lock()
	defer d.sipMu.Unlock()
	if d.sipRunning() {
		return errors.New("the device registers already")
	}
	acc, off := sipAccountOf(d.Settings())
	st := &sipState{reg: r, key: acc, off: off}
	if !off {
		ua, err := newUA(r, acc)
		if err != nil {
			return err
		}
		st.ua = ua
	}
	d.mu.Lock()
	d.sip = st
	d.mu.Unlock()
	return nil
}

// PauseSIP stops the device's registration refreshes without
// unregistering, and freezes what its sip/status says: the registrar lets
// the contact expire while the device's API still says what it said, as
// on a device whose SIP stack hung. A change of the settings starts the
// registration again.
func (d *Device) PauseSIP() {
	if ua := d.SIPAgent(); ua != nil {
		ua.Pause()
	}
}

// StopSIP unregisters and stops the registration RegisterSIP started; the
// sip/status is the device's set status again.
func (d *Device) StopSIP() {
	d.sipMu.Lock()
	defer d.sipMu.Unlock()
	d.mu.Lock()
	st := d.sip
	d.sip = nil
	d.mu.Unlock()
	if st != nil && st.ua != nil {
		st.ua.Stop()
	}
}

// SIPAgent is the UA registering for the device: nil when RegisterSIP was
// not called, after StopSIP, and while the settings give it nothing to
// register.
func (d *Device) SIPAgent() *sipua.UA {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sip == nil {
		return nil
	}
	return d.sip.ua
}

// sipRunning tells whether RegisterSIP is in force.
func (d *Device) sipRunning() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sip != nil
}

// syncSIP starts the registration again when the settings' account
// changed.
func (d *Device) syncSIP() {
	d.sipMu.Lock()
	defer d.sipMu.Unlock()
	acc, off := sipAccountOf(d.Settings())
	d.mu.Lock()
	st := d.sip
	d.mu.Unlock()
	if st == nil || (acc == st.key && off == st.off) {
		return
	}
	if st.ua != nil {
		st.ua.Stop()
	}
	next := &sipState{reg: st.reg, key: acc, off: off}
	if !off {
		ua, err := newUA(st.reg, acc)
		if err != nil && st.reg.Logger != nil {
			// The status says ERROR, as on a device that cannot register.
			st.reg.Logger.Warn("the SIP settings give nothing to register", "err", err)
		}
		next.ua = ua
	}
	d.mu.Lock()
	d.sip = next
	d.mu.Unlock()
}

func newUA(r SIPRegistration, acc sipAccount) (*sipua.UA, error) {
	ua, err := sipua.New(sipua.Options{
		User: acc.user, AuthUser: acc.authUser, Password: acc.password,
		Domain: r.Domain, Proxy: acc.proxy, LocalIP: r.LocalIP,
		Expires: r.Expires, Timeout: r.Timeout, RetryAfter: r.RetryAfter,
		Logger: r.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := ua.Start(); err != nil {
		return nil, err
	}
	return ua, nil
}

// sipAccountOf reads the account from SIP settings; off when they say
// "enable": false.
func sipAccountOf(s map[string]any) (acc sipAccount, off bool) {
	str := func(k string) string {
		v, _ := s[k].(string)
		return v
	}
	acc = sipAccount{proxy: str("proxy"), user: str("user"), authUser: str("user_id"), password: str("password")}
	enable, ok := s["enable"].(bool)
	return acc, ok && !enable
}

// sipStatus is the status object to serve. d.mu must be held.
func (d *Device) sipStatus() map[string]any {
	if d.sip == nil || d.status == nil {
		return d.status
	}
	out := maps.Clone(d.status)
	switch ua := d.sip.ua; {
	case d.sip.off:
		out["sip_status"] = "OFFLINE"
	case ua == nil:
		out["sip_status"] = "ERROR"
	default:
		out["sip_status"] = "ERROR"
		if ua.Registered() {
			out["sip_status"] = "OK"
		}
		out["register_last_attempt"] = nil
		if t := ua.LastAttempt(); !t.IsZero() {
			out["register_last_attempt"] = t.Unix()
		}
	}
	return out
}
