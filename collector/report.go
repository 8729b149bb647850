package collector

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

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
}

// Statuses returns the state of every configured device, in configuration
// order.
func (e *Exporter) Statuses() []DeviceStatus {
	f := e.fleet.Load()
	out := make([]DeviceStatus, 0, len(f.members))
	for _, d := range f.members {
		st := DeviceStatus{Name: d.name, Address: d.cfg.URL.String(), Labels: d.cfg.Labels}
		if d.cfg.PolicyRef != nil {
			st.Policy = d.cfg.PolicyRef.Name
		}
		if lp := d.state.last.Load(); lp != nil {
			st.Polled, st.LastPoll, st.LastDuration = true, lp.at, lp.duration
			if err := lp.upErr(d.cfg); err != nil {
				st.Reason, st.LastError = string(device.ReasonOf(err)), device.Redact(err.Error())
				if since := d.state.downSince.Load(); since != 0 {
					st.DownSince = time.Unix(0, since)
				}
			} else {
				st.Up = true
			}
			if s := lp.readSettings(); s != nil {
				st.SIPEnabled = s.Enable
				st.Transport = clean(str(s.Transport))
				if d.cfg.PolicyRef != nil {
					compliant := lp.policy.Compliant()
					st.PolicyCompliant = &compliant
					for i, rule := range policy.Rules {
						if _, violated := lp.policy.Get(i); violated {
							st.Violations = append(st.Violations, rule)
						}
					}
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// DebugReport is one poll of one device, in detail, for the debug view.
// The SIP password is kept in a type that prints as "<secret>", requests
// are recorded without their query, and tokens are not recorded at all.
type DebugReport struct {
	Device   string
	Address  string
	Started  time.Time
	Duration time.Duration
	Requests []device.TracedRequest
	Error    string
	Settings *device.SIPSettings
	Status   *device.SIPStatus
	Info     *device.Info
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
	o := &outcomes[0]
	rep.Served = servedNames[poll.served[0]]
	if !o.at.IsZero() {
		rep.Age = max(0, time.Since(o.at))
	}
	rep.Settings, rep.Status, rep.Info = o.settings, o.status, o.info
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
	APIVersion string
	Policy     string // empty for none
	Labels     map[string]string
}

// Targets returns every configured device, in configuration order.
func (e *Exporter) Targets() []Target {
	f := e.fleet.Load()
	out := make([]Target, 0, len(f.members))
	for _, m := range f.members {
		t := Target{Name: m.name, Address: m.cfg.URL.String(), APIVersion: m.cfg.APIVersion, Labels: m.cfg.Labels}
		if p := m.cfg.PolicyRef; p != nil {
			t.Policy = p.Name
		}
		out = append(out, t)
	}
	return out
}
