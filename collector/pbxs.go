package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/pbx"
	"github.com/basip/basip_exporter/collector/schedule"
	"github.com/basip/basip_exporter/collector/textformat"
	promconfig "github.com/prometheus/common/config"
)

// The PBX view: beside what each device says of its own registration, what
// the PBX it registers with says. A scrape of the fleet checks every
// configured PBX once (reused within min_poll_interval, like a device's
// poll): one SIP OPTIONS to the address the operator configured, and one
// read of its registrar's contacts. A device's proxy setting chooses which
// PBX it is matched against, never where anything is sent: a device cannot
// make the exporter send SIP, or a registrar's credentials, anywhere.

// pbxMember is one configured PBX in one configuration.
type pbxMember struct {
	name     string
	index    int      // in fleet.pbxs, and in a scrape's outcomes
	hosts    []string // the hosts of cfg.Names, for the domains of contacts
	cfg      *config.PBX
	key      string // the scheduler's key
	target   pbx.Target
	rendered textformat.Labels // pbx="name"
	session  *pbxSession
	identity string
}

// pbxSession is what a PBX's identity (its SIP address and registrar
// settings) owns: the registrar's client and its connections. A reload
// that keeps the identity keeps it.
type pbxSession struct {
	registrar pbx.Registrar // nil when no registrar is configured
	transport *http.Transport
}

// pbxOutcome is one check of a PBX.
type pbxOutcome struct {
	at       time.Time
	duration time.Duration
	sip      pbx.Answer
	sipErr   error
	// registrar: whether one is configured; regErr its read's error.
	registrar bool
	regErr    error
	contacts  int
	// byUser are the contacts by the user part of their address of record.
	byUser map[string][]pbx.Contact
}

// pbxFamilies are the PBX series, written once per fleet scrape.
var pbxFamilies = []struct {
	name, help, typ string
	samples         func(w *textformat.Writer, o *pbxOutcome)
}{
	{"basip_pbx_sip_up", "1 if the PBX answered the exporter's SIP OPTIONS with a final response (any status), else 0.", "gauge",
		func(w *textformat.Writer, o *pbxOutcome) { w.Bool(o.sipErr == nil) }},
	{"basip_pbx_sip_rtt_seconds", "Time from the SIP OPTIONS to the PBX's final response.", "gauge",
		func(w *textformat.Writer, o *pbxOutcome) {
			if o.sipErr == nil {
				w.Sample(o.sip.RTT.Seconds())
			}
		}},
	{"basip_pbx_up", "1 if the PBX's registrar could be read this scrape, else 0; absent for a PBX without a registrar.", "gauge",
		func(w *textformat.Writer, o *pbxOutcome) {
			if o.registrar {
				w.Bool(o.regErr == nil)
			}
		}},
	{"basip_pbx_registrations", "Contacts the PBX's registrar holds.", "gauge",
		func(w *textformat.Writer, o *pbxOutcome) {
			if o.registrar && o.regErr == nil {
				w.Sample(float64(o.contacts))
			}
		}},
}

// The per-device PBX families, in the order of fleet.pbxDeviceFamilies.
const (
	famDevicePBX = iota
	famProxyKnown
	famRegistration
	numPBXDeviceFamilies
)

// The states of basip_pbx_registration.
var registrationStates = []string{"registered", "foreign", "missing"}

func newPBXDeviceFamilies() []*textformat.Family {
	return []*textformat.Family{
		famDevicePBX: textformat.NewFamily("basip_device_pbx",
			"1 for the configured PBX the device's SIP proxy points to; absent when it points to none.", "gauge", []string{"pbx"}),
		famProxyKnown: textformat.NewFamily("basip_sip_proxy_known",
			"1 if the device's SIP proxy is one of the configured PBXs, 0 if it points to none of them; absent when no PBX is configured or the device reports no proxy.", "gauge", nil),
		famRegistration: textformat.NewFamily("basip_pbx_registration",
			"What the registrar of the PBX the device points to holds for the device's SIP account, as a state set: registered (a contact from the device's own address), foreign (a contact from another address, whatever else it holds), missing (none).", "gauge", []string{"pbx", "state"}),
	}
}

