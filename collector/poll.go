package collector

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/schedule"
)

// pollMembers serves the result of every member for one caller, in order,
// through the exporter's scheduler (package schedule): one poll per device
// address at a time whatever the callers and reloads, results shared and
// reused within a session, slots shared by every caller, silent devices
// kept from starving the rest. ctx's deadline bounds how long the caller
// waits, never a poll: a poll runs under the device's timeout.
//
// A device not served by the deadline gets an outcome of the caller's own
// (reason skipped, or timeout when its poll was in flight), which is
// stored nowhere.
func (e *Exporter) pollMembers(ctx context.Context, f *fleet, members []*member) ([]*pollOutcome, []schedule.How) {
	timeout := min(f.cfg.Global.Timeout, maxPoll)
	values := valuesFor(ctx)
	jobs := make([]schedule.Job[*pollOutcome], len(members))
	for i, m := range members {
		jobs[i] = schedule.Job[*pollOutcome]{
			Key:         m.key,
			Session:     m.session,
			Timeout:     timeout,
			MinInterval: *m.cfg.MinPollInterval,
			StartMargin: startMargin(timeout),
			Poll: func(pctx context.Context) (*pollOutcome, bool) {
				return e.pollAndRecord(withValues(pctx, values), f, m)
			},
		}
	}
	served := e.sched.Do(ctx, jobs)
	outcomes := make([]*pollOutcome, len(members))
	hows := make([]schedule.How, len(members))
	for i, s := range served {
		hows[i] = s.How
		e.polls[s.How].Add(1)
		switch s.How {
		case schedule.Skipped:
			outcomes[i] = failedOutcome(members[i], &device.Error{Reason: device.ReasonSkipped, Op: "poll", Err: errSkipped})
		case schedule.WaitedOut:
			outcomes[i] = failedOutcome(members[i], &device.Error{Reason: device.ReasonTimeout, Op: "poll", Err: errWaitedOn})
		default:
			outcomes[i] = s.Result
		}
	}
	return outcomes, hows
}

// maxPoll bounds every poll, whatever the configured timeout: a slot is
// never held longer.
const maxPoll = 2 * time.Minute

// startMargin: no poll starts for a caller with less than this left to
// wait, a tenth of the device timeout and at most 100ms (see budget.go).
func startMargin(timeout time.Duration) time.Duration {
	return min(timeout/10, 100*time.Millisecond)
}

// valuesFor is the context whose values a poll started for ctx carries
// (the debug view's request trace), or nil when it has none worth
// carrying: a poll's deadline and cancellation never come from a caller.
func valuesFor(ctx context.Context) context.Context {
	if device.TraceFrom(ctx) == nil {
		return nil
	}
	return ctx
}

// withValues is pctx with the values of values, when not nil.
func withValues(pctx, values context.Context) context.Context {
	if values == nil {
		return pctx
	}
	return valuesOf{Context: pctx, values: values}
}

type valuesOf struct {
	context.Context
	values context.Context
}

func (v valuesOf) Value(key any) any { return v.values.Value(key) }

var (
	errSkipped  = errors.New("not polled: the scrape's deadline passed before the device's turn came")
	errWaitedOn = errors.New("the poll of the device in progress did not end within the scrape's deadline")
	errCut      = errors.New("no answer within the time the exporter gives the device (a quarter of the timeout, or what its last answer took plus that), while the slots for slow devices were all busy; its next poll gets the whole timeout")
)

func failedOutcome(m *member, err error) *pollOutcome {
	o := &pollOutcome{at: time.Now(), notPolled: true}
	for ep := range device.NumEndpoints {
		if m.cfg.Collects(ep) {
			o.errs[ep] = err
		}
	}
	return o
}

// pollAndRecord polls m, records the outcome in the device's record, and
// says whether the device answered (for the scheduler: a device that did
// not is silent). It runs once per poll, whoever is served its result.
func (e *Exporter) pollAndRecord(ctx context.Context, f *fleet, m *member) (*pollOutcome, bool) {
	o := m.poll(ctx, f.cfg.Global.InfoTTL)
	if errors.Is(ctx.Err(), context.Canceled) { // cut by the scheduler
		for ep, err := range o.errs {
			if err != nil {
				o.errs[ep] = &device.Error{Reason: device.ReasonTimeout, Op: "poll", Err: errCut}
			}
		}
	}
	o.reuseFingerprint(m.rec.last.Load())
	e.record(f, m, o)
	return o, device.ReasonOf(o.upErr(m.cfg)) != device.ReasonTimeout
}

