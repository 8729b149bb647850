package server

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
)

// serve starts an exporter on configuration y (relative paths from dir)
// and serves all its routes over HTTP on loopback, logging to logger
// (discarded when nil). Both stop when t ends.
func serve(t testing.TB, y, dir string, logger *slog.Logger) (*collector.Exporter, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	load := func() (*config.Config, error) { return config.Parse([]byte(y), "test.yaml", dir) }
	cfg, err := load()
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	exp, err := collector.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)
	reloader := config.NewReloader(load, exp.Apply, reg, logger)
	srv := httptest.NewServer(New(exp, Options{
		TimeoutOffset: 500 * time.Millisecond,
		Self:          reg,
		Registerer:    reg,
		Reload:        reloader.Reload,
		Logger:        logger,
		Pages:         PageOptions{Name: "BAS-IP Exporter", Version: "test-version"},
	}))
	t.Cleanup(srv.Close)
	return exp, srv, reg
}
