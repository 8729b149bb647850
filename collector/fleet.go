package collector

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/textformat"
	"github.com/basip/basip_exporter/collector/vendors"
	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// fleet is one configuration's devices. It is never modified once built.
type fleet struct {
	cfg     *config.Config
	members []*member
	byName  map[string]*member
	byAddr  map[string]*member
	tlsCfgs map[string]*tls.Config // by TLS settings, shared by the clients
	started time.Time              // the exporter's start
	// families are the metric families with this configuration's labels.
	families []*textformat.Family
	// sipInfo are the indexes in config.SIPInfoLabels of the labels of
	// basip_sip_info, shared by the members.
	sipInfo []int

	// The PBX view (pbxs.go): the configured PBXs, by every host:port they
	// are known by, and the families of their series.
	pbxs              []*pbxMember
	pbxByName         map[string]*pbxMember
	pbxFamilies       []*textformat.Family
	pbxDeviceFamilies []*textformat.Family
}

// A device's state has three scopes, one type each:
//
//	member   one configuration's view of a device: its settings, labels, and
//	         the record and session it uses; replaced at every reload
//	session  what the device's identity (address, API version, credentials
//	         with their auth and MD5 case, TLS settings) owns: the client
//	         with its token, login back-off and connection, and what the
//	         device's answers let the exporter skip; kept by a reload that
//	         keeps the identity, so a corrected password is tried at once
//	record   what the device's name owns across reloads: counters, up and
//	         down, the last outcome for the pages, the settings'
//	         fingerprint, its logger
//
// What the scheduler knows of a device (its poll in flight, last result,
// class) is kept by address in package schedule, so that a reload, even one
// that renames the device or changes its identity, never starts a second
// poll beside one in flight.

// member is one configured device in one configuration.
type member struct {
	name     string
	key      string // the scheduler's key: the normalised address
	cfg      *config.Device
	spec     vendors.Spec      // what the boundary knows of the device's vendor
	rendered textformat.Labels // device and the configured labels, rendered for the exposition
	identity [sha256.Size]byte // a hash of what must stay equal for the session to stay valid
	sipInfo  []int             // the fleet's sipInfo
	tlsKey   string
	session  *session
	rec      *record
}

// session is what a device's identity owns (see above).
type session struct {
	client device.Client
	cache  endpointCache
	// family is the API family last logged for a device whose family is
	// found by detection.
	family atomic.Pointer[string]
}

// pollErrors counts failed requests by endpoint, then Reason.Index. Most
// devices never fail; their record holds no array.
type pollErrors [device.NumEndpoints][device.NumReasons]atomic.Uint64

// countError counts a failed request to ep.
func (r *record) countError(ep int, reason device.Reason) {
	pe := r.pollErrors.Load()
	if pe == nil {
		r.pollErrors.CompareAndSwap(nil, &pollErrors{})
		pe = r.pollErrors.Load()
	}
	pe[ep][reason.Index()].Add(1)
}

// record is what a device's name owns across reloads (see above).
type record struct {
	// session is the session the configuration being served gives the
	// device: only its polls are recorded.
	session      atomic.Pointer[session]
	logger       *slog.Logger // with the device's name
	authFailures atomic.Uint64
	pollErrors   atomic.Pointer[pollErrors]  // nil until the first error
	lastUp       atomic.Int32                // -1 before the first poll
	downSince    atomic.Int64                // Unix nanoseconds of the last fall, 0 while up
	last         atomic.Pointer[pollOutcome] // the latest, for the status pages
	fingerprint  atomic.Pointer[fingerprint]
}

// fingerprint identifies the settings a device last answered with, and
// since when.
type fingerprint struct {
	sum   uint64
	since time.Time
}

