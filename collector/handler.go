package collector

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
		budget, ok := ScrapeBudget(r.Header.Get(ScrapeTimeoutHeader), opts.TimeoutOffset)
		ctx, cancel := scrapeContext(r.Context(), budget, ok)
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(&pollCollector{ctx: ctx, fleet: f, devices: f.devices, timeout: deviceTimeout(f.cfg, budget, ok), logger: e.logger})
		promhttp.HandlerFor(prometheus.Gatherers{self, reg}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
	})
}

// ProbeHandler serves one configured device's series, named by
// ?target=NAME or by its configured address. It never polls an address
// that is not configured: the stored credentials go nowhere else.
func (e *Exporter) ProbeHandler(opts HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := e.fleet.Load()
		target := r.URL.Query().Get("target")
		d, err := f.lookup(target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		budget, ok := ScrapeBudget(r.Header.Get(ScrapeTimeoutHeader), opts.TimeoutOffset)
		ctx, cancel := scrapeContext(r.Context(), budget, ok)
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(&pollCollector{ctx: ctx, fleet: f, devices: []*device{d}, timeout: deviceTimeout(f.cfg, budget, ok), logger: e.logger})
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
	})
}

func scrapeContext(parent context.Context, budget time.Duration, ok bool) (context.Context, context.CancelFunc) {
	if !ok {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, budget)
}

// lookup finds a configured device by name, or by address after the same
// normalisation the config applies.
func (f *fleet) lookup(target string) (*device, error) {
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
