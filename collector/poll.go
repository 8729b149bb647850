package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
)

// How a caller got a device's result: from a poll of its own, from a poll
// another caller had in flight, or from a recent enough poll, reused. The
// values of the outcome label of basip_exporter_polls_total.
const (
	servedFresh = iota
	servedShared
	servedReused
	numServed
)

var servedNames = [numServed]string{"fresh", "shared", "reused"}

// flight is a poll in progress; its outcome is valid once done is closed.
type flight struct {
	done chan struct{}
	o    pollOutcome
}

// pollMembers serves the result of every member for one scrape, in order.
//
// A device is never polled twice at once: a caller that finds a poll of it
// in flight waits for that poll's result, and a result younger than the
// device's min_poll_interval is served again. Polls take a slot of the
// fleet's concurrency, shared by every caller.
//
// A dark building must not blind the rest: devices that answered their
// last poll are dispatched first, then those never polled or skipped last
// time, from three quarters of the slots; devices whose last poll timed out
// come last, from the remaining quarter. A poll that takes longer than a
// quarter of the device timeout moves to that quarter too, or is given up
// (reason timeout) when it is full, so silent devices never hold more than
// their share for long. A device still waiting for a slot when the
// deadline passes is reported with reason skipped, without a request.
//
// The deadline is ctx's, less the time writing the answer is expected to
// take (see writeReserve), so the answer reaches Prometheus in time.
func (e *Exporter) pollMembers(ctx context.Context, f *fleet, members []*member) ([]pollOutcome, []int) {
	ctx, cancel := e.pollContext(ctx, len(members))
	defer cancel()
	outcomes := make([]pollOutcome, len(members))
	served := make([]int, len(members))
	flights := make([]*flight, len(members))
	dispatch := func(i int, pool chan struct{}) {
		m := members[i]
		if fl, o, kind := m.session.join(time.Now(), *m.cfg.MinPollInterval); kind >= 0 {
			served[i], flights[i] = kind, fl
			if o != nil {
				outcomes[i] = *o
			}
			return
		}
		select {
		case pool <- struct{}{}:
			if ctx.Err() != nil || tooLate(ctx, f) { // both were ready; select chose at random
				<-pool
				break
			}
		case <-ctx.Done():
		}
		if ctx.Err() != nil || tooLate(ctx, f) {
			o := skipped(m) // its own: the device's state keeps it, not this slice
			e.record(ctx, f, m, &o)
			outcomes[i] = o
			served[i] = servedFresh
			return
		}
		fl, o, kind := m.session.start(time.Now(), *m.cfg.MinPollInterval)
		served[i], flights[i] = kind, fl
		switch {
		case o != nil:
			outcomes[i] = *o
			<-pool
		case kind == servedShared:
			<-pool
		default:
			go e.fly(ctx, f, m, fl, pool)
		}
	}
	classes := make([]int32, len(members)) // taken once: polls change them
	for i, m := range members {
		classes[i] = m.state.class.Load()
	}
	for _, class := range []int32{classAnswered, classUnknown, classSilent} {
		pool := f.slots
		if class == classSilent {
			pool = f.silentSlots
		}
		for i := range members {
			if classes[i] == class {
				dispatch(i, pool)
			}
		}
	}
	for i, fl := range flights {
		if fl == nil {
			continue
		}
		select {
		case <-fl.done:
		case <-ctx.Done():
		}
		select { // a poll that ended is served even when the deadline passed too
		case <-fl.done:
			outcomes[i] = fl.o
		default:
			outcomes[i] = waitedOut(members[i])
		}
	}
	for _, kind := range served {
		e.polls[kind].Add(1)
	}
	return outcomes, served
}

// tooLate reports whether too little of ctx's time is left to start a
// poll: a tenth of the device timeout, at most 100ms. A poll cut off
// before its first answer could come would only count against the device.
func tooLate(ctx context.Context, f *fleet) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < min(f.cfg.Global.Timeout/10, 100*time.Millisecond)
}