// poll asks one device for what it collects, one request after the other
// on the device's one kept-alive connection: a device's web server is
// small, and two requests at once would need (and keep) a second
// connection per device. The settings come first; after the device
// rejected the login nothing else is sent.
func (m *member) poll(ctx context.Context, infoTTL time.Duration) *pollOutcome {
	start := time.Now()
	o := &pollOutcome{}
	authFailed := false
	s := m.session
	if m.cfg.Collects(device.EndpointSettings) {
		settings, res, err := s.client.SIPSettings(ctx)
		m.rec.authFailures.Add(uint64(res.AuthFailures))
		o.settings, o.errs[device.EndpointSettings] = settings, err
		authFailed = device.ReasonOf(err) == device.ReasonAuth
	}
	if m.cfg.Collects(device.EndpointStatus) && s.cache.supported(device.EndpointStatus, start) && !authFailed {
		o.status, o.errs[device.EndpointStatus] = m.pollStatus(ctx, start)
	}
	if m.cfg.Collects(device.EndpointInfo) {
		ci := s.cache.info.Load()
		switch {
		case ci != nil && start.Sub(ci.at) < infoTTL:
			o.info = ci.info
		case s.cache.supported(device.EndpointInfo, start):
			o.info, o.errs[device.EndpointInfo] = m.pollInfo(ctx, start)
		case ci != nil:
			o.info = ci.info
		}
	}
	o.duration = time.Since(start)
	o.at = time.Now()
	return o
}

func (m *member) pollStatus(ctx context.Context, now time.Time) (*device.SIPStatus, error) {
	s, res, err := m.session.client.SIPStatus(ctx)
	m.rec.authFailures.Add(uint64(res.AuthFailures))
	if errors.Is(err, device.ErrNotSupported) {
		m.session.cache.markUnsupported(device.EndpointStatus, now)
		return nil, nil
	}
	return s, err
}

func (m *member) pollInfo(ctx context.Context, now time.Time) (*device.Info, error) {
	info, _, err := m.session.client.Info(ctx)
	cache := &m.session.cache
	switch {
	case errors.Is(err, device.ErrNotSupported):
		cache.markUnsupported(device.EndpointInfo, now)
		return nil, nil
	case err != nil:
		if ci := cache.info.Load(); ci != nil {
			return ci.info, err // keep showing what the device last said
		}
		return nil, err
	}
	cache.info.Store(&cachedInfo{info: info, at: now})
	return info, nil
}

// record checks the settings read, and keeps the outcome in the device's
// record: counters, up and down, the last outcome for the pages, the
// settings' fingerprint; it logs changes of the device's state: Info and
// Warn only when it goes up or down, Debug for every poll. A poll of a
// session the device's record no longer serves (a reload changed the
// device's address or credentials meanwhile) is served to the callers that
// waited for it, and recorded nowhere.
func (e *Exporter) record(f *fleet, m *member, o *pollOutcome) {
	o.check(m.cfg)
	rec := m.rec
	if rec.session.Load() != m.session {
		return
	}
	for ep, err := range o.errs {
		if err != nil {
			rec.countError(ep, device.ReasonOf(err))
		}
	}
	rec.last.Store(o)
	if s := o.readSettings(); s != nil {
		rec.noteSettings(o.fingerprint, o.at, f.started)
	}
	e.noteFamily(m)
	upErr := o.upErr(m.cfg)
	up := int32(1)
	if upErr != nil {
		up = 0
	}
	prev := rec.lastUp.Swap(up)
	switch {
	case up == 1:
		rec.downSince.Store(0)
	case prev != 0:
		rec.downSince.Store(o.at.UnixNano())
	}
	switch {
	case up == 0 && prev != 0:
		rec.logger.Warn("device down", "reason", device.ReasonOf(upErr), "err", errString(upErr))
	case up == 1 && prev == 0:
		rec.logger.Info("device up again")
	}
	if rec.logger.Enabled(context.Background(), slog.LevelDebug) {
		rec.logger.Debug("poll", "duration", o.duration, "settings_err", errString(o.errs[device.EndpointSettings]),
			"status_err", errString(o.errs[device.EndpointStatus]), "info_err", errString(o.errs[device.EndpointInfo]))
	}
}

// noteFamily logs, once each time it changes, the API family found for a
// device whose api_version is auto.
func (e *Exporter) noteFamily(m *member) {
	if m.cfg.APIVersion != config.AutoAPIVersion {
		return
	}
	v := m.session.client.APIVersion()
	if v == "" {
		return
	}
	if prev := m.session.family.Swap(&v); prev == nil || *prev != v {
		m.rec.logger.Info("API family found", "api_version", v)
	}
}

// errString is err's message for a log line, with anything shaped like a
// credential redacted (device errors are redacted already; this is the
// second line of defence).
func errString(err error) string {
	if err == nil {
		return ""
	}
	return device.Redact(err.Error())
}