// buildPBXs makes the configuration's PBX members, keeping the sessions of
// old's whose identity is unchanged.
func buildPBXs(old, f *fleet) error {
	cfg := f.cfg
	f.pbxByName = map[string]*pbxMember{}
	f.pbxDeviceFamilies = newPBXDeviceFamilies()
	f.pbxFamilies = make([]*textformat.Family, len(pbxFamilies))
	for i, pf := range pbxFamilies {
		f.pbxFamilies[i] = textformat.NewFamily(pf.name, pf.help, pf.typ, nil)
	}
	prev := map[string]*pbxMember{}
	if old != nil {
		for _, p := range old.pbxs {
			prev[p.identity] = p
		}
	}
	for _, pc := range cfg.PBXs {
		id, err := pbxIdentity(pc)
		if err != nil {
			return fmt.Errorf("pbx %q: %w", pc.Name, err)
		}
		p := &pbxMember{
			name:     pc.Name,
			cfg:      pc,
			key:      "pbx\x00" + pc.Name,
			rendered: textformat.RenderLabels([]string{"pbx"}, []string{pc.Name}),
			identity: id,
			target:   pbx.Target{Transport: pc.Transport, Host: pc.Host, Port: pc.Port},
		}
		if pc.Transport == "tls" {
			if p.target.TLS, err = promconfig.NewTLSConfig(&pc.TLSConfig); err != nil {
				return fmt.Errorf("pbx %q: tls_config: %w", pc.Name, err)
			}
		}
		if q := prev[id]; q != nil {
			p.session = q.session
		} else if p.session, err = newPBXSession(pc); err != nil {
			return fmt.Errorf("pbx %q: %w", pc.Name, err)
		}
		p.index = len(f.pbxs)
		f.pbxs = append(f.pbxs, p)
		for _, n := range pc.Names {
			f.pbxByName[n] = p
			if h, _, err := net.SplitHostPort(n); err == nil {
				p.hosts = append(p.hosts, h)
			}
		}
	}
	if old != nil { // close the connections no PBX will use again
		kept := map[*pbxSession]bool{}
		for _, p := range f.pbxs {
			kept[p.session] = true
		}
		for _, p := range old.pbxs {
			if !kept[p.session] && p.session.transport != nil {
				p.session.transport.CloseIdleConnections()
			}
		}
	}
	return nil
}

// pbxIdentity is what must stay equal for a PBX's session to be kept.
func pbxIdentity(pc *config.PBX) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%d", pc.Name, pc.Transport, pc.Host, pc.Port)
	if t, err := tlsIdentity(&pc.TLSConfig); err != nil {
		return "", err
	} else {
		b.WriteString("|" + t)
	}
	if r := pc.Registrar; r != nil {
		t, err := tlsIdentity(&r.TLSConfig)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "|%s|%s|%s", r.Type, r.URL, t)
		if c := r.Credential; c != nil {
			b.WriteString("|" + credentialHash(c.Username, c.Secret().Reveal()))
		}
	}
	return b.String(), nil
}

// newPBXSession makes the registrar's client: its own connections, no
// redirect followed (a registrar's credentials go to its URL only), no
// proxy from the environment.
func newPBXSession(pc *config.PBX) (*pbxSession, error) {
	s := &pbxSession{}
	r := pc.Registrar
	if r == nil {
		return s, nil
	}
	tc, err := promconfig.NewTLSConfig(&r.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("registrar tls_config: %w", err)
	}
	s.transport = &http.Transport{
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        2 * time.Minute,
		MaxResponseHeaderBytes: 64 << 10,
	}
	client := &http.Client{
		Transport: s.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the registrar answered with a redirect, which is not followed")
		},
	}
	var user string
	var pass device.Secret
	if c := r.Credential; c != nil {
		user, pass = c.Username, c.Secret()
	}
	switch r.Type {
	case pbx.TypeKamailio:
		s.registrar = pbx.NewKamailio(r.URL, user, pass, client)
	case pbx.TypeAsterisk:
		s.registrar = pbx.NewAsterisk(r.URL, user, pass, client)
	default:
		return nil, fmt.Errorf("registrar type %q", r.Type)
	}
	return s, nil
}

