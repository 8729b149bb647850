// Package server is the exporter's HTTP surface: /metrics and /probe with
// the device series, /metrics/exporter with the exporter's own metrics
// only, /sd for Prometheus' service discovery, the landing page, /debug and
// /config, /-/reload, and the health endpoints. It knows
// HTTP and the pages; what they show comes from package collector.
//
// The endpoints that change nothing answer GET and HEAD, /-/reload POST;
// any other method is 405 with an Allow header, before anything is done.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the HTTP surface.
type Options struct {
	// TimeoutOffset is taken off Prometheus' scrape timeout.
	TimeoutOffset time.Duration
	// Self is the exporter's own metrics, served on /metrics before the
	// device series; Registerer is where the endpoints' own
	// instrumentation is registered (both usually one registry).
	Self       prometheus.Gatherer
	Registerer prometheus.Registerer
	// Reload reloads the configuration, for POST /-/reload.
	Reload func() error
	Logger *slog.Logger
	// Pages describe the exporter on its pages.
	Pages PageOptions
}

// New returns the exporter's routes over e.
func New(e *collector.Exporter, o Options) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "basip_exporter_http_requests_total",
		Help: "Requests to the exporter's own HTTP endpoints, by handler and status code.",
	}, []string{"handler", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "basip_exporter_http_request_duration_seconds",
		Help:    "How long the exporter's own HTTP endpoints took to answer, by handler.",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"handler"})
	rejected := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "basip_exporter_probe_rejected_targets_total",
		Help: "Probe requests refused because the target is not a configured device.",
	})
	o.Registerer.MustRegister(requests, duration, rejected)
	mux := http.NewServeMux()
	// handle serves h on path for the given methods only; any other
	// method is 405 with Allow, counted under the handler's name.
	handle := func(path, name string, methods []string, h http.Handler) {
		labels := prometheus.Labels{"handler": name}
		mux.Handle(path, promhttp.InstrumentHandlerCounter(requests.MustCurryWith(labels),
			promhttp.InstrumentHandlerDuration(duration.MustCurryWith(labels), allowOnly(methods, h))))
	}
	pageDeadline := func(*http.Request) time.Duration { return e.Config().Global.Timeout + writeMargin }
	var polled atomic.Bool
	handle("/metrics", "metrics", readOnly, marking(&polled, metricsHandler(e, o.Self, o.TimeoutOffset, o.Logger)))
	handle("/probe", "probe", readOnly, probeHandler(e, o.TimeoutOffset, rejected, polled.Store))
	if o.Self != nil {
		handle("/metrics/exporter", "metrics_exporter", readOnly, withWriteDeadline(pageDeadline,
			promhttp.HandlerFor(o.Self, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)})))
	}
	handle("/sd", "sd", readOnly, withWriteDeadline(pageDeadline, sdHandler(e)))
	reloadDeadline := func(*http.Request) time.Duration { return config.ReloadTimeout + writeMargin }
	handle("/-/reload", "reload", []string{http.MethodPost}, withWriteDeadline(reloadDeadline, reloadHandler(o.Reload)))
	handle("/-/healthy", "healthy", readOnly, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") }))
	handle("/-/ready", "ready", readOnly, readyHandler(&polled))
	p := newPages(e, o.Pages)
	// "/{$}" is the root alone: any other unknown path is 404 whatever
	// its method.
	handle("/{$}", "landing", readOnly, withWriteDeadline(pageDeadline, p.landingHandler()))
	handle("/debug", "debug", readOnly, withWriteDeadline(pageDeadline, p.debugHandler()))
	handle("/config", "config", readOnly, withWriteDeadline(pageDeadline, p.configHandler()))
	return mux
}

// readOnly are the methods of the endpoints that change nothing.
var readOnly = []string{http.MethodGet, http.MethodHead}

// allowOnly serves h for the methods listed and answers any other with
// 405 and an Allow header naming them, before h runs: a DELETE /metrics
// polls no device.
func allowOnly(methods []string, h http.Handler) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			http.Error(w, "method not allowed; use "+allow, http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// marking sets polled before h runs: a scrape of /metrics or /probe has
// begun, so the exporter polls devices.
func marking(polled *atomic.Bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polled.Store(true)
		h.ServeHTTP(w, r)
	})
}

// readyHandler answers 503 until the first scrape of /metrics, or of
// /probe for a configured device, has begun, then 200. The routes exist only once the configuration has
// loaded, so ready means: configured, and Prometheus reaches this process
// and has it poll devices. A /metrics/exporter scrape polls none and does
// not count, nor does a /probe refused with 400.
func readyHandler(polled *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !polled.Load() {
			http.Error(w, "Not ready: configuration loaded, no scrape of /metrics or /probe yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
}

// Write deadlines: a client that never reads its answer cannot hold a
// handler (and the poll results it keeps) longer than this. A scrape gets
// its scrape timeout plus writeMargin (see scrapeContext); one without a
// scrape timeout, which may poll a whole fleet without a deadline,
// noBudgetWriteTimeout; a page the device timeout plus writeMargin.
const (
	writeMargin          = 10 * time.Second
	noBudgetWriteTimeout = 5 * time.Minute
)

// withWriteDeadline sets the response's write deadline to timeout(r) from
// now before h runs.
func withWriteDeadline(timeout func(*http.Request) time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An error means the ResponseWriter cannot set deadlines (a test
		// recorder); the server's own timeouts still apply.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout(r)))
		h.ServeHTTP(w, r)
	})
}

// reloadHandler reloads the configuration (its route takes POST only):
// 200, 500 with the reason, or 503 while another reload runs.
func reloadHandler(reload func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		err := reload()
		if errors.Is(err, config.ErrReloadInProgress) { // answered at once: reloads never queue
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			http.Error(w, "reload failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
