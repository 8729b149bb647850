package collector

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
	"github.com/basip/basip_exporter/collector/textformat"
)

// family is one metric family of the device series.
type family struct {
	name, help, typ string
	extra           []string // label names after device and the configured labels
	// sipInfo marks basip_sip_info, whose extra labels are those of
	// extra the configuration's global.sip_info_labels chooses.
	sipInfo bool
	samples func(w *textformat.Writer, d *member, o *pollOutcome)
}

var families = []family{
	{name: "basip_up", typ: "gauge", help: "1 if the device's SIP settings were read this scrape, else 0.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) { w.Bool(o.upErr(d.cfg) == nil) }},
	{name: "basip_last_poll_timestamp_seconds", typ: "gauge", help: "When the poll whose result is served ended (a result may be shared by callers or reused within min_poll_interval).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if !o.notPolled {
				w.Sample(float64(o.at.UnixNano()) / 1e9)
			}
		}},
	{name: "basip_poll_duration_seconds", typ: "gauge", help: "How long the poll whose result is served took.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) { w.Sample(o.duration.Seconds()) }},
	{name: "basip_auth_failures_total", typ: "counter", help: "Logins the device rejected, and 401s that persisted right after a fresh login.",
		samples: func(w *textformat.Writer, d *member, _ *pollOutcome) { w.Sample(float64(d.rec.authFailures.Load())) }},
	{name: "basip_poll_errors_total", typ: "counter", extra: []string{"endpoint", "reason"},
		help: "Failed requests to the device by endpoint (settings, status, info) and reason.",
		samples: func(w *textformat.Writer, d *member, _ *pollOutcome) {
			pe := d.rec.pollErrors.Load()
			if pe == nil {
				return
			}
			for ep, name := range device.Endpoints {
				for i, r := range device.Reasons {
					if n := pe[ep][i].Load(); n > 0 {
						w.Sample(float64(n), name, string(r))
					}
				}
			}
		}},
	{name: "basip_sip_enabled", typ: "gauge", help: "1 if SIP is enabled on the device (field enable).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Enable != nil {
				w.Bool(*s.Enable)
			}
		}},
	{name: "basip_sip_registration_interval_seconds", typ: "gauge", help: "SIP registration interval (field registration_interval).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.RegistrationInterval != nil {
				w.Sample(float64(*s.RegistrationInterval))
			}
		}},
	{name: "basip_sip_call_timeout_seconds", typ: "gauge", help: "Call timeout (field timeout).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Timeout != nil {
				w.Sample(float64(*s.Timeout))
			}
		}},
	{name: "basip_sip_transport", typ: "gauge", extra: []string{"transport"},
		help: "SIP transport as a state set: 1 for the device's transport; all 0 for an undocumented value.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.Transport != nil {
				for _, t := range device.Transports {
					w.Bool(strings.EqualFold(*s.Transport, t), t)
				}
			}
		}},
	{name: "basip_sip_ring_code_enabled", typ: "gauge", help: "1 if the ring code is enabled (field is_enable_ring_code).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.RingCode != nil {
				w.Bool(*s.RingCode)
			}
		}},
	{name: "basip_sip_stun_configured", typ: "gauge", help: "1 if a STUN server address is set.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && s.STUN != nil {
				w.Bool(o.stun != "")
			}
		}},
	{name: "basip_sip_info", typ: "gauge", extra: config.SIPInfoLabels, sipInfo: true,
		help: "SIP settings as labels; always 1.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil {
				// In the order of config.SIPInfoLabels.
				all := [...]string{clean(str(s.Proxy)), clean(str(s.Realm)), clean(str(s.Outbound)), clean(str(s.User)),
					clean(str(s.UserID)), clean(str(s.Transport)), clean(o.stun)}
				var chosen [len(all)]string
				for n, i := range d.sipInfo {
					chosen[n] = all[i]
				}
				w.Sample(1, chosen[:len(d.sipInfo)]...)
			}
		}},
	{name: "basip_sip_registered", typ: "gauge", help: "1 if the device reports its SIP registration as OK (sip_status), else 0.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.Status != nil {
				w.Bool(strings.EqualFold(*st.Status, "ok"))
			}
		}},
	{name: "basip_sip_account_registered", typ: "gauge", extra: []string{"account"},
		help: "1 if the enabled SIP account is registered, else 0; for devices that report several accounts (2N, Beward).",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if st := o.status; st != nil {
				for _, a := range st.Accounts {
					w.Bool(a.Registered, strconv.Itoa(a.Account))
				}
			}
		}},
	{name: "basip_sip_registration_status", typ: "gauge", extra: []string{"status"},
		help: "SIP registration status as a state set over ok, error, offline.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.Status != nil {
				for _, s := range device.RegistrationStatuses {
					w.Bool(strings.EqualFold(*st.Status, s), s)
				}
			}
		}},
	{name: "basip_sip_last_registration_attempt_timestamp_seconds", typ: "gauge", help: "Unix time of the device's last SIP registration attempt.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if st := o.status; st != nil && st.LastAttempt != nil {
				w.Sample(*st.LastAttempt)
			}
		}},
	{name: "basip_device_info", typ: "gauge", extra: []string{"model", "type", "firmware", "api_version", "serial", "name", "vendor"},
		help: "Device vendor, model and firmware (from /api/info on BAS-IP); always 1. Other vendors' devices have it whenever they answered, model and firmware empty where the vendor does not tell them.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			switch i := o.info; {
			case i != nil:
				w.Sample(1, clean(string(i.Model)), clean(string(i.Type)), clean(string(i.Firmware)),
					clean(string(i.APIVersion)), clean(string(i.Serial)), clean(string(i.Name)), vendorOf(d.cfg))
			case vendorOf(d.cfg) != config.VendorBASIP && o.upErr(d.cfg) == nil:
				w.Sample(1, "", d.spec.Type, "", "", "", "", d.cfg.Vendor)
			}
		}},
	{name: "basip_device_config_info", typ: "gauge", extra: []string{"vendor", "credentials"},
		help: "The device's vendor and the name of its credentials set, from the configuration; always 1, whatever the device answered.",
		samples: func(w *textformat.Writer, d *member, _ *pollOutcome) {
			w.Sample(1, vendorOf(d.cfg), credentialsOf(d.cfg))
		}},
	{name: "basip_sip_policy_violation", typ: "gauge", extra: []string{"policy", "rule"},
		help: "1 if the device's settings violate the policy rule, else 0; absent when the device did not send the field.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if p := d.cfg.PolicyRef; p != nil && o.readSettings() != nil {
				for i, rule := range policy.Rules {
					if checked, violated := o.policy.Get(i); checked {
						w.Bool(violated, p.Name, rule)
					}
				}
			}
		}},
	{name: "basip_sip_policy_compliant", typ: "gauge", extra: []string{"policy"},
		help: "1 if no rule of the device's policy that could be evaluated is violated.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if p := d.cfg.PolicyRef; p != nil && o.readSettings() != nil {
				w.Bool(o.policy.Compliant(), p.Name)
			}
		}},
	{name: "basip_sip_schema_violation", typ: "gauge", extra: []string{"field"},
		help: "1 if a field the device sent is outside the vendor's documented constraints, else 0.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if o.readSettings() != nil && vendorOf(d.cfg) == config.VendorBASIP {
				for i, field := range policy.Fields {
					if checked, violated := o.schema.Get(i); checked {
						w.Bool(violated, field)
					}
				}
			}
		}},
	{name: "basip_sip_settings_fingerprint", typ: "gauge",
		help: "A number that identifies the device's SIP settings (the SIP password aside): equal on every replica and across restarts, so changes() over it is the settings' history.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if o.readSettings() != nil {
				w.Sample(float64(o.fingerprint))
			}
		}},
	{name: "basip_sip_settings_last_change_timestamp_seconds", typ: "gauge",
		help: "When this exporter process first saw the device's current SIP settings (its start for the first sighting); use basip_sip_settings_fingerprint for history across restarts and replicas.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if o.readSettings() != nil {
				if fp := d.rec.fingerprint.Load(); fp != nil {
					w.Sample(float64(fp.since.UnixNano()) / 1e9)
				}
			}
		}},
	{name: "basip_sip_password_exposed", typ: "gauge",
		help: "1 if the device's SIP settings answer carries the SIP password in clear (not masked as WebPass, empty or asterisks), else 0; absent for a vendor whose answer read is not one that would carry it.",
		samples: func(w *textformat.Writer, d *member, o *pollOutcome) {
			if s := o.readSettings(); s != nil && d.spec.PasswordChecked {
				w.Bool(s.PasswordExposed())
			}
		}},
	{name: "basip_sip_password_weak", typ: "gauge",
		help: "1 if the SIP password the device reveals is a known default, equals the SIP user, or is shorter than 8 characters.",
		samples: func(w *textformat.Writer, _ *member, o *pollOutcome) {
			if o.readSettings() != nil && o.weakKnown {
				w.Bool(o.weak)
			}
		}},
}

