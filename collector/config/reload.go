package config

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloader re-reads the configuration and hands it to apply. A
// configuration that does not load, or that apply refuses, changes nothing:
// the old one keeps serving.
type Reloader struct {
	load   func() (*Config, error)
	apply  func(*Config) error
	logger *slog.Logger
	mu     sync.Mutex

	success   prometheus.Gauge
	timestamp prometheus.Gauge

	// With guard set, Reload refuses a configuration that lacks more than
	// half of devices, the names of the devices in use.
	guard   bool
	devices map[string]struct{}
}

// RefuseDeviceDrop makes Reload refuse a configuration that would remove
// more than half of the devices in use, starting with cfg's: a
// device_files glob that matches nothing or an emptied file would
// otherwise stop the watch of the whole fleet with a reload that reports
// success.
func (r *Reloader) RefuseDeviceDrop(cfg *Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.guard = true
	r.devices = deviceNames(cfg)
}

func deviceNames(cfg *Config) map[string]struct{} {
	names := make(map[string]struct{}, len(cfg.Devices))
	for _, d := range cfg.Devices {
		names[d.Name] = struct{}{}
	}
	return names
}

// checkDeviceDrop returns an error when next lacks more than half of the
// devices named in current; renamed devices count as dropped.
func checkDeviceDrop(current map[string]struct{}, next *Config) error {
	if len(current) == 0 {
		return nil
	}
	kept := 0
	for _, d := range next.Devices {
		if _, ok := current[d.Name]; ok {
			kept++
		}
	}
	if dropped := len(current) - kept; 2*dropped > len(current) {
		return fmt.Errorf("refused: the new configuration drops %d of the %d devices in use (%d devices in all); "+
			"if that is intended, run the exporter with --config.allow-device-drop, else check devices and device_files (basip_exporter --config.check)",
			dropped, len(current), len(next.Devices))
	}
	return nil
}

// NewReloader returns a Reloader that loads configurations with load,
// applies them with apply, and registers its metrics on reg.
func NewReloader(load func() (*Config, error), apply func(*Config) error, reg prometheus.Registerer, logger *slog.Logger) *Reloader {
	r := &Reloader{
		load:   load,
		apply:  apply,
		logger: logger,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "basip_exporter_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded.",
		}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "basip_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	reg.MustRegister(r.success, r.timestamp)
	r.success.Set(1)
	r.timestamp.SetToCurrentTime()
	return r
}

// LogWarnings logs each of cfg's warnings at warn level.
func LogWarnings(logger *slog.Logger, cfg *Config) {
	for _, w := range cfg.Warnings {
		logger.Warn("configuration warning", "warning", w.String())
	}
}

// Reload loads and applies the configuration.
func (r *Reloader) Reload() (err error) {
	var cfg *Config
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if err != nil {
			r.success.Set(0)
			r.logger.Error("config reload failed; keeping the previous configuration", "err", err)
			return
		}
		r.success.Set(1)
		r.timestamp.SetToCurrentTime()
		r.logger.Info("config reloaded", "devices", len(cfg.Devices))
		LogWarnings(r.logger, cfg)
	}()
	cfg, err = r.load()
	if err != nil {
		return err
	}
	if r.guard {
		if err := checkDeviceDrop(r.devices, cfg); err != nil {
			return err
		}
	}
	if err := r.apply(cfg); err != nil {
		return err
	}
	if r.guard {
		r.devices = deviceNames(cfg)
	}
	return nil
}
