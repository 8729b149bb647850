package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
)

// TestSIGTERMDuringReload: SIGTERM sent to the process while a SIGHUP
// reload hangs on its configuration shuts the server down within the grace
// period; the reload does not hold the signal handler.
func TestSIGTERMDuringReload(t *testing.T) {
	// Delivered here too, so that no signal of this test ends the test
	// binary, whatever handleSignals does.
	own := make(chan os.Signal, 16)
	signal.Notify(own, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(own)

	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	load := func() (*config.Config, error) {
		select {
		case <-entered:
		default:
			close(entered)
		}
		<-release
		return nil, errors.New("released")
	}
	r := config.NewReloader(load, func(*config.Config) error { return nil }, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stopped := make(chan struct{})
	go handleSignals(srv, r, slog.New(slog.DiscardHandler), stopped)

	// Until the handler has registered and the reload has begun.
	deadline := time.Now().Add(10 * time.Second)
	for reloading := false; !reloading; {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case <-entered:
			reloading = true
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP started no reload within 10 s")
		}
	}
	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Logf("shut down %v after SIGTERM, the reload still hanging", time.Since(start).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown within 10 s of SIGTERM while a reload hangs")
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Second):
		t.Error("the server still serves after the shutdown")
	}
}
