package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
)

// DeviceView is what every page says of a configured device, whatever
// the page: its place in the configuration and the API family in use.
// Statuses (the landing page), DebugPoll (/debug, --check.device) and
// Targets (/sd) all build it with member.view.
type DeviceView struct {
	Name    string
	Address string // normalised, scheme://host:port; no credential
	// Labels are the device's configured constant labels.
	Labels map[string]string
	Policy string // the device's policy, empty for none
	Auth   string // how the device is authenticated: token or basic
	// APIConfigured is api_version as configured: v0, v1 or auto.
	APIConfigured string
	// APIFamily is the API family in use: the configured one, or the one
	// found for api_version auto, empty until found.
	APIFamily string
}

// APIAuto reports whether the API family is found by detection.
func (v DeviceView) APIAuto() bool { return v.APIConfigured == config.AutoAPIVersion }

// view is the device's DeviceView now.
func (m *member) view() DeviceView {
	v := DeviceView{Name: m.name, Address: m.cfg.URL.String(), Labels: m.cfg.Labels, Auth: m.cfg.Credential.Auth,
		APIConfigured: m.cfg.APIVersion, APIFamily: m.session.client.APIVersion()}
	if p := m.cfg.PolicyRef; p != nil {
		v.Policy = p.Name
	}
	return v
}

// DeviceStatus is what the exporter last learned about a device, for the
// landing page. It holds no secret.
type DeviceStatus struct {
	DeviceView
	// Polled is false until the device's first poll.
	Polled       bool
	Up           bool
	LastPoll     time.Time
	LastDuration time.Duration
	// Reason and LastError say why the last poll failed; empty when it
	// did not.
	Reason    string
	LastError string
	// SIPEnabled is nil when the device did not send the field.
	SIPEnabled *bool
	Transport  string
	// PolicyCompliant is nil until the settings have been checked against
	// the device's policy.
	PolicyCompliant *bool
	// Violations lists the policy rules the device violates.
	Violations []string
	// DownSince is when the device went down, zero while it is up.
	DownSince time.Time
	// Registration is the SIP registration status, lower case (ok, error,
	// offline, or what else the device says), "unsupported" for a device
	// without the status endpoint, empty when unknown or not collected.
	Registration string
	// Firmware is the firmware version from /api/info, empty when unknown.
	Firmware string
	// PasswordExposed is true when the last settings read carry the SIP
	// password in clear.
	PasswordExposed bool
}

