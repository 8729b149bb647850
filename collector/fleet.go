package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/textformat"
	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// fleet is one configuration's devices. It is never modified once built.
type fleet struct {
	cfg     *config.Config
	members []*member
	byName  map[string]*member
	byAddr  map[string]*member
	clients map[string]*http.Client // by TLS settings
	started time.Time               // the exporter's start
	// families are the metric families with this configuration's labels.
	families []*textformat.Family
}

// member is one configured device and the state it keeps across scrapes.
type member struct {
	name     string
	cfg      *config.Device
	labels   []string          // device name, then the values of cfg.LabelNames
	rendered textformat.Labels // the same, rendered for the exposition
	identity string            // what must stay equal for the cached token to stay valid
	tlsKey   string
	client   *basip.Client
	cache    *endpointCache
	state    *deviceState
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

// Apply makes cfg the configuration being served. Devices whose address,
// API version, credentials and TLS settings are unchanged keep their cached
// token; every device's login back-off is reset.
func (e *Exporter) Apply(cfg *config.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.fleet.Load()
	f := &fleet{
		cfg:      cfg,
		members:  make([]*member, 0, len(cfg.Devices)),
		byName:   make(map[string]*member, len(cfg.Devices)),
		byAddr:   make(map[string]*member, len(cfg.Devices)),
		clients:  map[string]*http.Client{},
		started:  e.started,
		families: newFamilies(cfg.LabelNames),
	}
	for _, dc := range cfg.Devices {
		d, err := e.newMember(old, f, cfg, dc)
		if err != nil {
			return err
		}
		f.members = append(f.members, d)
		f.byName[d.name] = d
		if _, dup := f.byAddr[dc.URL.String()]; !dup {
			f.byAddr[dc.URL.String()] = d
		}
	}
	e.fleet.Store(f)
	if old != nil {
		for key, hc := range old.clients {
			if f.clients[key] != hc {
				basip.CloseIdleConnections(hc)
			}
		}
	}
	return nil
}

func (e *Exporter) newMember(old, f *fleet, cfg *config.Config, dc *config.Device) (*member, error) {
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
	d.rendered = textformat.RenderLabels(append([]string{"device"}, cfg.LabelNames...), d.labels)
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
		f.clients[tlsKey] = old.clients[tlsKey]
		return d, nil
	}
	hc, ok := f.clients[tlsKey]
	if !ok && old != nil {
		hc, ok = old.clients[tlsKey]
	}
	if !ok {
		tc, err := promconfig.NewTLSConfig(&dc.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("device %q: tls_config: %w", dc.Name, err)
		}
		hc = basip.NewHTTPClient(tc)
	}
	f.clients[tlsKey] = hc
	d.cache = &endpointCache{}
	d.client = basip.New(basip.Options{
		BaseURL:    dc.URL,
		APIVersion: dc.APIVersion,
		Username:   dc.Credential.Username,
		Password:   pass,
		HTTP:       hc,
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

// Close drops the idle device connections. The Exporter stays usable.
func (e *Exporter) Close() {
	if f := e.fleet.Load(); f != nil {
		for _, hc := range f.clients {
			basip.CloseIdleConnections(hc)
		}
	}
}
