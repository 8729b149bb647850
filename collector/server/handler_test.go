package server

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientThatNeverReadsCannotHoldAHandler: a client asks and never reads
// the answer; the handler's writes fail at its write deadline and it
// returns, instead of blocking for good on a full socket buffer.
func TestClientThatNeverReadsCannotHoldAHandler(t *testing.T) {
	returned := make(chan error, 1)
	big := make([]byte, 1<<20)
	h := withWriteDeadline(func(*http.Request) time.Duration { return 500 * time.Millisecond },
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for range 256 { // 256 MiB: far more than any socket buffer
				if _, err := w.Write(big); err != nil {
					returned <- err
					return
				}
			}
			returned <- nil
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("the handler wrote 256 MiB to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler is still blocked 30s after its 0.5s write deadline")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"deflate, gzip":           true,
		"gzip;q=1":                true,
		"gzip;q=0.5":              true,
		"gzip; q=0.001":           true,
		"gzip;q=0":                false,
		"gzip;q=0.0":              false,
		"gzip;q=0.00":             false,
		"gzip;q=0.000":            false,
		"gzip ; q = 0.000":        false,
		"gzip;Q=0":                false,
		"identity, gzip;q=0":      false,
		"gzip;q=bogus":            false,
		"gzip;q=NaN":              false,
		"gzip;q=-1":               false,
		"br, gzip;level=1;q=0.00": false,
		"gzipx":                   false,
		"x-gzip;q=1":              false,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
		if header != "" {
			r.Header.Set("Accept-Encoding", header)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: acceptsGzip = %v, want %v", header, got, want)
		}
	}
	// Two header lines are one list.
	r, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	r.Header.Add("Accept-Encoding", "br")
	r.Header.Add("Accept-Encoding", "gzip")
	if !acceptsGzip(r) {
		t.Error("gzip on a second Accept-Encoding line not seen")
	}
}
