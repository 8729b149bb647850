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