// prober returns the exporter's SIP OPTIONS prober, made on first use.
func (e *Exporter) sipProber() (*pbx.Prober, error) {
	e.proberMu.Lock()
	defer e.proberMu.Unlock()
	if e.prober == nil && e.proberErr == nil {
		e.prober, e.proberErr = pbx.NewProber(e.logger)
	}
	return e.prober, e.proberErr
}

// pollPBXs checks every PBX of f for one caller, through the PBX
// scheduler: one check per PBX at a time, shared and reused like a
// device's poll, and bounded by ctx's deadline for the caller.
func (e *Exporter) pollPBXs(ctx context.Context, f *fleet) []*pbxOutcome {
	timeout := min(f.cfg.Global.Timeout, maxPoll)
	jobs := make([]schedule.Job[*pbxOutcome], len(f.pbxs))
	for i, p := range f.pbxs {
		jobs[i] = schedule.Job[*pbxOutcome]{
			Key:         p.key,
			Session:     p.session,
			Timeout:     timeout,
			MinInterval: *f.cfg.Global.MinPollInterval,
			StartMargin: startMargin(timeout),
			Poll: func(pctx context.Context) (*pbxOutcome, bool) {
				o := e.checkPBX(pctx, p)
				e.pbxLast.Store(p.name, o)
				return o, o.sipErr == nil || o.registrar && o.regErr == nil
			},
		}
	}
	served := e.pbxSched.Do(ctx, jobs)
	out := make([]*pbxOutcome, len(served))
	for i, s := range served {
		switch s.How {
		case schedule.Skipped, schedule.WaitedOut:
			err := errors.New("not checked within the scrape's deadline")
			out[i] = &pbxOutcome{at: time.Now(), sipErr: err, registrar: f.pbxs[i].session.registrar != nil, regErr: err}
		default:
			out[i] = s.Result
		}
	}
	return out
}

// checkPBX sends one OPTIONS to p and reads its registrar, both at once.
func (e *Exporter) checkPBX(ctx context.Context, p *pbxMember) *pbxOutcome {
	start := time.Now()
	o := &pbxOutcome{registrar: p.session.registrar != nil}
	var wg sync.WaitGroup
	if o.registrar {
		wg.Add(1)
		go func() {
			defer wg.Done()
			contacts, err := p.session.registrar.Contacts(ctx)
			if err != nil {
				o.regErr = err
				return
			}
			o.contacts = len(contacts)
			o.byUser = make(map[string][]pbx.Contact, len(contacts))
			for _, c := range contacts {
				o.byUser[c.User] = append(o.byUser[c.User], c)
			}
		}()
	}
	if prober, err := e.sipProber(); err != nil {
		o.sipErr = fmt.Errorf("no SIP client: %w", err)
	} else {
		o.sip, o.sipErr = prober.Options(ctx, p.target)
	}
	wg.Wait()
	o.duration = time.Since(start)
	o.at = time.Now()
	logger := e.logger.With("pbx", p.name)
	if prev, ok := e.pbxLast.Load(p.name); ok {
		po := prev.(*pbxOutcome)
		switch {
		case o.sipErr != nil && po.sipErr == nil:
			logger.Warn("PBX does not answer SIP OPTIONS", "err", errString(o.sipErr))
		case o.sipErr == nil && po.sipErr != nil:
			logger.Info("PBX answers SIP OPTIONS again", "code", o.sip.Code)
		}
		switch {
		case o.regErr != nil && po.regErr == nil:
			logger.Warn("PBX registrar cannot be read", "err", errString(o.regErr))
		case o.registrar && o.regErr == nil && po.regErr != nil:
			logger.Info("PBX registrar read again", "contacts", o.contacts)
		}
	}
	return o
}

