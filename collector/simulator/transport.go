package simulator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// serveHijacked answers r as the device would, but writes the answer
// itself on the raw connection, for FaultUnsolicited (a second answer
// nobody asked for follows) and FaultCloseAfterResponse ("Connection:
// close", then trailing bytes and no close). It then keeps the connection
// open for the linger time, or until the client hangs up or the server
// closes. answered is called once the answer is out: the request no longer
// counts as in flight while the connection lingers.
func (d *Device) serveHijacked(w http.ResponseWriter, r *http.Request, fault Fault, prefix string, answered func()) {
	rec := &recorder{header: http.Header{}}
	d.route(rec, r, fault, prefix)
	d.mu.Lock()
	linger, unsolicited, delay, trailing := d.linger, d.unsolicited, d.unsolDelay, d.trailing
	d.mu.Unlock()
	if linger == 0 {
		linger = DefaultLinger
	}
	if unsolicited == nil {
		unsolicited = []byte(DefaultUnsolicitedBody)
	}
	if trailing == nil {
		trailing = []byte(DefaultTrailing)
	}

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	// The client hanging up ends the linger; what it sends is dropped.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, brw.Reader)
	}()
	defer func() { conn.Close(); <-gone }()

	var out bytes.Buffer
	if fault == FaultCloseAfterResponse {
		rec.header.Set("Connection", "close")
	}
	rec.writeTo(&out)
	extra := &recorder{header: http.Header{}}
	if fault == FaultUnsolicited {
		writeBody(extra, http.StatusOK, unsolicited)
		if delay <= 0 {
			extra.writeTo(&out)
			extra = nil
		}
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		return
	}
	answered()
	switch fault {
	case FaultUnsolicited:
		if extra != nil {
			if !pause(r, gone, delay) {
				return
			}
			out.Reset()
			extra.writeTo(&out)
			if _, err := conn.Write(out.Bytes()); err != nil {
				return
			}
		}
	case FaultCloseAfterResponse:
		if len(trailing) > 0 {
			if _, err := conn.Write(trailing); err != nil {
				return
			}
		}
	}
	if linger > 0 {
		pause(r, gone, linger)
	}
}

// pause waits for t, and tells whether it did: the client hanging up or
// the server closing ends it sooner.
func pause(r *http.Request, gone <-chan struct{}, t time.Duration) bool {
	timer := time.NewTimer(t)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-gone:
	case <-r.Context().Done():
	}
	return false
}

// recorder keeps an answer to write it on a raw connection.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// writeTo writes the answer as HTTP/1.1, with its Content-Length.
func (r *recorder) writeTo(out *bytes.Buffer) {
	code := r.code
	if code == 0 {
		code = http.StatusOK
	}
	fmt.Fprintf(out, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	r.header.Set("Content-Length", strconv.Itoa(r.body.Len()))
	_ = r.header.Write(out)
	out.WriteString("\r\n")
	out.Write(r.body.Bytes())
}
