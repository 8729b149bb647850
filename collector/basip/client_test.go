package basip

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClient(t *testing.T, rawURL, apiVersion, password string, now func() time.Time) *Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{BaseURL: u, APIVersion: apiVersion, Username: "admin", Password: password, Now: now})
	t.Cleanup(c.Close)
	return c
}

func TestLoginBackoffDoublesAndCaps(t *testing.T) {
	dev := &simulator.Device{Username: "admin", Password: "right-Pass1", APIVersion: "v1"}
	dev.SetSettings(simulator.PanelSettings("1", "udp"))
	srv, err := simulator.Serve(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newClient(t, srv.URL, "v1", "wrong-Pass1", clk.Now)
	ctx := context.Background()

	wantGaps := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, gap := range wantGaps {
		_, res, err := c.SIPSettings(ctx)
		if device.ReasonOf(err) != device.ReasonAuth || res.AuthFailures != 1 {
			t.Fatalf("attempt %d: err %v, auth failures %d", i, err, res.AuthFailures)
		}
		logins := dev.Logins.Load()
		clk.Add(gap - time.Second)
		if _, res, err := c.SIPSettings(ctx); device.ReasonOf(err) != device.ReasonAuth || res.Requests != 0 || res.AuthFailures != 0 {
			t.Fatalf("attempt %d: inside the back-off: err %v, %d requests", i, err, res.Requests)
		}
		if dev.Logins.Load() != logins {
			t.Fatalf("attempt %d: a login was sent %v into a %v back-off", i, gap-time.Second, gap)
		}
		clk.Add(time.Second)
	}
	// A fixed password ends the back-off once it has run out.
	dev.SetPassword("wrong-Pass1")
	clk.Add(-time.Second)
	if _, _, err := c.SIPSettings(ctx); device.ReasonOf(err) != device.ReasonAuth {
		t.Fatalf("expected to be still backing off, got %v", err)
	}
	clk.Add(2 * time.Second)
	if _, _, err := c.SIPSettings(ctx); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
}

func TestLoginSendsUpperCaseMD5(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v0/login" {
			got = r.URL.Query()
			_, _ = w.Write([]byte(`{"token":"t"}`))
			return
		}
		_, _ = w.Write([]byte(`{"enable":true}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "v0", "123456", nil)
	if _, _, err := c.SIPSettings(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Get("password") != "E10ADC3949BA59ABBE56E057F20F883E" || got.Get("username") != "admin" {
		t.Errorf("login query %v", got)
	}
}

func TestRetriesStopAtTheDeadline(t *testing.T) {
	dev := &simulator.Device{Username: "admin", Password: "p-Pass1", APIVersion: "v1"}
	dev.SetFault(simulator.FaultServerError)
	srv, err := simulator.Serve(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newClient(t, srv.URL, "v1", "p-Pass1", nil)
	// A deadline shorter than a retry's wait leaves room for one attempt only.
	ctx, cancel := context.WithTimeout(context.Background(), devhttp.RetryWaitMax)
	defer cancel()
	_, res, err := c.SIPSettings(ctx)
	if device.ReasonOf(err) != device.ReasonHTTPStatus {
		t.Fatalf("err %v", err)
	}
	if res.Requests != 1 {
		t.Errorf("%d requests within a %v deadline, want 1", res.Requests, devhttp.RetryWaitMax)
	}
}

func TestDecodeSIPSettings(t *testing.T) {
	s, err := DecodeSIPSettings([]byte(`{"enable":false,"password":"secret-1","stun":{"ip":"::1","port":3478},"timeout":300}`))
	if err != nil {
		t.Fatal(err)
	}
	if *s.Enable || *s.Timeout != 300 || s.Password.Reveal() != "secret-1" || s.STUNAddress() != "[::1]:3478" || s.Proxy != nil {
		t.Errorf("decoded %+v", s)
	}
	if _, err := DecodeSIPSettings([]byte(`{"timeout":"300"}`)); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("wrong type accepted")
	}
}

// BenchmarkDecodeSIPSettings measures decoding a monitor's settings answer.
func BenchmarkDecodeSIPSettings(b *testing.B) {
	body := []byte(`{"enable":true,"proxy":"sip:pbx.example.com","realm":"example.com","user":"101","password":"s1p-101-pass","transport":"tls","user_id":"101","is_enable_ring_code":false,"timeout":120,"registration_interval":300,"stun":{"ip":"stun.example.com","port":3478}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSIPSettings(body); err != nil {
			b.Fatal(err)
		}
	}
}