// pbxOf is the configured PBX a poll's settings point to, or nil.
func (f *fleet) pbxOf(o *pollOutcome) *pbxMember {
	if o.proxyName == "" {
		return nil
	}
	return f.pbxByName[o.proxyName]
}

// pbxRegistration judges what p's registrar holds for the device's account:
// its contacts whose address of record has the device's user and either
// no domain or one the device or the PBX is known by. A contact counts as
// the device's own when it came from one of its sip_source addresses (by
// default its configured address); a device configured by host name
// without sip_source, or a contact whose source is not an IP address,
// cannot be told apart, and its contacts count as its own.
func pbxRegistration(o *pbxOutcome, p *pbxMember, m *member, s *device.SIPSettings, proxyName string) string {
	user := str(s.User)
	proxyHost, _, _ := net.SplitHostPort(proxyName)
	own, foreign := false, false
	for _, c := range o.byUser[user] {
		if !contactDomainMatches(c.Domain, p, s, proxyHost) {
			continue
		}
		src, err := netip.ParseAddr(c.Source)
		if len(m.cfg.SIPSources) == 0 || err != nil || fromAny(m.cfg.SIPSources, src.Unmap()) {
			own = true
		} else {
			foreign = true
		}
	}
	switch {
	case foreign:
		return "foreign"
	case own:
		return "registered"
	default:
		return "missing"
	}
}

// contactDomainMatches: an address of record's domain belongs to the
// device's account when there is none (a registrar keyed by user only),
// or it is the device's realm, the host of its proxy, or a host p is
// known by.
func contactDomainMatches(domain string, p *pbxMember, s *device.SIPSettings, proxyHost string) bool {
	if domain == "" {
		return true
	}
	domain = strings.Trim(strings.ToLower(domain), "[]")
	if strings.EqualFold(domain, str(s.Realm)) || domain == proxyHost {
		return true
	}
	return slices.Contains(p.hosts, domain)
}

// writePBXs writes the PBX series of a fleet scrape.
func writePBXs(w *textformat.Writer, f *fleet, pbxs []*pbxMember, out []*pbxOutcome) {
	for fi, pf := range pbxFamilies {
		w.Family(f.pbxFamilies[fi])
		for i, p := range pbxs {
			w.Target(p.rendered)
			pf.samples(w, out[i])
		}
	}
}

// writeDevicePBXs writes the device series of the PBX view: which PBX each
// device points to (from its settings alone), and, when the PBXs were
// checked (out not nil, a fleet scrape), what their registrars hold.
func writeDevicePBXs(w *textformat.Writer, f *fleet, members []*member, outcomes []*pollOutcome, out []*pbxOutcome) {
	if len(f.pbxs) == 0 {
		return
	}
	fams := f.pbxDeviceFamilies
	w.Family(fams[famDevicePBX])
	for i, m := range members {
		if outcomes[i].readSettings() == nil {
			continue
		}
		if p := f.pbxOf(outcomes[i]); p != nil {
			w.Target(m.rendered)
			w.Sample(1, p.name)
		}
	}
	w.Family(fams[famProxyKnown])
	for i, m := range members {
		if outcomes[i].readSettings() == nil || outcomes[i].proxyName == "" {
			continue
		}
		w.Target(m.rendered)
		w.Bool(f.pbxOf(outcomes[i]) != nil)
	}
	if out == nil {
		return
	}
	w.Family(fams[famRegistration])
	for i, m := range members {
		s := outcomes[i].readSettings()
		if s == nil || str(s.User) == "" {
			continue
		}
		p := f.pbxOf(outcomes[i])
		if p == nil {
			continue
		}
		po := out[p.index]
		if !po.registrar || po.regErr != nil {
			continue
		}
		state := pbxRegistration(po, p, m, s, outcomes[i].proxyName)
		w.Target(m.rendered)
		for _, st := range registrationStates {
			w.Bool(st == state, p.name, st)
		}
	}
}

