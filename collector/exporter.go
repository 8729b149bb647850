package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/textformat"
	"github.com/prometheus/client_golang/prometheus"
)

// Exporter holds the current fleet. Apply swaps in a new configuration;
// polls in progress finish on the fleet they started with.
//
// Exporter is a prometheus.Collector of the exporter's own metrics. The
// device series are not built as prometheus.Metric values but written
// straight to the text format by WriteFleet and WriteDevice (see package
// textformat for why).
type Exporter struct {
	logger  *slog.Logger
	started time.Time
	fleet   atomic.Pointer[fleet]
	mu      sync.Mutex // serialises Apply

	devicesDesc *prometheus.Desc
}

// New returns an Exporter serving cfg.
func New(cfg *config.Config, logger *slog.Logger) (*Exporter, error) {
	e := &Exporter{
		logger:      logger,
		started:     time.Now(),
		devicesDesc: prometheus.NewDesc("basip_exporter_devices", "Configured devices.", nil, nil),
	}
	if err := e.Apply(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// Config returns the configuration being served.
func (e *Exporter) Config() *config.Config { return e.fleet.Load().cfg }

// Devices returns the number of configured devices.
func (e *Exporter) Devices() int { return len(e.fleet.Load().members) }

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- e.devicesDesc
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(e.devicesDesc, prometheus.GaugeValue, float64(e.Devices()))
}

// Poll is the result of polling devices for one scrape.
type Poll struct {
	fleet    *fleet
	members  []*member
	outcomes []pollOutcome
}

// PollFleet polls every configured device within ctx's deadline.
func (e *Exporter) PollFleet(ctx context.Context) *Poll {
	f := e.fleet.Load()
	return e.poll(ctx, f, f.members)
}

// ErrUnknownTarget is returned for a target that is neither a configured
// device's name nor its address.
var ErrUnknownTarget = errors.New("unknown target")

// PollDevice polls the device named by target (its name, or its configured
// address after normalisation) within ctx's deadline. It never polls an
// address that is not configured: the stored credentials go nowhere else.
func (e *Exporter) PollDevice(ctx context.Context, target string) (*Poll, error) {
	f := e.fleet.Load()
	m, err := f.lookup(target)
	if err != nil {
		return nil, err
	}
	return e.poll(ctx, f, []*member{m}), nil
}

func (e *Exporter) poll(ctx context.Context, f *fleet, members []*member) *Poll {
	p := &poller{ctx: ctx, fleet: f, timeout: f.cfg.Global.Timeout, logger: e.logger}
	return &Poll{fleet: f, members: members, outcomes: p.pollAll(members)}
}

// WriteTo writes the polled devices' series in the text format.
func (p *Poll) WriteTo(w *bufio.Writer) error {
	tw := textformat.NewWriter(w)
	writeDevices(tw, p.fleet, p.members, p.outcomes)
	return tw.Err()
}

// lookup finds a configured device by name, or by address after the same
// normalisation the config applies.
func (f *fleet) lookup(target string) (*member, error) {
	if target == "" {
		return nil, fmt.Errorf("%w: missing parameter: target", ErrUnknownTarget)
	}
	if m, ok := f.byName[target]; ok {
		return m, nil
	}
	if u, err := config.ParseAddress(target); err == nil {
		if m, ok := f.byAddr[u.String()]; ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w %q: not a configured device name or address", ErrUnknownTarget, clean(target))
}
