package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// scrapeTimeoutHeader is the header in which Prometheus sends its scrape
// timeout.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// scrapeContext is the request's context with its deadline at the end of
// the request's budget (collector.Budget: computed once per request, from
// the header, the offset and the write reserve), when Prometheus sent a
// timeout; it also sets the handler's write deadline: the budget's
// timeout plus writeMargin, or noBudgetWriteTimeout without one. n is the
// number of devices the answer holds.
func scrapeContext(w http.ResponseWriter, r *http.Request, e *collector.Exporter, offset time.Duration, n int) (context.Context, context.CancelFunc) {
	budget, ok := e.Budget(r.Header.Get(scrapeTimeoutHeader), offset, n)
	write := noBudgetWriteTimeout
	if ok {
		write = budget.Timeout + writeMargin
	}
	// An error means the ResponseWriter cannot set deadlines (a test
	// recorder); the server's own timeouts still apply.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(write))
	if !ok {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), budget.Wait)
}

// metricsHandler serves every configured device's series after the
// exporter's own metrics (self).
func metricsHandler(e *collector.Exporter, self prometheus.Gatherer, offset time.Duration, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := scrapeContext(w, r, e, offset, e.Devices())
		defer cancel()
		poll := e.PollFleet(ctx)
		respond(w, r, true, func(bw *bufio.Writer) error {
			if err := writeSelf(bw, self, logger); err != nil {
				return err
			}
			return poll.WriteTo(bw)
		})
	})
}

// probeHandler serves one configured device's series, named by
// ?target=NAME or by its configured address, and calls polled(true) once
// the device has been polled. A target that is not configured answers 400
// and counts in rejected.
func probeHandler(e *collector.Exporter, offset time.Duration, rejected prometheus.Counter, polled func(bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := scrapeContext(w, r, e, offset, 1)
		defer cancel()
		poll, err := e.PollDevice(ctx, r.URL.Query().Get("target"))
		if err != nil {
			rejected.Inc()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		polled(true)
		// A probe's answer is too small to be worth compressing.
		respond(w, r, false, poll.WriteTo)
	})
}

// respond sends what write writes as the text format, gzipped when
// compress is set and the client accepts it.
func respond(w http.ResponseWriter, r *http.Request, compress bool, write func(*bufio.Writer) error) {
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	var out io.Writer = w
	if compress && acceptsGzip(r) {
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
	if err := write(bw); err != nil {
		return // the client went away
	}
	_ = bw.Flush()
}

// writeSelf writes the exporter's own metrics.
func writeSelf(bw *bufio.Writer, self prometheus.Gatherer, logger *slog.Logger) error {
	if self == nil {
		return nil
	}
	mfs, err := self.Gather()
	if err != nil {
		logger.Error("gathering the exporter's own metrics", "err", err)
	}
	enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

var bufferPool = sync.Pool{New: func() any { return bufio.NewWriterSize(io.Discard, 32<<10) }}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return gz
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept-Encoding"), ","), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		// q=0 in any spelling (0.0, 0.000, " q = 0 ") refuses gzip; so
		// does a weight that cannot be read: identity always works.
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			if !strings.EqualFold(strings.TrimSpace(k), "q") {
				continue
			}
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(q > 0) || q > 1 {
				return false
			}
		}
		return true
	}
	return false
}