// fromAny says whether a is within one of prefixes.
func fromAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PBXView is what the pages show of a PBX's last check.
type PBXView struct {
	Name, SIP, Registrar string
	SIPUp                bool
	Code                 int
	Reason, SIPError     string
	RTT                  string
	RegistrarUp          bool
	Contacts             int
	RegistrarError       string
	Checked              string
}

// PBXViews returns what the last check of each configured PBX found, for
// the pages.
func (e *Exporter) PBXViews() []PBXView {
	f := e.fleet.Load()
	out := make([]PBXView, 0, len(f.pbxs))
	for _, p := range f.pbxs {
		st := PBXView{Name: p.name, SIP: p.cfg.SIP}
		if r := p.cfg.Registrar; r != nil {
			st.Registrar = r.Type + " " + r.URL
		}
		if v, ok := e.pbxLast.Load(p.name); ok {
			o := v.(*pbxOutcome)
			st.Checked = o.at.UTC().Format(time.RFC3339)
			st.SIPUp = o.sipErr == nil
			if o.sipErr == nil {
				st.Code, st.Reason, st.RTT = o.sip.Code, o.sip.Reason, o.sip.RTT.Round(time.Microsecond).String()
			} else {
				st.SIPError = errString(o.sipErr)
			}
			if o.registrar {
				st.RegistrarUp = o.regErr == nil
				if o.regErr != nil {
					st.RegistrarError = errString(o.regErr)
				} else {
					st.Contacts = o.contacts
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// credentialHash identifies a username and password without holding them.
func credentialHash(user, pass string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + pass))
	return hex.EncodeToString(sum[:])
}

// PBXReport is what /debug?pbx= shows: one check of a PBX, and what its
// registrar holds for each device that points to it.
type PBXReport struct {
	PBXView
	Duration time.Duration
	// Served is how the check was had: fresh, shared or reused (see
	// DebugReport.Served).
	Served string
	// Devices are the devices whose last settings point to the PBX, with
	// their state at its registrar ("" when it was not read).
	Devices []PBXDevice
}

// PBXDevice is a device that points to a PBX, and its registration there.
type PBXDevice struct {
	Name, User, State string
}

// ErrUnknownPBX is returned for a name that is no configured PBX's.
var ErrUnknownPBX = errors.New("unknown PBX")

// DebugPBX checks the PBX named name now, unless a check of it is in
// flight or recent (min_poll_interval), and reports what it found.
func (e *Exporter) DebugPBX(ctx context.Context, name string) (*PBXReport, error) {
	f := e.fleet.Load()
	idx := -1
	for i, p := range f.pbxs {
		if p.name == name {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w %q: not a configured PBX's name", ErrUnknownPBX, clean(name))
	}
	start := time.Now()
	p := f.pbxs[idx]
	sub := &fleet{cfg: f.cfg, pbxs: []*pbxMember{p}}
	out := e.pollPBXs(ctx, sub)[0]
	rep := &PBXReport{Duration: time.Since(start), Served: "fresh"}
	if out.at.Before(start) {
		rep.Served = "reused"
	}
	for _, v := range e.PBXViews() {
		if v.Name == name {
			rep.PBXView = v
		}
	}
	for _, m := range f.members {
		o := m.rec.last.Load()
		if o == nil {
			continue
		}
		s := o.readSettings()
		if s == nil || f.pbxOf(o) != p {
			continue
		}
		d := PBXDevice{Name: m.name, User: clean(str(s.User))}
		if out.registrar && out.regErr == nil && d.User != "" {
			d.State = pbxRegistration(out, p, m, s, o.proxyName)
		}
		rep.Devices = append(rep.Devices, d)
	}
	return rep, nil
}
