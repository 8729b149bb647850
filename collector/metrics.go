package collector

import (
	"bufio"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
)

// Device series are written straight to the text exposition format, family
// by family. Building them as prometheus.Metric values and passing them
// through a registry costs, at ten thousand devices, hundreds of thousands
// of short-lived objects per scrape and a sort and consistency check of
// each: most of the exporter's CPU. The exporter's own metrics still go
// through client_golang's registry.

// Transports are the documented SIP transports, the states of
// basip_sip_transport.
var Transports = []string{"udp", "tcp", "tls"}

// RegistrationStatuses are the states of basip_sip_registration_status, the
// device's sip_status in lower case.
var RegistrationStatuses = []string{"ok", "error", "offline"}

// family is one metric family of the device series.
type family struct {
	name, help, typ string
	extra           []string // label names after device and the configured labels
	samples         func(w *sampleWriter, d *member, o *pollOutcome)
}

var families = []family{
	{name: "basip_up", typ: "gauge", help: "1 if the device's SIP settings were read this scrape, else 0.",
		samples: func(w *sampleWriter, d *member, o *pollOutcome) { w.bool(o.upErr(d.cfg) == nil) }},
	{name: "basip_poll_duration_seconds", typ: "gauge", help: "How long this scrape's poll of the device took.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) { w.value(o.duration.Seconds()) }},
	{name: "basip_auth_failures_total", typ: "counter", help: "Logins the device rejected, and 401s that persisted right after a fresh login.",
		samples: func(w *sampleWriter, d *member, _ *pollOutcome) { w.value(float64(d.state.authFailures.Load())) }},
	{name: "basip_poll_errors_total", typ: "counter", extra: []string{"endpoint", "reason"},
		help: "Failed requests to the device by endpoint (settings, status, info) and reason.",
		samples: func(w *sampleWriter, d *member, _ *pollOutcome) {
			for ep, name := range device.Endpoints {
				for i, r := range device.Reasons {
					if n := d.state.pollErrors[ep][i].Load(); n > 0 {
						w.value(float64(n), name, string(r))
					}
				}
			}
		}},
	{name: "basip_sip_enabled", typ: "gauge", help: "1 if SIP is enabled on the device (field enable).",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Enable != nil {
				w.bool(*s.Enable)
			}
		}},
	{name: "basip_sip_registration_interval_seconds", typ: "gauge", help: "SIP registration interval (field registration_interval).",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.RegistrationInterval != nil {
				w.value(float64(*s.RegistrationInterval))
			}
		}},
	{name: "basip_sip_call_timeout_seconds", typ: "gauge", help: "Call timeout (field timeout).",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Timeout != nil {
				w.value(float64(*s.Timeout))
			}
		}},
	{name: "basip_sip_transport", typ: "gauge", extra: []string{"transport"},
		help: "SIP transport as a state set: 1 for the device's transport; all 0 for an undocumented value.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Transport != nil {
				for _, t := range Transports {
					w.bool(strings.EqualFold(*s.Transport, t), t)
				}
			}
		}},
	{name: "basip_sip_ring_code_enabled", typ: "gauge", help: "1 if the ring code is enabled (field is_enable_ring_code).",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.RingCode != nil {
				w.bool(*s.RingCode)
			}
		}},
	{name: "basip_sip_stun_configured", typ: "gauge", help: "1 if a STUN server address is set.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.STUN != nil {
				w.bool(o.stun != "")
			}
		}},
	{name: "basip_sip_info", typ: "gauge", extra: []string{"proxy", "realm", "user", "user_id", "transport", "stun"},
		help: "SIP settings as labels; always 1.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil {
				w.value(1, clean(str(s.Proxy)), clean(str(s.Realm)), clean(str(s.User)), clean(str(s.UserID)),
					clean(str(s.Transport)), clean(o.stun))
			}
		}},
	{name: "basip_sip_registered", typ: "gauge", help: "1 if the device reports its SIP registration as OK (sip_status), else 0.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.Status != nil {
				w.bool(strings.EqualFold(*st.Status, "ok"))
			}
		}},
	{name: "basip_sip_registration_status", typ: "gauge", extra: []string{"status"},
		help: "SIP registration status as a state set over ok, error, offline.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.Status != nil {
				for _, s := range RegistrationStatuses {
					w.bool(strings.EqualFold(*st.Status, s), s)
				}
			}
		}},
	{name: "basip_sip_last_registration_attempt_timestamp_seconds", typ: "gauge", help: "Unix time of the device's last SIP registration attempt.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.LastAttempt != nil {
				w.value(*st.LastAttempt)
			}
		}},
	{name: "basip_device_info", typ: "gauge", extra: []string{"model", "type", "firmware", "api_version", "serial", "name"},
		help: "Device model and firmware from /api/info; always 1.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if i := o.info; i != nil {
				w.value(1, clean(string(i.Model)), clean(string(i.Type)), clean(string(i.Firmware)),
					clean(string(i.APIVersion)), clean(string(i.Serial)), clean(string(i.Name)))
			}
		}},
	{name: "basip_sip_policy_violation", typ: "gauge", extra: []string{"policy", "rule"},
		help: "1 if the device's settings violate the policy rule, else 0; absent when the device did not send the field.",
		samples: func(w *sampleWriter, d *member, o *pollOutcome) {
			if p := d.cfg.PolicyRef; p != nil && o.readSettings() != nil {
				for i, rule := range policy.Rules {
					if checked, violated := o.policy.Get(i); checked {
						w.bool(violated, p.Name, rule)
					}
				}
			}
		}},
	{name: "basip_sip_policy_compliant", typ: "gauge", extra: []string{"policy"},
		help: "1 if no rule of the device's policy that could be evaluated is violated.",
		samples: func(w *sampleWriter, d *member, o *pollOutcome) {
			if p := d.cfg.PolicyRef; p != nil && o.readSettings() != nil {
				w.bool(o.policy.Compliant(), p.Name)
			}
		}},
	{name: "basip_sip_schema_violation", typ: "gauge", extra: []string{"field"},
		help: "1 if a field the device sent is outside the vendor's documented constraints, else 0.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if o.readSettings() != nil {
				for i, field := range policy.Fields {
					if checked, violated := o.schema.Get(i); checked {
						w.bool(violated, field)
					}
				}
			}
		}},
	{name: "basip_sip_settings_last_change_timestamp_seconds", typ: "gauge",
		help: "When the exporter first saw the device's current SIP settings (the exporter's start for the first sighting).",
		samples: func(w *sampleWriter, d *member, o *pollOutcome) {
			if o.readSettings() != nil {
				if fp := d.state.fingerprint.Load(); fp != nil {
					w.value(float64(fp.since.UnixNano()) / 1e9)
				}
			}
		}},
	{name: "basip_sip_password_weak", typ: "gauge",
		help: "1 if the SIP password the device reveals is a known default, equals the SIP user, or is shorter than 8 characters.",
		samples: func(w *sampleWriter, _ *member, o *pollOutcome) {
			if o.readSettings() != nil && o.weakKnown {
				w.bool(o.weak)
			}
		}},
}

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
		o.policy = policy.Evaluate(d.PolicyRef, s)
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

