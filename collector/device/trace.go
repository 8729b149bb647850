package device

import (
	"context"
	"sync"
	"time"
)

// Trace records the requests of a call, for a debug view. Paths are recorded
// without their query, so no credential is kept.
type Trace struct {
	mu       sync.Mutex
	requests []TracedRequest
}

// TracedRequest is one request of a traced call, retries included.
type TracedRequest struct {
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Status   int           `json:"status,omitempty"` // 0 when no answer came
	Attempts int           `json:"attempts"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// Requests returns the requests recorded so far.
func (t *Trace) Requests() []TracedRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TracedRequest(nil), t.requests...)
}

// Add records one request.
func (t *Trace) Add(r TracedRequest) {
	t.mu.Lock()
	t.requests = append(t.requests, r)
	t.mu.Unlock()
}

type traceKey struct{}

// WithTrace returns a context whose calls are recorded in t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFrom returns the Trace of ctx, or nil.
func TraceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}
