package collector

import (
	"log/slog"
	"sync"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/prometheus/client_golang/prometheus"
)

// Reloader re-reads the configuration and applies it to an Exporter. A
// configuration that does not load is refused and the old one keeps
// serving.
type Reloader struct {
	load     func() (*config.Config, error)
	exporter *Exporter
	logger   *slog.Logger
	mu       sync.Mutex

	success   prometheus.Gauge
	timestamp prometheus.Gauge
}

// NewReloader returns a Reloader that loads configurations with load and
// registers its metrics on reg.
func NewReloader(load func() (*config.Config, error), e *Exporter, reg prometheus.Registerer, logger *slog.Logger) *Reloader {
	r := &Reloader{
		load:     load,
		exporter: e,
		logger:   logger,
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

// Reload loads and applies the configuration.
func (r *Reloader) Reload() (err error) {
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
		r.logger.Info("config reloaded", "devices", r.exporter.Devices())
	}()
	cfg, err := r.load()
	if err != nil {
		return err
	}
	return r.exporter.Apply(cfg)
}