// writeDevices writes the device series of a poll in the text format, with
// each sample's labels sorted by name. outcomes[i] belongs to devices[i].
func writeDevices(bw *bufio.Writer, f *fleet, devices []*member, outcomes []pollOutcome) error {
	sw := &sampleWriter{w: bw}
	for fi := range families {
		sw.family = &families[fi]
		sw.plan = f.labelPlans[fi]
		sw.headerDone = false
		for i, d := range devices {
			sw.device = d
			sw.family.samples(sw, d, &outcomes[i])
		}
	}
	return sw.err
}

// labelPlans gives, for each family, the order in which to write a
// sample's labels so that they come out sorted by name: an index >= 0 is
// one of the device's constant labels (device first, then
// config.LabelNames), an index < 0 is the family's extra label -index-1.
func labelPlans(configured []string) [][]int {
	base := append([]string{"device"}, configured...)
	plans := make([][]int, len(families))
	for fi, f := range families {
		type entry struct {
			name string
			idx  int
		}
		var all []entry
		for i, n := range base {
			all = append(all, entry{n, i})
		}
		for j, n := range f.extra {
			all = append(all, entry{n, -j - 1})
		}
		sort.Slice(all, func(a, b int) bool { return all[a].name < all[b].name })
		for _, e := range all {
			plans[fi] = append(plans[fi], e.idx)
		}
	}
	return plans
}

// sampleWriter appends samples of one family to the exposition; the
// family's HELP and TYPE lines go out with its first sample, so a family
// without samples is left out.
type sampleWriter struct {
	w          *bufio.Writer
	family     *family
	plan       []int
	device     *member
	headerDone bool
	buf        []byte
	err        error
}

func (w *sampleWriter) bool(b bool, extra ...string) {
	if b {
		w.value(1, extra...)
	} else {
		w.value(0, extra...)
	}
}

func (w *sampleWriter) value(v float64, extra ...string) {
	f := w.family
	b := w.buf[:0]
	if !w.headerDone {
		w.headerDone = true
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.help...)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.typ...)
		b = append(b, '\n')
	}
	b = append(b, f.name...)
	b = append(b, '{')
	first := true
	for _, idx := range w.plan {
		if idx >= 0 {
			pair := w.device.labelPairs[idx]
			if pair == "" { // an empty value is an absent label
				continue
			}
			if !first {
				b = append(b, ',')
			}
			b = append(b, pair...)
		} else {
			if !first {
				b = append(b, ',')
			}
			b = append(b, f.extra[-idx-1]...)
			b = append(b, '=', '"')
			b = appendEscaped(b, extra[-idx-1])
			b = append(b, '"')
		}
		first = false
	}
	b = append(b, '}', ' ')
	b = appendFloat(b, v)
	b = append(b, '\n')
	w.buf = b
	if _, err := w.w.Write(b); err != nil && w.err == nil {
		w.err = err
	}
}

// labelPairs renders a device's constant labels, device first, as
// name="value" pairs; an empty value, which Prometheus treats as absent,
// gives an empty pair.
func labelPairs(names, values []string) []string {
	pairs := make([]string, len(names))
	for i, n := range names {
		if values[i] == "" {
			continue
		}
		b := append([]byte(n), '=', '"')
		b = appendEscaped(b, values[i])
		pairs[i] = string(append(b, '"'))
	}
	return pairs
}

// appendEscaped escapes a label value for the text format.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
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