// noteSettings keeps the fingerprint of the device's settings and since
// when they hold. The first sighting dates from the exporter's start: the
// settings may be older, but not known to be newer.
func (r *record) noteSettings(sum uint64, now, started time.Time) {
	prev := r.fingerprint.Load()
	switch {
	case prev == nil:
		r.fingerprint.Store(&fingerprint{sum: sum, since: started})
	case prev.sum != sum:
		r.fingerprint.Store(&fingerprint{sum: sum, since: now})
		r.logger.Info("SIP settings changed")
	}
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
// token; every device's login back-off is reset. The scheduler's slots
// follow the new concurrency; polls in flight keep theirs.
func (e *Exporter) Apply(cfg *config.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.fleet.Load()
	f := &fleet{
		cfg:      cfg,
		members:  make([]*member, 0, len(cfg.Devices)),
		byName:   make(map[string]*member, len(cfg.Devices)),
		byAddr:   make(map[string]*member, len(cfg.Devices)),
		tlsCfgs:  map[string]*tls.Config{},
		started:  e.started,
		families: newFamilies(cfg),
		sipInfo:  sipInfoIndexes(cfg.Global.SIPInfoLabels),
	}
	// The old members whose name is gone, by identity: a renamed device
	// keeps its session.
	var byIdentity map[[sha256.Size]byte]*member
	if old != nil {
		names := make(map[string]bool, len(cfg.Devices))
		for _, dc := range cfg.Devices {
			names[dc.Name] = true
		}
		byIdentity = map[[sha256.Size]byte]*member{}
		for _, m := range old.members {
			if !names[m.name] {
				byIdentity[m.identity] = m
			}
		}
	}
	for _, dc := range cfg.Devices {
		d, err := e.newMember(old, byIdentity, f, cfg, dc)
		if err != nil {
			return err
		}
		f.members = append(f.members, d)
		f.byName[d.name] = d
		if _, dup := f.byAddr[d.key]; !dup {
			f.byAddr[d.key] = d
		}
	}
	if err := buildPBXs(old, f); err != nil {
		return err
	}
	for _, m := range f.members {
		m.rec.session.Store(m.session)
	}
	e.fleet.Store(f)
	e.pbxSched.Prune(func(key string) bool {
		for _, p := range f.pbxs {
			if p.key == key {
				return true
			}
		}
		return false
	})
	e.sched.SetConcurrency(cfg.Global.Concurrency)
	e.sched.Prune(func(key string) bool { return f.byAddr[key] != nil })
	if old != nil { // close the connections no device will use again
		kept := make(map[*session]bool, len(f.members))
		for _, m := range f.members {
			kept[m.session] = true
		}
		for _, m := range old.members {
			if !kept[m.session] {
				m.session.client.Close()
			}
		}
	}
	return nil
}

func (e *Exporter) newMember(old *fleet, byIdentity map[[sha256.Size]byte]*member, f *fleet, cfg *config.Config, dc *config.Device) (*member, error) {
	tlsKey, err := tlsIdentity(&dc.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", dc.Name, err)
	}
	pass := dc.Credential.Secret().Reveal()
	d := &member{
		name:    dc.Name,
		key:     dc.URL.String(),
		cfg:     dc,
		spec:    vendors.SpecOf(dc.Vendor),
		sipInfo: f.sipInfo,
		tlsKey:  tlsKey,
		identity: sha256.Sum256([]byte(dc.URL.String() + "|" + dc.APIVersion + "|" + credentialHash(dc.Credential.Username, pass) + "|" + tlsKey +
			"|" + dc.Credential.Auth + "|" + dc.Credential.MD5Case + "|" + dc.Vendor + "|" + fmt.Sprint(dc.StatusPort))),
	}
	d.rendered = labelValues(dc, cfg.LabelNames)
	var prev *member
	if old != nil {
		prev = old.byName[dc.Name]
	}
	if prev != nil {
		d.rec = prev.rec
	} else {
		d.rec = &record{logger: e.logger.With("device", dc.Name)}
		d.rec.lastUp.Store(-1)
	}
	if prev == nil || prev.identity != d.identity {
		prev = byIdentity[d.identity] // a renamed device keeps its session
	}
	if prev != nil && prev.identity == d.identity {
		d.session = prev.session
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
	d.session = &session{}
	d.session.client = vendors.New(dc, tc)
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
		content, err := config.ReadTLSFile(f)
		if err != nil {
			return "", fmt.Errorf("tls_config: %w", err)
		}
		h.Write(content)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// labelValues renders a device's constant labels: device, then its own of
// the fleet's label names (sorted), and no slot for the others.
func labelValues(dc *config.Device, names []string) textformat.Labels {
	set := make([]textformat.LabelValue, 0, 1+len(dc.Labels))
	set = append(set, textformat.LabelValue{Name: "device", Value: dc.Name})
	for k, v := range dc.Labels {
		if _, ok := slices.BinarySearch(names, k); ok {
			set = append(set, textformat.LabelValue{Name: k, Value: v})
		}
	}
	return textformat.RenderLabelSet(set)
}

// Close closes the device and registrar connections. The Exporter stays
// usable.
func (e *Exporter) Close() {
	if f := e.fleet.Load(); f != nil {
		for _, m := range f.members {
			m.session.client.Close()
		}
		for _, p := range f.pbxs {
			if p.session.transport != nil {
				p.session.transport.CloseIdleConnections()
			}
		}
	}
}
