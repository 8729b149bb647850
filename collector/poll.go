package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/prometheus/client_golang/prometheus"
)

// pollCollector polls a set of devices when collected. It lives for one
// scrape: ctx carries the scrape's deadline.
type pollCollector struct {
	ctx     context.Context
	fleet   *fleet
	devices []*device
	timeout time.Duration // per device, further capped by ctx
	logger  *slog.Logger
}

// Describe sends nothing: the collector is unchecked, its series depend on
// what the devices answer.
func (c *pollCollector) Describe(chan<- *prometheus.Desc) {}

// Collect polls the devices, at most global.concurrency at once, and sends
// their series. A device still waiting for its turn when the scrape's
// deadline passes is reported down with reason timeout, without a request.
func (c *pollCollector) Collect(ch chan<- prometheus.Metric) {
	sem := make(chan struct{}, max(1, c.fleet.cfg.Global.Concurrency))
	var wg sync.WaitGroup
	for _, d := range c.devices {
		select {
		case sem <- struct{}{}:
		case <-c.ctx.Done():
			o := pollOutcome{err: &basip.Error{Reason: basip.ReasonTimeout, Op: "poll", Err: errNotStarted}}
			c.record(d, o)
			emit(ch, c.fleet.descs, d, o)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := c.poll(d)
			c.record(d, o)
			emit(ch, c.fleet.descs, d, o)
		}()
	}
	wg.Wait()
}

var errNotStarted = errors.New("scrape deadline passed before the device's turn came")

func (c *pollCollector) poll(d *device) pollOutcome {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := time.Now()
	s, res, err := d.client.SIPSettings(ctx)
	if res.AuthFailures > 0 {
		d.state.authFailures.Add(uint64(res.AuthFailures))
	}
	return pollOutcome{settings: s, err: err, duration: time.Since(start)}
}

// record counts a failed poll and logs changes of the device's state:
// Info and Warn only when it goes up or down, Debug for every poll.
func (c *pollCollector) record(d *device, o pollOutcome) {
	up := int32(0)
	if o.err == nil {
		up = 1
	} else {
		d.state.pollErrors[reasonIndex[basip.ReasonOf(o.err)]].Add(1)
	}
	d.state.last.Store(&lastPoll{at: time.Now(), pollOutcome: o})
	prev := d.state.lastUp.Swap(up)
	switch {
	case up == 0 && prev != 0:
		c.logger.Warn("device down", "device", d.name, "reason", basip.ReasonOf(o.err), "err", o.err)
	case up == 1 && prev == 0:
		c.logger.Info("device up again", "device", d.name)
	}
	if o.err != nil {
		c.logger.Debug("poll failed", "device", d.name, "reason", basip.ReasonOf(o.err), "err", o.err, "duration", o.duration)
	} else {
		c.logger.Debug("poll ok", "device", d.name, "duration", o.duration)
	}
}
