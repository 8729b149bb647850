package collector

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sync"
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
	tlsCfgs map[string]*tls.Config // by TLS settings, shared by the clients
	started time.Time              // the exporter's start
	// families are the metric families with this configuration's labels.
	families []*textformat.Family
	// sipInfo are the indexes in config.SIPInfoLabels of the labels of
	// basip_sip_info, shared by the members.
	sipInfo []int
	// slots bound the polls in flight across all callers, global.concurrency
	// in all: silentSlots, a quarter of them, for the devices that did not
	// answer their last poll, and for any poll that takes longer than
	// slowAfter; slots for the rest.
	slots, silentSlots chan struct{}
	slowAfter          time.Duration
}

// member is one configured device and the state it keeps across scrapes.
type member struct {
	name     string
	cfg      *config.Device
	rendered textformat.Labels // device and the configured labels, rendered for the exposition
	identity [sha256.Size]byte // a hash of what must stay equal for the session to stay valid
	sipInfo  []int             // the fleet's sipInfo
	tlsKey   string
	session  *session
	state    *deviceState
}

// session is what a device's identity (address, API version, credentials
// with their auth and MD5 case, TLS settings) owns: the client with its token, login back-off and
// connection, what the device's answers let the exporter skip, the poll in
// flight and the last result. A reload that keeps the identity keeps the
// session; a changed identity starts a new one, so a corrected password is
// tried at once.
type session struct {
	client device.Client
	cache  endpointCache
	// family is the API family last logged for a device whose family is
	// found by detection.
	family atomic.Pointer[string]

	mu     sync.Mutex
	flight *flight      // the poll in progress, nil when none
	result *pollOutcome // the last poll that ended
}

// join returns how a caller at now can be served without a poll of its
// own: the result of a poll younger than minInterval (kind servedReused),
// or the poll in flight (servedShared); kind is -1 when it needs a poll.
func (s *session) join(now time.Time, minInterval time.Duration) (*flight, *pollOutcome, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.result != nil && now.Sub(s.result.at) < minInterval:
		return nil, s.result, servedReused
	case s.flight != nil:
		return s.flight, nil, servedShared
	}
	return nil, nil, -1
}

// start is join for a caller holding a slot: when there is nothing to
// join, it registers and returns a new flight for the caller to run
// (servedFresh).
func (s *session) start(now time.Time, minInterval time.Duration) (*flight, *pollOutcome, int) {
	if fl, o, kind := s.join(now, minInterval); kind >= 0 {
		return fl, o, kind
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil { // started between join and here
		return s.flight, nil, servedShared
	}
	s.flight = &flight{done: make(chan struct{})}
	return s.flight, nil, servedFresh
}

// forgetResult drops the last result, so that the next caller polls
// whatever min_poll_interval says.
func (s *session) forgetResult() {
	s.mu.Lock()
	s.result = nil
	s.mu.Unlock()
}

// lastResult is the last poll that ended, or nil.
func (s *session) lastResult() *pollOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result
}

// land ends fl: its outcome becomes the session's last result and every
// caller waiting on it is released.
func (s *session) land(fl *flight) {
	s.mu.Lock()
	s.result = &fl.o
	s.flight = nil
	s.mu.Unlock()
	close(fl.done)
}

// How a device's last poll went, which decides when the next one is
// dispatched (see pollMembers).
const (
	classUnknown  = iota // never polled, or skipped last time
	classAnswered        // it answered (well or not)
	classSilent          // it timed out
)

// pollErrors counts failed requests by endpoint, then Reason.Index. Most
// devices never fail; their state holds no array.
type pollErrors [device.NumEndpoints][device.NumReasons]atomic.Uint64

// countError counts a failed request to ep.
func (s *deviceState) countError(ep int, r device.Reason) {
	pe := s.pollErrors.Load()
	if pe == nil {
		s.pollErrors.CompareAndSwap(nil, &pollErrors{})
		pe = s.pollErrors.Load()
	}
	pe[ep][r.Index()].Add(1)
}

// deviceState survives reloads as long as the device keeps its name.
type deviceState struct {
	authFailures atomic.Uint64
	pollErrors   atomic.Pointer[pollErrors]  // nil until the first error
	lastUp       atomic.Int32                // -1 before the first poll
	downSince    atomic.Int64                // Unix nanoseconds of the last fall, 0 while up
	class        atomic.Int32                // classUnknown...: how the last poll went
	last         atomic.Pointer[pollOutcome] // the latest, for the status pages
	fingerprint  atomic.Pointer[fingerprint]
}

// fingerprint identifies the settings a device last answered with, and
// since when.
type fingerprint struct {
	sum   uint64
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
		tlsCfgs:  map[string]*tls.Config{},
		started:  e.started,
		families: newFamilies(cfg),
		sipInfo:  sipInfoIndexes(cfg.Global.SIPInfoLabels),
	}
	n := max(1, cfg.Global.Concurrency)
	f.slots = make(chan struct{}, max(1, n-max(1, n/4)))
	f.silentSlots = f.slots
	if n >= 2 {
		f.silentSlots = make(chan struct{}, max(1, n/4))
	}
	f.slowAfter = cfg.Global.Timeout / 4
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
	if old != nil { // close the connections no device will use again
		for _, m := range old.members {
			if n := f.byName[m.name]; n == nil || n.session != m.session {
				m.session.client.Close()
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
		name:    dc.Name,
		cfg:     dc,
		sipInfo: f.sipInfo,
		tlsKey:  tlsKey,
		identity: sha256.Sum256([]byte(dc.URL.String() + "|" + dc.APIVersion + "|" + hex.EncodeToString(sum[:]) + "|" + tlsKey +
			"|" + dc.Credential.Auth + "|" + dc.Credential.MD5Case)),
	}
	d.rendered = labelValues(dc, cfg.LabelNames)
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
	d.session.client = basip.New(basip.Options{
		BaseURL:    dc.URL,
		APIVersion: dc.APIVersion,
		Username:   dc.Credential.Username,
		Password:   pass,
		Basic:      dc.Credential.Auth == config.AuthBasic,
		LowerMD5:   dc.Credential.MD5Case == config.MD5Lower,
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

// labelValues renders a device's constant labels: device, then its own of
// the fleet's label names (sorted), and no slot for the others.
func labelValues(dc *config.Device, names []string) textformat.Labels {
	set := make([]textformat.LabelValue, 0, 1+len(dc.Labels))
	set = append(set, textformat.LabelValue{Index: 0, Name: "device", Value: dc.Name})
	for k, v := range dc.Labels {
		if i, ok := slices.BinarySearch(names, k); ok {
			set = append(set, textformat.LabelValue{Index: 1 + i, Name: k, Value: v})
		}
	}
	return textformat.RenderLabelSet(1+len(names), set)
}

// Close closes the device connections. The Exporter stays usable.
func (e *Exporter) Close() {
	if f := e.fleet.Load(); f != nil {
		for _, m := range f.members {
			m.session.client.Close()
		}
	}
}
