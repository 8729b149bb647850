package collector

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/policy"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "basip"

// Transports are the documented SIP transports, the states of
// basip_sip_transport.
var Transports = []string{"udp", "tcp", "tls"}

// RegistrationStatuses are the states of basip_sip_registration_status, the
// device's sip_status in lower case.
var RegistrationStatuses = []string{"ok", "error", "offline"}

// descs are the device series' descriptions for one set of constant label
// names.
type descs struct {
	up, enabled, regInterval, callTimeout, transport, ringCode *prometheus.Desc
	stunConfigured, info, authFailures, pollErrors, duration   *prometheus.Desc
	registered, regStatus, lastAttempt, deviceInfo             *prometheus.Desc
	violation, compliant, schema, lastChange, weakPassword     *prometheus.Desc
}

func newDescs(labelNames []string) *descs {
	base := append([]string{"device"}, labelNames...)
	d := func(name, help string, extra ...string) *prometheus.Desc {
		labels := append(append(make([]string, 0, len(base)+len(extra)), base...), extra...)
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &descs{
		up:             d("up", "1 if the device's SIP settings were read this scrape, else 0."),
		enabled:        d("sip_enabled", "1 if SIP is enabled on the device (field enable)."),
		regInterval:    d("sip_registration_interval_seconds", "SIP registration interval (field registration_interval)."),
		callTimeout:    d("sip_call_timeout_seconds", "Call timeout (field timeout)."),
		transport:      d("sip_transport", "SIP transport as a state set: 1 for the device's transport; all 0 for an undocumented value.", "transport"),
		ringCode:       d("sip_ring_code_enabled", "1 if the ring code is enabled (field is_enable_ring_code)."),
		stunConfigured: d("sip_stun_configured", "1 if a STUN server address is set."),
		info:           d("sip_info", "SIP settings as labels; always 1.", "proxy", "realm", "user", "user_id", "transport", "stun"),
		authFailures:   d("auth_failures_total", "Logins the device rejected, and 401s that persisted right after a fresh login."),
		pollErrors:     d("poll_errors_total", "Failed requests to the device by endpoint (settings, status, info) and reason.", "endpoint", "reason"),
		duration:       d("poll_duration_seconds", "How long this scrape's poll of the device took."),
		registered:     d("sip_registered", "1 if the device reports its SIP registration as OK (sip_status), else 0."),
		regStatus:      d("sip_registration_status", "SIP registration status as a state set over ok, error, offline.", "status"),
		lastAttempt:    d("sip_last_registration_attempt_timestamp_seconds", "Unix time of the device's last SIP registration attempt."),
		deviceInfo:     d("device_info", "Device model and firmware from /api/info; always 1.", "model", "type", "firmware", "api_version", "serial", "name"),
		violation:      d("sip_policy_violation", "1 if the device's settings violate the policy rule, else 0; absent when the device did not send the field.", "policy", "rule"),
		compliant:      d("sip_policy_compliant", "1 if no rule of the device's policy that could be evaluated is violated.", "policy"),
		schema:         d("sip_schema_violation", "1 if a field the device sent is outside the vendor's documented constraints, else 0.", "field"),
		lastChange:     d("sip_settings_last_change_timestamp_seconds", "When the exporter first saw the device's current SIP settings (the exporter's start for the first sighting)."),
		weakPassword:   d("sip_password_weak", "1 if the SIP password the device reveals is a known default, equals the SIP user, or is shorter than 8 characters."),
	}
}

// pollOutcome is what one poll of one device produced. A nil result with
// a nil error is an endpoint not polled (not collected, or unsupported).
type pollOutcome struct {
	settings    *basip.SIPSettings
	settingsErr error
	status      *basip.SIPStatus
	statusErr   error
	info        *basip.Info
	infoErr     error
	duration    time.Duration
}

// upErr is the error that decides basip_up: the settings request's, or,
// for a device not polled for its settings, the first other endpoint's.
func (o *pollOutcome) upErr(d *config.Device) error {
	switch {
	case d.Collects(config.CollectSettings):
		return o.settingsErr
	case d.Collects(config.CollectStatus) && o.statusErr != nil:
		return o.statusErr
	}
	return o.infoErr
}

// emit sends the series of one device for one poll.
func emit(ch chan<- prometheus.Metric, ds *descs, d *device, o pollOutcome) {
	labels := d.labels
	gauge := func(desc *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, withLabels(labels, extra)...)
	}
	gauge(ds.up, boolValue(o.upErr(d.cfg) == nil))
	gauge(ds.duration, o.duration.Seconds())
	ch <- prometheus.MustNewConstMetric(ds.authFailures, prometheus.CounterValue, float64(d.state.authFailures.Load()), labels...)
	for ep, name := range endpointNames {
		for i, r := range basip.Reasons {
			if n := d.state.pollErrors[ep][i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(ds.pollErrors, prometheus.CounterValue, float64(n), withLabels(labels, []string{name, string(r)})...)
			}
		}
	}
	if st := o.status; st != nil && st.Status != nil {
		status := strings.ToLower(*st.Status)
		gauge(ds.registered, boolValue(status == "ok"))
		for _, s := range RegistrationStatuses {
			gauge(ds.regStatus, boolValue(status == s), s)
		}
	}
	if st := o.status; st != nil && st.LastAttempt != nil {
		gauge(ds.lastAttempt, *st.LastAttempt)
	}
	if i := o.info; i != nil {
		gauge(ds.deviceInfo, 1, clean(string(i.Model)), clean(string(i.Type)), clean(string(i.Firmware)),
			clean(string(i.APIVersion)), clean(string(i.Serial)), clean(string(i.Name)))
	}
	s := o.settings
	if o.settingsErr != nil || s == nil {
		return
	}
	if s.Enable != nil {
		gauge(ds.enabled, boolValue(*s.Enable))
	}
	if s.RegistrationInterval != nil {
		gauge(ds.regInterval, float64(*s.RegistrationInterval))
	}
	if s.Timeout != nil {
		gauge(ds.callTimeout, float64(*s.Timeout))
	}
	if s.RingCode != nil {
		gauge(ds.ringCode, boolValue(*s.RingCode))
	}
	transport := str(s.Transport)
	if s.Transport != nil {
		for _, t := range Transports {
			gauge(ds.transport, boolValue(strings.EqualFold(transport, t)), t)
		}
	}
	stun := s.STUNAddress()
	if s.STUN != nil {
		gauge(ds.stunConfigured, boolValue(stun != ""))
	}
	gauge(ds.info, 1, clean(str(s.Proxy)), clean(str(s.Realm)), clean(str(s.User)), clean(str(s.UserID)), clean(transport), clean(stun))
	emitChecks(gauge, ds, d, s)
}

// emitChecks sends the series of the policy and schema checks.
func emitChecks(gauge func(*prometheus.Desc, float64, ...string), ds *descs, d *device, s *basip.SIPSettings) {
	if p := d.cfg.PolicyRef; p != nil {
		results := policy.Evaluate(p, s)
		for _, r := range results {
			gauge(ds.violation, boolValue(r.Violated), p.Name, r.Name)
		}
		gauge(ds.compliant, boolValue(policy.Compliant(results)), p.Name)
	}
	for _, r := range policy.Schema(s) {
		gauge(ds.schema, boolValue(r.Violated), r.Name)
	}
	if fp := d.state.fingerprint.Load(); fp != nil {
		gauge(ds.lastChange, float64(fp.since.UnixNano())/1e9)
	}
	if weak, ok := policy.WeakPassword(s); ok {
		gauge(ds.weakPassword, boolValue(weak))
	}
}

func withLabels(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	return append(append(make([]string, 0, len(base)+len(extra)), base...), extra...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// clean makes a device string a valid label value: invalid UTF-8 is
// replaced, and an absurdly long value is cut, so a device can never fail
// the scrape.
func clean(s string) string {
	const maxLen = 256
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