// pollContext is ctx with its deadline brought forward by the time the
// answer for n devices is expected to take to write.
func (e *Exporter) pollContext(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-e.writeReserve(n)))
}

// writeReserve is the time kept back from the scrape's deadline to write
// the answer: twice what writing took last time, per device, for n devices,
// and at least 10ms.
func (e *Exporter) writeReserve(n int) time.Duration {
	perDevice := time.Duration(e.writeNanosPerDevice.Load())
	return max(10*time.Millisecond, 2*perDevice*time.Duration(n))
}

// fly runs the poll of fl, holding a slot of pool, and lands it: every
// caller waiting on fl gets its outcome. The poll is bounded by the
// device's timeout and by ctx's deadline, but not cancelled with ctx: other
// callers may wait on it.
func (e *Exporter) fly(ctx context.Context, f *fleet, m *member, fl *flight, pool chan struct{}) {
	deadline := time.Now().Add(f.cfg.Global.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-landingMargin).Before(deadline) {
		deadline = d.Add(-landingMargin)
	}
	pctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	s := slot{held: pool}
	if pool != f.silentSlots {
		t := time.AfterFunc(f.slowAfter, func() { s.demote(f.silentSlots, cancel) })
		defer t.Stop()
	}
	fl.o = m.poll(pctx, f.cfg.Global.InfoTTL)
	s.release()
	fl.o.reuseFingerprint(m.session.lastResult())
	e.record(ctx, f, m, &fl.o)
	m.session.land(fl)
}

// landingMargin ends a poll that far before the deadline its callers wait
// for, so that a poll cut off by the deadline is still served, with its
// reason, rather than missed by a hair.
const landingMargin = 20 * time.Millisecond

// slot is the concurrency slot a poll holds, in one pool or the other.
type slot struct {
	mu   sync.Mutex
	held chan struct{} // nil once released
}

// demote moves a slow poll into the silent pool, or gives it up with
// cancel when that pool is full.
func (s *slot) demote(silent chan struct{}, cancel context.CancelFunc) {
	select {
	case silent <- struct{}{}:
	default:
		cancel()
		return
	}
	s.mu.Lock()
	old := s.held
	if old != nil {
		s.held = silent
	}
	s.mu.Unlock()
	if old == nil { // the poll ended meanwhile
		<-silent
		return
	}
	<-old
}

func (s *slot) release() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	<-held
}

var (
	errSkipped  = errors.New("not polled: the scrape's deadline passed before the device's turn came")
	errWaitedOn = errors.New("the poll of the device in progress did not end within the scrape's deadline")
)

// skipped is the outcome of a device the scrape had no time for: every
// endpoint it collects failed with reason skipped.
func skipped(m *member) pollOutcome {
	return failedOutcome(m, &device.Error{Reason: device.ReasonSkipped, Op: "poll", Err: errSkipped})
}

// waitedOut is the outcome for a caller whose deadline passed while it
// waited for another caller's poll of the device.
func waitedOut(m *member) pollOutcome {
	return failedOutcome(m, &device.Error{Reason: device.ReasonTimeout, Op: "poll", Err: errWaitedOn})
}

func failedOutcome(m *member, err error) pollOutcome {
	o := pollOutcome{at: time.Now(), notPolled: true}
	if m.cfg.Collects(device.EndpointSettings) {
		o.settingsErr = err
	}
	if m.cfg.Collects(device.EndpointStatus) {
		o.statusErr = err
	}
	if m.cfg.Collects(device.EndpointInfo) {
		o.infoErr = err
	}
	return o
}