// Statuses returns the state of every configured device, in configuration
// order.
func (e *Exporter) Statuses() []DeviceStatus {
	f := e.fleet.Load()
	out := make([]DeviceStatus, 0, len(f.members))
	for _, d := range f.members {
		st := DeviceStatus{DeviceView: d.view()}
		if lp := d.rec.last.Load(); lp != nil {
			st.Registration = registration(d, lp)
			if lp.info != nil {
				st.Firmware = clean(string(lp.info.Firmware))
			}
			st.Polled, st.LastPoll, st.LastDuration = true, lp.at, lp.duration
			if err := lp.upErr(d.cfg); err != nil {
				st.Reason, st.LastError = string(device.ReasonOf(err)), device.Redact(err.Error())
				if since := d.rec.downSince.Load(); since != 0 {
					st.DownSince = time.Unix(0, since)
				}
			} else {
				st.Up = true
			}
			if s := lp.readSettings(); s != nil {
				st.SIPEnabled = s.Enable
				st.Transport = clean(str(s.Transport))
				st.PasswordExposed = s.PasswordExposed()
				if d.cfg.PolicyRef != nil {
					compliant := lp.policy.Compliant()
					st.PolicyCompliant = &compliant
					st.Violations = violations(lp)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// violations lists the policy rules the outcome violates.
func violations(o *pollOutcome) []string {
	var out []string
	for i, rule := range policy.Rules {
		if _, violated := o.policy.Get(i); violated {
			out = append(out, rule)
		}
	}
	return out
}

// endpointResults says how each endpoint of a poll went.
func endpointResults(d *member, o *pollOutcome) [device.NumEndpoints]string {
	var out [device.NumEndpoints]string
	answers := [device.NumEndpoints]bool{o.settings != nil, o.status != nil, o.info != nil}
	errs := [device.NumEndpoints]error{o.errs[device.EndpointSettings], o.errs[device.EndpointStatus], o.errs[device.EndpointInfo]}
	for ep := range device.NumEndpoints {
		switch {
		case !d.cfg.Collects(ep):
			out[ep] = "not collected"
		case errs[ep] != nil:
			out[ep] = errs[ep].Error()
		case answers[ep]:
			out[ep] = "answered"
		case !d.session.cache.supported(ep, o.at):
			out[ep] = "unsupported (HTTP 404)"
		default:
			out[ep] = "not asked"
		}
	}
	return out
}

// Check polls the named devices now, whatever their min_poll_interval,
// and reports each in detail as DebugPoll does, in the order named. The
// name "all" stands for every configured device. An unknown name is an
// error wrapping ErrUnknownTarget, and nothing is polled.
func (e *Exporter) Check(ctx context.Context, names []string) ([]*DebugReport, error) {
	f := e.fleet.Load()
	var members []*member
	for _, n := range names {
		if n == "all" {
			members = append(members, f.members...)
			continue
		}
		m, ok := f.byName[n]
		if !ok {
			return nil, fmt.Errorf("%w %q: not a configured device name", ErrUnknownTarget, clean(n))
		}
		members = append(members, m)
	}
	reports := make([]*DebugReport, len(members))
	errs := make([]error, len(members))
	sem := make(chan struct{}, max(1, f.cfg.Global.Concurrency))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.sched.Forget(m.key)
			reports[i], errs[i] = e.DebugPoll(ctx, m.name)
		}()
	}
	wg.Wait()
	return reports, errors.Join(errs...)
}

// registration is the DeviceStatus.Registration of a device's last poll.
func registration(d *member, o *pollOutcome) string {
	switch {
	case !d.cfg.Collects(device.EndpointStatus):
		return ""
	case o.status != nil && o.status.Status != nil:
		return strings.ToLower(clean(*o.status.Status))
	case o.status == nil && o.errs[device.EndpointStatus] == nil && !d.session.cache.supported(device.EndpointStatus, o.at):
		return "unsupported"
	}
	return ""
}

// DebugReport is one poll of one device, in detail, for the debug view.
// The SIP password is kept in a type that prints as "<secret>", requests
// are recorded without their query, and tokens are not recorded at all.
type DebugReport struct {
	// DeviceView is the device after the poll: the API family found, if
	// any.
	DeviceView
	Started  time.Time
	Duration time.Duration
	Requests []device.TracedRequest
	Error    string
	Settings *device.SIPSettings
	Status   *device.SIPStatus
	Info     *device.Info
	// Endpoints says, for each endpoint in the order of device.Endpoints,
	// how it went: "answered", "not collected", "unsupported (HTTP 404)",
	// "not asked" or the error.
	Endpoints [device.NumEndpoints]string
	// Violations are the rules of the device's policy it violates,
	// PolicyChecked whether the settings were checked.
	PolicyChecked bool
	Violations    []string
	// Series is the device's exposition for this poll, in the text format.
	Series string
	// Served says how the result was had: "fresh" (a poll made for this
	// view, whose requests are listed), "shared" (a poll another caller
	// had in flight) or "reused" (a poll younger than min_poll_interval);
	// Age is how old the result was when served.
	Served string
	Age    time.Duration
	// PBX is the configured PBX the device's settings point to, ""
	// for none; PBXState its registration there at the PBX's last check
	// ("" when its registrar was not read).
	PBX, PBXState string
}

// DebugPoll polls one configured device now and reports every step, unless
// a poll of it is in flight or a recent result is at hand: then that is
// shown, and the report says so. The poll counts like any other (counters,
// back-off, cached token).
func (e *Exporter) DebugPoll(ctx context.Context, name string) (*DebugReport, error) {
	f := e.fleet.Load()
	d, ok := f.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: not a configured device name", ErrUnknownTarget, clean(name))
	}
	trace := &device.Trace{}
	rep := &DebugReport{Started: time.Now()}
	poll := e.poll(device.WithTrace(ctx, trace), f, []*member{d})
	outcomes := poll.outcomes
	rep.Duration = time.Since(rep.Started)
	rep.Requests = trace.Requests()
	for i := range rep.Requests {
		rep.Requests[i].Error = device.Redact(rep.Requests[i].Error)
	}
	o := outcomes[0]
	rep.Served = poll.served[0].String()
	if !o.at.IsZero() {
		rep.Age = max(0, time.Since(o.at))
	}
	rep.Settings, rep.Status, rep.Info = o.settings, o.status, o.info
	rep.DeviceView = d.view()
	rep.Endpoints = endpointResults(d, o)
	if d.cfg.PolicyRef != nil {
		rep.PolicyChecked = o.readSettings() != nil
		rep.Violations = violations(o)
	}
	if err := o.upErr(d.cfg); err != nil {
		rep.Error = device.Redact(err.Error())
	}
	if p := f.pbxOf(o); p != nil && o.readSettings() != nil {
		rep.PBX = p.name
		if v, ok := e.pbxLast.Load(p.name); ok {
			if po := v.(*pbxOutcome); po.registrar && po.regErr == nil && str(o.settings.User) != "" {
				rep.PBXState = pbxRegistration(po, p, d, o.settings, o.proxyName)
			}
		}
	}
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	if err := poll.WriteTo(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	rep.Series = b.String()
	return rep, nil
}

// Targets returns every configured device as Prometheus' service
// discovery shows it, in configuration order.
func (e *Exporter) Targets() []DeviceView {
	f := e.fleet.Load()
	out := make([]DeviceView, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m.view())
	}
	return out
}
