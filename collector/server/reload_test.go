package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
)

// TestReloadInProgressAnswers503: while a reload runs, POST /-/reload is
// answered at once with 503 "reload in progress" rather than queued; the
// running reload then answers for itself.
func TestReloadInProgressAnswers503(t *testing.T) {
	const y = "credentials:\n  default:\n    username: admin\n    password: x\ndevices:\n  - name: d\n    address: 192.0.2.1\n"
	cfg, err := config.Parse([]byte(y), "c.yaml", ".")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	exp, err := collector.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	load := func() (*config.Config, error) {
		if first {
			first = false
			close(entered)
			<-release
		}
		return config.Parse([]byte(y), "c.yaml", ".")
	}
	reg := prometheus.NewRegistry()
	reloader := config.NewReloader(load, exp.Apply, reg, logger)
	srv := httptest.NewServer(New(exp, Options{Self: reg, Registerer: reg, Reload: reloader.Reload, Logger: logger}))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	post := func() (int, string, error) {
		resp, err := client.Post(srv.URL+"/-/reload", "", nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	type answer struct {
		code int
		body string
		err  error
	}
	firstDone := make(chan answer, 1)
	go func() {
		code, body, err := post()
		firstDone <- answer{code, body, err}
	}()
	<-entered
	start := time.Now()
	code, body, err := post()
	t.Logf("the second POST /-/reload answered in %v: %d %q %v", time.Since(start).Round(time.Microsecond), code, body, err)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "reload in progress") {
		t.Errorf("the second POST /-/reload: %d %q %v, want 503 reload in progress at once", code, body, err)
	}
	close(release)
	if a := <-firstDone; a.err != nil || a.code != http.StatusOK {
		t.Errorf("the first POST /-/reload: %d %q %v, want 200", a.code, a.body, a.err)
	}
}
