package collector

import (
	"strconv"
	"time"
)

// How long a scrape or a probe waits for polls, computed once per request
// by Budget from what Prometheus says and what the exporter learned. Every
// margin between Prometheus' timeout and the polls is in this table.
//
//	quantity          rule
//	timeout T         X-Prometheus-Scrape-Timeout-Seconds; absent, not a number,
//	                  <= 0 or over a day: no budget (the caller waits for every
//	                  poll, each bounded by the device timeout)
//	floor             a T under MinScrapeTimeout (1 s) is taken as 1 s: a
//	                  smaller one leaves no time to poll anything
//	offset            --scrape.timeout-offset, at most T/2
//	write reserve     twice the time rendering the answer into memory took per
//	                  device (smoothed over the last answers, never measured on
//	                  the client's socket), times the devices; at least 5 ms,
//	                  at most T/4
//	wait              T - offset - write reserve: the caller stops waiting for
//	                  polls then; a poll never does (it runs under the device
//	                  timeout, for the next callers)
//	start margin      no poll starts with less than min(device timeout/10,
//	                  100 ms) of the wait left: the device is skipped
//	a poll            runs under the device timeout, at most 2 min (maxPoll),
//	                  whoever waits for it
//	write deadline    wait + 10 s for the handler to write (package server)
const (
	MinScrapeTimeout = time.Second
	minWriteReserve  = 5 * time.Millisecond
)

// Budget is how long one request waits for polls.
type Budget struct {
	// Timeout is Prometheus' scrape timeout, after the floor.
	Timeout time.Duration
	// Wait is how long the caller waits for polls.
	Wait time.Duration
}

// ParseBudget computes a request's budget from the scrape timeout header,
// the offset and the write reserve (see the table above); ok is false
// when the header gives none.
func ParseBudget(header string, offset, writeReserve time.Duration) (b Budget, ok bool) {
	if header == "" {
		return Budget{}, false
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || !(secs > 0) || secs > 24*3600 {
		return Budget{}, false
	}
	t := max(time.Duration(secs*float64(time.Second)), MinScrapeTimeout)
	offset = min(max(offset, 0), t/2)
	reserve := min(max(writeReserve, minWriteReserve), t/4)
	return Budget{Timeout: t, Wait: t - offset - reserve}, true
}

// Budget is ParseBudget with the write reserve the exporter learned for an
// answer of n devices.
func (e *Exporter) Budget(header string, offset time.Duration, n int) (Budget, bool) {
	return ParseBudget(header, offset, e.writeReserve(n))
}

// writeReserve is twice the smoothed time rendering took per device, for
// n devices.
func (e *Exporter) writeReserve(n int) time.Duration {
	return 2 * time.Duration(e.renderNanosPerDevice.Load()) * time.Duration(n)
}

// noteRender smooths in how long rendering n devices took: an answer
// counts for a quarter, so one slow render (a GC, a busy machine) moves the
// reserve but does not set it.
func (e *Exporter) noteRender(took time.Duration, n int) {
	if n < 1 {
		return
	}
	sample := int64(took) / int64(n)
	for {
		old := e.renderNanosPerDevice.Load()
		next := sample
		if old != 0 {
			next = (3*old + sample) / 4
		}
		if e.renderNanosPerDevice.CompareAndSwap(old, next) {
			return
		}
	}
}
