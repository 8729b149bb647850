package config

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReloadTimeout bounds how long a reload may take to load the
// configuration: loading 100,000 devices takes about 8 s. A load still
// running then is abandoned (its result is never applied) and the reload
// fails.
const ReloadTimeout = time.Minute

// ErrReloadInProgress is what a reload asked for while another runs
// answers at once: reloads never queue.
var ErrReloadInProgress = errors.New("reload in progress")

// maxStuckLoads bounds the abandoned loads still running (each stuck in a
// read of a hung file system, say) before Reload stops starting more.
const maxStuckLoads = 4

// Reloader re-reads the configuration and hands it to apply. A
// configuration that does not load in time, or that apply refuses,
// changes nothing: the old one keeps serving.
type Reloader struct {
	load    func() (*Config, error)
	apply   func(*Config) error
	logger  *slog.Logger
	timeout time.Duration
	busy    atomic.Bool  // a reload runs
	stuck   atomic.Int32 // loads abandoned at the deadline, still running

	success   prometheus.Gauge
	timestamp prometheus.Gauge
	dropped   prometheus.Gauge

	mu sync.Mutex
	// With guard set, Reload refuses a configuration that lacks more than
	// half of devices, the names of the devices in use.
	guard   bool
	devices map[string]struct{}
}

// InForce tells r the configuration in force before its first reload,
// against which that reload counts the devices it drops.
func (r *Reloader) InForce(cfg *Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devices = deviceNames(cfg)
}

// RefuseDeviceDrop makes Reload refuse a configuration that would remove
// more than half of the devices in use, starting with cfg's: a
// device_files glob that matches nothing or an emptied file would
// otherwise stop the watch of the whole fleet with a reload that reports
// success.
func (r *Reloader) RefuseDeviceDrop(cfg *Config) {
	r.InForce(cfg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.guard = true
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
// droppedDevices returns the names in current that next lacks, sorted.
func droppedDevices(current map[string]struct{}, next *Config) []string {
	kept := deviceNames(next)
	var out []string
	for n := range current {
		if _, ok := kept[n]; !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

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
		load:    load,
		apply:   apply,
		logger:  logger,
		timeout: ReloadTimeout,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "basip_exporter_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded.",
		}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "basip_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	r.dropped = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "basip_exporter_config_last_reload_dropped_devices",
		Help: "Devices in force before the last successful reload that the configuration it loaded no longer has (by name); 0 after the first load.",
	})
	reg.MustRegister(r.success, r.timestamp, r.dropped)
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

// Reload loads and applies the configuration. It answers
// ErrReloadInProgress at once while another reload runs; a load that
// takes longer than ReloadTimeout fails the reload.
func (r *Reloader) Reload() (err error) {
	if !r.busy.CompareAndSwap(false, true) {
		return ErrReloadInProgress
	}
	defer r.busy.Store(false)
	var (
		cfg     *Config
		dropped []string
	)
	defer func() {
		if err != nil {
			r.success.Set(0)
			r.logger.Error("config reload failed; keeping the previous configuration", "err", err)
			return
		}
		r.success.Set(1)
		r.timestamp.SetToCurrentTime()
		r.dropped.Set(float64(len(dropped)))
		r.logger.Info("config reloaded", "devices", len(cfg.Devices), "dropped", len(dropped))
		if len(dropped) > 0 {
			r.logger.Warn("config reload dropped devices", "dropped", len(dropped), "devices", len(cfg.Devices),
				"first_dropped", strings.Join(dropped[:min(len(dropped), maxNamedDrops)], ","))
		}
		LogWarnings(r.logger, cfg)
	}()
	cfg, err = r.loadWithin(r.timeout)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.guard {
		if err := checkDeviceDrop(r.devices, cfg); err != nil {
			return err
		}
	}
	if err := r.apply(cfg); err != nil {
		return err
	}
	dropped = droppedDevices(r.devices, cfg)
	r.devices = deviceNames(cfg)
	return nil
}

// maxNamedDrops is how many of the dropped devices the log names.
const maxNamedDrops = 10

// loadWithin runs load and waits for it at most d. A load that takes
// longer is left to finish on its own and its result is dropped: a read
// stuck in the kernel cannot be cancelled, and it must not hold the next
// reload.
func (r *Reloader) loadWithin(d time.Duration) (*Config, error) {
	if n := r.stuck.Load(); n >= maxStuckLoads {
		return nil, fmt.Errorf("%d earlier loads of the configuration are still stuck reading its files; check the file system, or restart the exporter", n)
	}
	type result struct {
		cfg *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := r.load()
		done <- result{cfg, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case res := <-done:
		return res.cfg, res.err
	case <-t.C:
		r.stuck.Add(1)
		go func() {
			<-done
			r.stuck.Add(-1)
		}()
		return nil, fmt.Errorf("reload timed out: loading the configuration took longer than %v", d)
	}
}
