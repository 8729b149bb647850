package collector

import (
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
)

// pollOutcome is what one poll of one device produced. A nil result with
// a nil error is an endpoint not polled (not collected, or unsupported).
type pollOutcome struct {
	settings    *device.SIPSettings
	settingsErr error
	status      *device.SIPStatus
	statusErr   error
	info        *device.Info
	infoErr     error
	duration    time.Duration
	at          time.Time // when the poll ended
	// notPolled marks an outcome made up without a poll: skipped, or a
	// caller's deadline passed while it waited for another's poll.
	notPolled bool

	// Derived from the settings once per poll.
	policy, schema  policy.Results
	weak, weakKnown bool
	stun            string // STUN server as host:port
}

// readSettings is the settings this poll read, or nil.
func (o *pollOutcome) readSettings() *device.SIPSettings {
	if o.settingsErr != nil {
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
	o.weak, o.weakKnown = policy.WeakPassword(s)
}

// upErr is the error that decides basip_up: the settings request's, or,
// for a device not polled for its settings, the first other endpoint's.
func (o *pollOutcome) upErr(d *config.Device) error {
	switch {
	case d.Collects(device.EndpointSettings):
		return o.settingsErr
	case d.Collects(device.EndpointStatus) && o.statusErr != nil:
		return o.statusErr
	}
	return o.infoErr
}
