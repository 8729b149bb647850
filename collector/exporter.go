package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/pbx"
	"github.com/basip/basip_exporter/collector/schedule"
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

	// sched runs the polls; its slots and what it knows of each device
	// outlive configurations.
	sched *schedule.Scheduler[*pollOutcome]
	// polls counts the results served, by how.
	polls [schedule.NumHow]atomic.Uint64
	// renderNanosPerDevice is what rendering an answer took per device,
	// smoothed (see noteRender).
	renderNanosPerDevice atomic.Int64

	devicesDesc, pollsDesc, inFlightDesc *prometheus.Desc

	// pbxSched runs the PBX checks, as sched the device polls.
	pbxSched *schedule.Scheduler[*pbxOutcome]
	// pbxLast is each PBX's last check, by name, for the pages.
	pbxLast   sync.Map
	proberMu  sync.Mutex
	prober    *pbx.Prober
	proberErr error
}

// New returns an Exporter serving cfg.
func New(cfg *config.Config, logger *slog.Logger) (*Exporter, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{
		logger:      logger,
		started:     time.Now(),
		sched:       schedule.New[*pollOutcome](schedule.Options{Concurrency: cfg.Global.Concurrency}),
		pbxSched:    schedule.New[*pbxOutcome](schedule.Options{Concurrency: pbxConcurrency}),
		devicesDesc: prometheus.NewDesc("basip_exporter_devices", "Configured devices.", nil, nil),
		pollsDesc: prometheus.NewDesc("basip_exporter_polls_total",
			"Device results served, by outcome: fresh (a poll of its own), shared (the poll another caller had in flight), reused (a poll younger than min_poll_interval), skipped (the caller's deadline came before the device's turn), waited_out (the poll in flight did not end by the caller's deadline).",
			[]string{"outcome"}, nil),
		inFlightDesc: prometheus.NewDesc("basip_exporter_polls_in_flight", "Device polls in progress, each holding one of global.concurrency's slots.", nil, nil),
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
	ch <- e.pollsDesc
	ch <- e.inFlightDesc
}

// Collect implements prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(e.devicesDesc, prometheus.GaugeValue, float64(e.Devices()))
	polls, _ := e.sched.InFlight()
	ch <- prometheus.MustNewConstMetric(e.inFlightDesc, prometheus.GaugeValue, float64(polls))
	for how := schedule.Fresh; how < schedule.NumHow; how++ {
		ch <- prometheus.MustNewConstMetric(e.pollsDesc, prometheus.CounterValue, float64(e.polls[how].Load()), how.String())
	}
}

// Poll is the result of polling devices for one scrape.
type Poll struct {
	exporter *Exporter
	fleet    *fleet
	members  []*member
	outcomes []*pollOutcome
	served   []schedule.How
	// pbxOut are the checks of fleet.pbxs; nil for a scrape of one device.
	pbxOut []*pbxOutcome
}

// pbxConcurrency is how many PBXs are checked at once.
const pbxConcurrency = 16

// PollFleet polls every configured device, and checks every configured
// PBX beside, within ctx's deadline.
func (e *Exporter) PollFleet(ctx context.Context) *Poll {
	f := e.fleet.Load()
	var pbxOut []*pbxOutcome
	done := make(chan struct{})
	if len(f.pbxs) > 0 {
		go func() {
			defer close(done)
			pbxOut = e.pollPBXs(ctx, f)
		}()
	} else {
		close(done)
	}
	p := e.poll(ctx, f, f.members)
	<-done
	p.pbxOut = pbxOut
	return p
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
	outcomes, served := e.pollMembers(ctx, f, members)
	return &Poll{exporter: e, fleet: f, members: members, outcomes: outcomes, served: served}
}

// WriteTo writes the polled devices' series in the text format.
//
// How long rendering takes is what the next answers reserve for writing
// (see budget.go). It is learned by rendering a sample of the devices into
// memory first, never by timing the writes to the client, which a client
// that reads slowly would make as long as it likes; the whole answer is
// not rendered into memory, which would cost its size in memory per
// scrape.
func (p *Poll) WriteTo(w *bufio.Writer) error {
	if p.exporter != nil && len(p.members) > 1 {
		n := min(len(p.members), renderSample)
		bw := sampleWriters.Get().(*bufio.Writer)
		start := time.Now()
		writeDevices(textformat.NewWriter(bw), p.fleet, p.members[:n], p.outcomes[:n])
		_ = bw.Flush() // to io.Discard: cannot fail
		p.exporter.noteRender(time.Since(start), n)
		sampleWriters.Put(bw)
	}
	tw := textformat.NewWriter(w)
	writeDevices(tw, p.fleet, p.members, p.outcomes)
	writeDevicePBXs(tw, p.fleet, p.members, p.outcomes, p.pbxOut)
	if p.pbxOut != nil {
		writePBXs(tw, p.fleet, p.fleet.pbxs, p.pbxOut)
	}
	if err := tw.Err(); err != nil {
		return err
	}
	return w.Flush()
}

// renderSample is how many devices of an answer are rendered into memory
// to time the rendering.
const renderSample = 200

var sampleWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, 32<<10) }}

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
	if strings.Contains(target, "@") { // user information: never quoted back
		return nil, fmt.Errorf("%w: an address with user information is never a configured device (use credentials)", ErrUnknownTarget)
	}
	return nil, fmt.Errorf("%w %q: not a configured device name or address", ErrUnknownTarget, clean(target))
}