// newFamilies returns the metric families with the constant labels device
// and cfg's configured labels, and the basip_sip_info labels it chooses.
func newFamilies(cfg *config.Config) []*textformat.Family {
	out := make([]*textformat.Family, len(families))
	for i, f := range families {
		extra := f.extra
		if f.sipInfo {
			extra = cfg.Global.SIPInfoLabels
		}
		out[i] = textformat.NewFamily(f.name, f.help, f.typ, extra)
	}
	return out
}

// sipInfoIndexes are the positions in config.SIPInfoLabels of the labels
// basip_sip_info exports.
func sipInfoIndexes(chosen []string) []int {
	idx := make([]int, 0, len(chosen))
	for _, n := range chosen {
		idx = append(idx, slices.Index(config.SIPInfoLabels, n))
	}
	return idx
}

// writeDevices writes the device series of a poll, family by family.
// outcomes[i] belongs to members[i].
func writeDevices(w *textformat.Writer, f *fleet, members []*member, outcomes []*pollOutcome) {
	for fi := range families {
		w.Family(f.families[fi])
		for i, m := range members {
			w.Target(m.rendered)
			families[fi].samples(w, m, outcomes[i])
		}
	}
}

// vendorOf is the device's vendor; BAS-IP for a device built without
// one (the configuration always sets it).
func vendorOf(dc *config.Device) string {
	if dc.Vendor == "" {
		return config.VendorBASIP
	}
	return dc.Vendor
}

// credentialsOf is the name of the device's credentials set, never its
// content; the default set for a device that names none.
func credentialsOf(dc *config.Device) string {
	if dc.Credentials == "" {
		return config.DefaultCredentials
	}
	return dc.Credentials
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
