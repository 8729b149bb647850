package collector

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// ScrapeTimeoutHeader is the header in which Prometheus sends its scrape
// timeout.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// ScrapeBudget returns how long a scrape may take: the timeout Prometheus
// sent in its header less offset, so the answer is sent before Prometheus
// gives up. ok is false when the header is absent or unusable. An offset
// larger than the timeout is ignored rather than leaving no time at all.
func ScrapeBudget(header string, offset time.Duration) (budget time.Duration, ok bool) {
	if header == "" {
		return 0, false
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || secs <= 0 || secs > 24*3600 {
		return 0, false
	}
	t := time.Duration(secs * float64(time.Second))
	if t > offset {
		t -= offset
	}
	return t, true
}

// deviceTimeout is a device's deadline: global.timeout capped by the
// scrape's budget.
func deviceTimeout(cfg *config.Config, budget time.Duration, ok bool) time.Duration {
	if ok && budget < cfg.Global.Timeout {
		return budget
	}
	return cfg.Global.Timeout
}

// HandlerOpts configure the HTTP handlers.
type HandlerOpts struct {
	// TimeoutOffset is taken off Prometheus' scrape timeout.
	TimeoutOffset time.Duration
}

// MetricsHandler serves every configured device's series plus the series
// of self (the exporter's own metrics).
func (e *Exporter) MetricsHandler(self prometheus.Gatherer, opts HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := e.fleet.Load()
		e.serve(w, r, f, f.devices, self, opts)
	})
}

// ProbeHandler serves one configured device's series, named by
// ?target=NAME or by its configured address. It never polls an address
// that is not configured: the stored credentials go nowhere else.
func (e *Exporter) ProbeHandler(opts HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := e.fleet.Load()
		d, err := f.lookup(r.URL.Query().Get("target"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.serve(w, r, f, []*member{d}, nil, opts)
	})
}

// serve polls devices within the scrape's deadline and writes their series
// after those of self, if any.
func (e *Exporter) serve(w http.ResponseWriter, r *http.Request, f *fleet, devices []*member, self prometheus.Gatherer, opts HandlerOpts) {
	budget, ok := ScrapeBudget(r.Header.Get(ScrapeTimeoutHeader), opts.TimeoutOffset)
	ctx, cancel := scrapeContext(r.Context(), budget, ok)
	defer cancel()
	p := &poller{ctx: ctx, fleet: f, timeout: deviceTimeout(f.cfg, budget, ok), logger: e.logger}
	outcomes := p.pollAll(devices)

	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	// A probe's answer is too small to be worth compressing.
	if len(devices) > 1 && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			_ = gz.Close()
			gz.Reset(io.Discard)
			gzipPool.Put(gz)
		}()
		out = gz
	}
	bw := bufferPool.Get().(*bufio.Writer)
	bw.Reset(out)
	defer func() {
		bw.Reset(io.Discard)
		bufferPool.Put(bw)
	}()
	if self != nil {
		mfs, err := self.Gather()
		if err != nil {
			e.logger.Error("gathering the exporter's own metrics", "err", err)
		}
		enc := expfmt.NewEncoder(bw, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
	}
	if err := writeDevices(bw, f, devices, outcomes); err != nil {
		return // the client went away
	}
	_ = bw.Flush()
}

var bufferPool = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, 32<<10) }}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return gz
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func scrapeContext(parent context.Context, budget time.Duration, ok bool) (context.Context, context.CancelFunc) {
	if !ok {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, budget)
}

// lookup finds a configured device by name, or by address after the same
// normalisation the config applies.
func (f *fleet) lookup(target string) (*member, error) {
	if target == "" {
		return nil, fmt.Errorf("missing parameter: target")
	}
	if d, ok := f.byName[target]; ok {
		return d, nil
	}
	if u, err := config.ParseAddress(target); err == nil {
		if d, ok := f.byAddr[u.String()]; ok {
			return d, nil
		}
	}
	return nil, fmt.Errorf("unknown target %q: not a configured device name or address", clean(target))
}
