package config

import (
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
	return r.apply(cfg)
}