// poll asks one device for what it collects, one request after the other
// on the device's one kept-alive connection: a device's web server is
// small, and two requests at once would need (and keep) a second
// connection per device. The settings come first; after the device
// rejected the login nothing else is sent.
func (m *member) poll(ctx context.Context, infoTTL time.Duration) pollOutcome {
	start := time.Now()
	var o pollOutcome
	authFailed := false
	s := m.session
	if m.cfg.Collects(device.EndpointSettings) {
		settings, res, err := s.client.SIPSettings(ctx)
		m.state.authFailures.Add(uint64(res.AuthFailures))
		o.settings, o.settingsErr = settings, err
		authFailed = device.ReasonOf(err) == device.ReasonAuth
	}
	if m.cfg.Collects(device.EndpointStatus) && s.cache.supported(device.EndpointStatus, start) && !authFailed {
		o.status, o.statusErr = m.pollStatus(ctx, start)
	}
	if m.cfg.Collects(device.EndpointInfo) {
		ci := s.cache.info.Load()
		switch {
		case ci != nil && start.Sub(ci.at) < infoTTL:
			o.info = ci.info
		case s.cache.supported(device.EndpointInfo, start):
			o.info, o.infoErr = m.pollInfo(ctx, start)
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
	m.state.authFailures.Add(uint64(res.AuthFailures))
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

// record counts a failed poll, checks the settings read, keeps the outcome
// for the status page and logs changes of the device's state: Info and Warn
// only when it goes up or down, Debug for every poll. It runs once per
// poll, whoever else is served its result.
func (e *Exporter) record(ctx context.Context, f *fleet, m *member, o *pollOutcome) {
	o.check(m.cfg)
	for ep, err := range []error{o.settingsErr, o.statusErr, o.infoErr} {
		if err != nil {
			m.state.countError(ep, device.ReasonOf(err))
		}
	}
	m.state.last.Store(o)
	if s := o.readSettings(); s != nil {
		e.noteSettings(f, m, o.fingerprint, o.at)
	}
	upErr := o.upErr(m.cfg)
	up := int32(1)
	if upErr != nil {
		up = 0
	}
	switch reason := device.ReasonOf(upErr); {
	case upErr == nil:
		m.state.class.Store(classAnswered)
	case reason == device.ReasonSkipped:
		m.state.class.Store(classUnknown)
	case reason == device.ReasonTimeout && o.duration >= f.slowAfter:
		m.state.class.Store(classSilent)
	case reason == device.ReasonTimeout: // cut short by the scrape's deadline
		m.state.class.Store(classUnknown)
	default:
		m.state.class.Store(classAnswered)
	}
	e.noteFamily(m)
	prev := m.state.lastUp.Swap(up)
	switch {
	case up == 1:
		m.state.downSince.Store(0)
	case prev != 0:
		m.state.downSince.Store(o.at.UnixNano())
	}
	switch {
	case up == 0 && prev != 0:
		e.logger.Warn("device down", "device", m.name, "reason", device.ReasonOf(upErr), "err", errString(upErr))
	case up == 1 && prev == 0:
		e.logger.Info("device up again", "device", m.name)
	}
	if e.logger.Enabled(ctx, slog.LevelDebug) {
		e.logger.Debug("poll", "device", m.name, "duration", o.duration,
			"settings_err", errString(o.settingsErr), "status_err", errString(o.statusErr), "info_err", errString(o.infoErr))
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
		e.logger.Info("API family found", "device", m.name, "api_version", v)
	}
}

// noteSettings keeps the fingerprint of the device's settings and since
// when they hold. The first sighting dates from the exporter's start: the
// settings may be older, but not known to be newer.
func (e *Exporter) noteSettings(f *fleet, m *member, sum uint64, now time.Time) {
	prev := m.state.fingerprint.Load()
	switch {
	case prev == nil:
		m.state.fingerprint.Store(&fingerprint{sum: sum, since: f.started})
	case prev.sum != sum:
		m.state.fingerprint.Store(&fingerprint{sum: sum, since: now})
		e.logger.Info("SIP settings changed", "device", m.name)
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
