package collector

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
)

// pollOutcome is what one poll of one device produced. A nil result with
// a nil error is an endpoint not polled (not collected, or unsupported).
type pollOutcome struct {
	settings *device.SIPSettings
	status   *device.SIPStatus
	info     *device.Info
	errs     [device.NumEndpoints]error // by endpoint
	duration time.Duration
	at       time.Time // when the poll ended
	// notPolled marks an outcome made up without a poll: skipped, or a
	// caller's deadline passed while it waited for another's poll.
	notPolled bool

	// Derived from the settings once per poll.
	policy, schema  policy.Results
	weak, weakKnown bool
	stun            string // STUN server as host:port
	proxyName       string // the proxy as host:port (config.ProxyName), "" when none
	fingerprint     uint64 // see settingsFingerprint
	fingerprinted   bool   // fingerprint is set
}

// readSettings is the settings this poll read, or nil.
func (o *pollOutcome) readSettings() *device.SIPSettings {
	if o.errs[device.EndpointSettings] != nil {
		return nil
	}
	return o.settings
}

// check runs the policy and schema checks on the settings read.
func (o *pollOutcome) check(d *config.Device) {
	s := o.readSettings()
	if s == nil {
		return
	}
	if d.PolicyRef != nil {
		o.policy = policy.Evaluate(d.PolicyRef, s, o.info)
	}
	o.schema = policy.Schema(s)
	o.stun = s.STUNAddress()
	o.proxyName = config.ProxyName(str(s.Proxy))
	o.weak, o.weakKnown = policy.WeakPassword(s)
	if !o.fingerprinted {
		o.fingerprint, o.fingerprinted = settingsFingerprint(s), true
	}
}

// reuseFingerprint takes prev's fingerprint when this poll read the same
// settings: most polls do, and comparing costs a fraction of hashing.
func (o *pollOutcome) reuseFingerprint(prev *pollOutcome) {
	s, p := o.readSettings(), (*pollOutcome)(nil)
	if prev != nil && prev.readSettings() != nil {
		p = prev
	}
	if s != nil && p != nil && p.fingerprinted && s.Equal(p.settings) {
		o.fingerprint, o.fingerprinted = p.fingerprint, true
	}
}

// settingsFingerprint identifies the settings a device answered with by a
// number that depends on the settings alone (not on the exporter, the
// replica or the time) and that a float64 holds exactly: the first 53 bits
// of a SHA-256 of the settings as JSON. The SIP password is in that JSON
// only as "<secret>" (or empty when the device sent it empty): a published
// fingerprint must not let anyone test guesses of it. A change of the SIP
// password alone therefore does not change the fingerprint.
func settingsFingerprint(s *device.SIPSettings) uint64 {
	b, _ := json.Marshal(s) // cannot fail: plain fields and a Secret
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8]) >> 11
}

// upErr is the error that decides basip_up: the settings request's, or,
// for a device not polled for its settings, the first other endpoint's.
func (o *pollOutcome) upErr(d *config.Device) error {
	switch {
	case d.Collects(device.EndpointSettings):
		return o.errs[device.EndpointSettings]
	case d.Collects(device.EndpointStatus) && o.errs[device.EndpointStatus] != nil:
		return o.errs[device.EndpointStatus]
	}
	return o.errs[device.EndpointInfo]
}
