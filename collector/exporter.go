// Package collector turns a fleet of BAS-IP devices into Prometheus metrics:
// it owns the per-device state that lives across scrapes (clients with their
// cached tokens, counters), polls devices concurrently within the scrape's
// deadline, and serves /metrics and /probe.
package collector

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// Exporter holds the current fleet. Apply swaps in a new configuration;
// scrapes in progress finish on the fleet they started with.
type Exporter struct {
	logger  *slog.Logger
	started time.Time
	fleet   atomic.Pointer[fleet]
	mu      sync.Mutex // serialises Apply
}

// fleet is one configuration's devices. It is never modified once built.
type fleet struct {
	cfg     *config.Config
	devices []*member
	byName  map[string]*member
	byAddr  map[string]*member
	tlsCfgs map[string]*tls.Config // by TLS settings, shared by the clients
	started time.Time              // the exporter's start
	// labelPlans orders each family's labels; see labelPlans.
	labelPlans [][]int
}

// device is one configured device and the state it keeps across scrapes.
type member struct {
	name       string
	cfg        *config.Device
	labels     []string // device name, then the values of cfg.LabelNames
	labelPairs []string // the same, rendered as name="value" for the exposition
	identity   string   // what must stay equal for the cached token to stay valid
	tlsKey     string
	client     *basip.Client
	cache      *endpointCache
	state      *deviceState
}

// deviceState survives reloads as long as the device keeps its name.
type deviceState struct {
	authFailures atomic.Uint64
	pollErrors   [device.NumEndpoints][device.NumReasons]atomic.Uint64 // by endpoint, then Reason.Index
	lastUp       atomic.Int32                                          // -1 before the first poll
	last         atomic.Pointer[pollOutcome]                           // the latest, for the status pages
	fingerprint  atomic.Pointer[fingerprint]
}

// fingerprint identifies the settings a device last answered with, and
// since when.
type fingerprint struct {
	sum   [32]byte
	since time.Time
}

// unsupportedRecheck is how long an endpoint that answered 404 is left
// alone before it is tried again.
const unsupportedRecheck = time.Hour

// endpointCache is what a device's answers let the exporter skip: its
// /api/info answer, and endpoints it does not support. It is kept across
// reloads while the device's identity (address, credentials, TLS) holds.
type endpointCache struct {
	info             atomic.Pointer[cachedInfo]
	unsupportedUntil [device.NumEndpoints]atomic.Int64 // Unix nanoseconds
}

type cachedInfo struct {
	info *device.Info
	at   time.Time
}

func (c *endpointCache) supported(ep device.Endpoint, now time.Time) bool {
	return now.UnixNano() >= c.unsupportedUntil[ep].Load()
}

func (c *endpointCache) markUnsupported(ep device.Endpoint, now time.Time) {
	c.unsupportedUntil[ep].Store(now.Add(unsupportedRecheck).UnixNano())
}

// New returns an Exporter serving cfg.
func New(cfg *config.Config, logger *slog.Logger) (*Exporter, error) {
	e := &Exporter{logger: logger, started: time.Now()}
	if err := e.Apply(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// Config returns the configuration being served.
func (e *Exporter) Config() *config.Config { return e.fleet.Load().cfg }

// Apply makes cfg the configuration being served. Devices whose address,
// API version, credentials and TLS settings are unchanged keep their cached
// token; every device's login back-off is reset.
func (e *Exporter) Apply(cfg *config.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.fleet.Load()
	f := &fleet{
		cfg:        cfg,
		devices:    make([]*member, 0, len(cfg.Devices)),
		byName:     make(map[string]*member, len(cfg.Devices)),
		byAddr:     make(map[string]*member, len(cfg.Devices)),
		tlsCfgs:    map[string]*tls.Config{},
		started:    e.started,
		labelPlans: labelPlans(cfg.LabelNames),
	}
	for _, dc := range cfg.Devices {
		d, err := e.newDevice(old, f, cfg, dc)
		if err != nil {
			return err
		}
		f.devices = append(f.devices, d)
		f.byName[d.name] = d
		if _, dup := f.byAddr[dc.URL.String()]; !dup {
			f.byAddr[dc.URL.String()] = d
		}
	}
	e.fleet.Store(f)
	if old != nil {
		for _, d := range old.devices {
			if m := f.byName[d.name]; m == nil || m.client != d.client {
				d.client.Close()
			}
		}
	}
	return nil
}

func (e *Exporter) newDevice(old, f *fleet, cfg *config.Config, dc *config.Device) (*member, error) {
	tlsKey, err := tlsIdentity(&dc.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", dc.Name, err)
	}
	pass := dc.Credential.Secret().Reveal()
	sum := sha256.Sum256([]byte(dc.Credential.Username + "\x00" + pass))
	d := &member{
		name:     dc.Name,
		cfg:      dc,
		labels:   labelValues(dc, cfg.LabelNames),
		tlsKey:   tlsKey,
		identity: dc.URL.String() + "|" + dc.APIVersion + "|" + hex.EncodeToString(sum[:]) + "|" + tlsKey,
	}
	d.labelPairs = labelPairs(append([]string{"device"}, cfg.LabelNames...), d.labels)
	var prev *member
	if old != nil {
		prev = old.byName[dc.Name]
	}
	if prev != nil {
		d.state = prev.state
	} else {
		d.state = &deviceState{}
		d.state.lastUp.Store(-1)
	}
	if prev != nil && prev.identity == d.identity {
		d.client, d.cache = prev.client, prev.cache
		d.client.ResetBackoff()
		if _, ok := f.tlsCfgs[tlsKey]; !ok {
			f.tlsCfgs[tlsKey] = old.tlsCfgs[tlsKey]
		}
		return d, nil
	}
	tc, ok := f.tlsCfgs[tlsKey]
	if !ok && old != nil {
		tc, ok = old.tlsCfgs[tlsKey]
	}
	if !ok {
		if tc, err = promconfig.NewTLSConfig(&dc.TLSConfig); err != nil {
			return nil, fmt.Errorf("device %q: tls_config: %w", dc.Name, err)
		}
	}
	f.tlsCfgs[tlsKey] = tc
	d.cache = &endpointCache{}
	d.client = basip.New(basip.Options{
		BaseURL:    dc.URL,
		APIVersion: dc.APIVersion,
		Username:   dc.Credential.Username,
		Password:   pass,
		TLSConfig:  tc,
	})
	return d, nil
}

// tlsIdentity identifies a TLS setting including the content of the files
// it names, so a reload that changes a CA file makes new connections.
func tlsIdentity(tc *promconfig.TLSConfig) (string, error) {
	b, err := yaml.Marshal(tc)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	for _, f := range []string{tc.CAFile, tc.CertFile, tc.KeyFile} {
		if f == "" {
			continue
		}
		content, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("tls_config: %w", err)
		}
		h.Write(content)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func labelValues(dc *config.Device, names []string) []string {
	v := make([]string, 0, 1+len(names))
	v = append(v, dc.Name)
	for _, n := range names {
		v = append(v, dc.Labels[n])
	}
	return v
}

// Devices returns the number of configured devices.
func (e *Exporter) Devices() int { return len(e.fleet.Load().devices) }

// Close drops the idle device connections. The Exporter stays usable.
func (e *Exporter) Close() {
	if f := e.fleet.Load(); f != nil {
		for _, d := range f.devices {
			d.client.Close()
		}
	}
}
