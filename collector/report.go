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

// DeviceStatus is what the exporter last learned about a device, for the
// landing page. It holds no secret.
type DeviceStatus struct {
	Name    string
	Address string // normalised, scheme://host:port
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
	// Policy names the device's policy, empty for none; PolicyCompliant is
	// nil until the settings have been checked against it.
	Policy          string
	PolicyCompliant *bool
	// Violations lists the policy rules the device violates.
	Violations []string
	// Labels are the device's configured constant labels.
	Labels map[string]string
	// DownSince is when the device went down, zero while it is up.
	DownSince time.Time
	// APIVersion is the API family in use: the configured one, or the one
	// found for api_version auto (empty until found).
	APIVersion string
	// APIAuto is true when the configured api_version is auto.
	APIAuto bool
	// Auth is how the device is authenticated: token or basic.
	Auth string
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
		st := DeviceStatus{Name: d.name, Address: d.cfg.URL.String(), Labels: d.cfg.Labels,
			APIVersion: d.session.client.APIVersion(), Auth: d.cfg.Credential.Auth, APIAuto: d.cfg.APIVersion == config.AutoAPIVersion}
		if d.cfg.PolicyRef != nil {
			st.Policy = d.cfg.PolicyRef.Name
		}
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
	Device  string
	Address string
	// APIVersion is the API family in use after the poll, empty when it
	// is still unknown; APIAuto tells that it is found by detection.
	APIVersion string
	APIAuto    bool
	// Auth is how the device is authenticated: token or basic.
	Auth     string
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
	// Policy names the device's policy, empty for none; Violations are the
	// rules it violates, PolicyChecked whether the settings were checked.
	Policy        string
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
	rep := &DebugReport{Device: d.name, Address: d.cfg.URL.String(), Started: time.Now()}
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
	rep.APIVersion, rep.APIAuto, rep.Auth = d.session.client.APIVersion(), d.cfg.APIVersion == config.AutoAPIVersion, d.cfg.Credential.Auth
	rep.Endpoints = endpointResults(d, o)
	if p := d.cfg.PolicyRef; p != nil {
		rep.Policy = p.Name
		rep.PolicyChecked = o.readSettings() != nil
		rep.Violations = violations(o)
	}
	if err := o.upErr(d.cfg); err != nil {
		rep.Error = device.Redact(err.Error())
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

// Target is a configured device as Prometheus' service discovery shows it.
type Target struct {
	Name       string
	Address    string // normalised, scheme://host:port; no credential
	APIVersion string // as configured: v0, v1 or auto
	// APIFamily is the API family in use, empty while api_version auto
	// has not found it.
	APIFamily string
	Policy    string // empty for none
	Labels    map[string]string
}

// Targets returns every configured device, in configuration order.
func (e *Exporter) Targets() []Target {
	f := e.fleet.Load()
	out := make([]Target, 0, len(f.members))
	for _, m := range f.members {
		t := Target{Name: m.name, Address: m.cfg.URL.String(), APIVersion: m.cfg.APIVersion,
			APIFamily: m.session.client.APIVersion(), Labels: m.cfg.Labels}
		if p := m.cfg.PolicyRef; p != nil {
			t.Policy = p.Name
		}
		out = append(out, t)
	}
	return out
}
