package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/policy"
)

// poller polls a set of devices for one scrape: ctx carries the scrape's
// deadline.
type poller struct {
	ctx     context.Context
	fleet   *fleet
	timeout time.Duration // per device, further capped by ctx
	logger  *slog.Logger
}

// pollAll polls the devices, at most global.concurrency at once, and
// returns their outcomes in the same order. A device still waiting for its
// turn when the scrape's deadline passes is reported down with reason
// timeout, without a request.
func (c *poller) pollAll(devices []*member) []pollOutcome {
	outcomes := make([]pollOutcome, len(devices))
	if len(devices) == 1 { // a probe: no goroutine to hand the work to
		outcomes[0] = c.poll(devices[0])
		c.record(devices[0], &outcomes[0])
		return outcomes
	}
	sem := make(chan struct{}, max(1, c.fleet.cfg.Global.Concurrency))
	var wg sync.WaitGroup
	for i, d := range devices {
		select {
		case sem <- struct{}{}:
		case <-c.ctx.Done():
			outcomes[i] = notStarted(d)
			c.record(d, &outcomes[i])
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcomes[i] = c.poll(d)
			c.record(d, &outcomes[i])
		}()
	}
	wg.Wait()
	return outcomes
}

var errNotStarted = errors.New("scrape deadline passed before the device's turn came")

// notStarted is the outcome of a device the scrape had no time for: every
// endpoint it collects failed with reason timeout.
func notStarted(d *member) pollOutcome {
	err := &device.Error{Reason: device.ReasonTimeout, Op: "poll", Err: errNotStarted}
	var o pollOutcome
	if d.cfg.Collects(device.EndpointSettings) {
		o.settingsErr = err
	}
	if d.cfg.Collects(device.EndpointStatus) {
		o.statusErr = err
	}
	if d.cfg.Collects(device.EndpointInfo) {
		o.infoErr = err
	}
	return o
}

// poll asks one device for what it collects, one request after the other
// on the device's one kept-alive connection: a device's web server is small,
// and two requests at once would need (and keep) a second connection per
// device, twenty thousand sockets for a fleet of ten thousand. The
// settings come first; after the device rejected the login nothing else is
// sent.
func (c *poller) poll(d *member) pollOutcome {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := time.Now()
	var o pollOutcome
	authFailed := false
	if d.cfg.Collects(device.EndpointSettings) {
		s, res, err := d.client.SIPSettings(ctx)
		d.state.authFailures.Add(uint64(res.AuthFailures))
		o.settings, o.settingsErr = s, err
		authFailed = device.ReasonOf(err) == device.ReasonAuth
	}
	if d.cfg.Collects(device.EndpointStatus) && d.cache.supported(device.EndpointStatus, start) && !authFailed {
		o.status, o.statusErr = c.pollStatus(ctx, d, start)
	}
	if d.cfg.Collects(device.EndpointInfo) {
		ci := d.cache.info.Load()
		switch {
		case ci != nil && start.Sub(ci.at) < c.fleet.cfg.Global.InfoTTL:
			o.info = ci.info
		case d.cache.supported(device.EndpointInfo, start):
			o.info, o.infoErr = c.pollInfo(ctx, d, start)
		case ci != nil:
			o.info = ci.info
		}
	}
	o.duration = time.Since(start)
	return o
}

func (c *poller) pollStatus(ctx context.Context, d *member, now time.Time) (*device.SIPStatus, error) {
	s, res, err := d.client.SIPStatus(ctx)
	d.state.authFailures.Add(uint64(res.AuthFailures))
	if errors.Is(err, device.ErrNotSupported) {
		d.cache.markUnsupported(device.EndpointStatus, now)
		return nil, nil
	}
	return s, err
}

func (c *poller) pollInfo(ctx context.Context, d *member, now time.Time) (*device.Info, error) {
	info, _, err := d.client.Info(ctx)
	switch {
	case errors.Is(err, device.ErrNotSupported):
		d.cache.markUnsupported(device.EndpointInfo, now)
		return nil, nil
	case err != nil:
		if ci := d.cache.info.Load(); ci != nil {
			return ci.info, err // keep showing what the device last said
		}
		return nil, err
	}
	d.cache.info.Store(&cachedInfo{info: info, at: now})
	return info, nil
}

// record counts a failed poll, checks the settings read, keeps the outcome
// for the status page and logs changes of the device's state: Info and Warn
// only when it goes up or down, Debug for every poll.
func (c *poller) record(d *member, o *pollOutcome) {
	o.check(d.cfg)
	for ep, err := range []error{o.settingsErr, o.statusErr, o.infoErr} {
		if err != nil {
			d.state.pollErrors[ep][device.ReasonOf(err).Index()].Add(1)
		}
	}
	now := time.Now()
	o.at = now
	d.state.last.Store(o)
	if o.settings != nil && o.settingsErr == nil {
		c.noteSettings(d, o.settings, now)
	}
	upErr := o.upErr(d.cfg)
	up := int32(1)
	if upErr != nil {
		up = 0
	}
	prev := d.state.lastUp.Swap(up)
	switch {
	case up == 0 && prev != 0:
		c.logger.Warn("device down", "device", d.name, "reason", device.ReasonOf(upErr), "err", upErr)
	case up == 1 && prev == 0:
		c.logger.Info("device up again", "device", d.name)
	}
	if c.logger.Enabled(c.ctx, slog.LevelDebug) {
		c.logger.Debug("poll", "device", d.name, "duration", o.duration,
			"settings_err", errString(o.settingsErr), "status_err", errString(o.statusErr), "info_err", errString(o.infoErr))
	}
}

// noteSettings keeps the fingerprint of the device's settings and since
// when they hold. The first sighting dates from the exporter's start: the
// settings may be older, but not known to be newer.
func (c *poller) noteSettings(d *member, s *device.SIPSettings, now time.Time) {
	sum := policy.Fingerprint(s)
	prev := d.state.fingerprint.Load()
	switch {
	case prev == nil:
		d.state.fingerprint.Store(&fingerprint{sum: sum, since: c.fleet.started})
	case prev.sum != sum:
		d.state.fingerprint.Store(&fingerprint{sum: sum, since: now})
		c.logger.Info("SIP settings changed", "device", d.name)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
