// Package config reads, defaults and validates the exporter's YAML
// configuration. A Config that Load returns has passed every check; nothing
// else in the exporter validates input from the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/device"
	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// Defaults applied to keys the file leaves out.
const (
	// DefaultTimeout leaves room inside Prometheus' default 10 s scrape
	// timeout: a device that does not answer is given up after half of
	// it, and the others' answers are still sent in time.
	DefaultTimeout = 5 * time.Second
	// DefaultMinPollInterval keeps a burst of callers (an HA pair's two
	// scrapes, a refreshed debug page, a probe loop) from reaching a device
	// more than about once a second, while any scrape interval of a second
	// or more still gets a fresh poll each time.
	DefaultMinPollInterval = time.Second
	DefaultConcurrency     = 256
	DefaultAPIVersion      = "v1"
	// AutoAPIVersion as api_version finds each device's API family.
	AutoAPIVersion     = "auto"
	DefaultCredentials = "default"
	DefaultInfoTTL     = time.Hour
)

// DefaultCollect is what a device is polled for when no `collect` says:
// every endpoint.
var DefaultCollect = device.Endpoints[:]

// APIVersions are the values of api_version.
var APIVersions = []string{"v0", "v1", AutoAPIVersion}

// The values of a credential set's auth: log in for a token (BAS-IP's
// default), HTTP Basic on every request, or HTTP Digest (RFC 7616).
const (
	AuthToken  = "token"
	AuthBasic  = "basic"
	AuthDigest = "digest"
)

// Auths are the values of a credential set's auth.
var Auths = []string{AuthToken, AuthBasic, AuthDigest}

// The vendors a device can be made by: the values of vendor.
const (
	VendorBASIP     = "basip"
	Vendor2N        = "2n"
	VendorBeward    = "beward"
	VendorQtech     = "qtech"
	VendorAkuvox    = "akuvox"
	VendorSokol     = "sokol"
	VendorRubetek   = "rubetek"
	VendorUfanet    = "ufanet"
	VendorHikvision = "hikvision"
)

// Vendors lists every vendor, BAS-IP (the default) first.
var Vendors = []string{VendorBASIP, Vendor2N, VendorBeward, VendorQtech, VendorAkuvox, VendorSokol, VendorRubetek, VendorUfanet, VendorHikvision}

// VendorAuths are the auths each vendor's API accepts, its default first:
// BAS-IP logs in for a token or takes Basic; 2N's HTTP API is set to Digest
// or Basic; Akuvox documents Digest, and Beward is Basic but Digest-capable;
// Hikvision's ISAPI is Digest by default and takes Basic where the device
// is set to; Qtech, Sokol, Rubetek and Ufanet take Basic only.
var VendorAuths = map[string][]string{
	VendorBASIP:     {AuthToken, AuthBasic},
	Vendor2N:        {AuthDigest, AuthBasic},
	VendorBeward:    {AuthBasic, AuthDigest},
	VendorQtech:     {AuthBasic},
	VendorAkuvox:    {AuthDigest, AuthBasic},
	VendorSokol:     {AuthBasic},
	VendorRubetek:   {AuthBasic},
	VendorUfanet:    {AuthBasic},
	VendorHikvision: {AuthDigest, AuthBasic},
}

// DefaultUfanetStatusPort is the port Ufanet devices serve their
// registration status on (the web API is on the address's port).
const DefaultUfanetStatusPort = 85

// The values of a credential set's md5_case: the case of the hex MD5 the
// login sends. Upper (the default) is what the vendor documents.
const (
	MD5Upper = "upper"
	MD5Lower = "lower"
)

// SIPInfoLabels are the labels of basip_sip_info, in order: the values
// global.sip_info_labels chooses from.
var SIPInfoLabels = []string{"proxy", "realm", "outbound", "user", "user_id", "transport", "stun"}

// ReservedLabels are the label names the exporter sets itself; a device's
// constant labels may not use them.
var ReservedLabels = []string{
	"device", "transport", "reason", "proxy", "realm", "outbound", "user", "user_id", "stun",
	"endpoint", "policy", "rule", "field", "status", "model", "type", "firmware",
	"api_version", "serial", "name", "instance", "job", "vendor", "account",
	"credentials", "pbx", "state",
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Config is the whole configuration file.
type Config struct {
	Global      Global         `yaml:"global"`
	Credentials CredentialSets `yaml:"credentials"`
	Devices     []*Device      `yaml:"devices"`
	Policies    Policies       `yaml:"policies,omitempty"`
	// DeviceFiles are globs of files, each a YAML list of devices in the
	// schema of Devices; relative to the configuration file. Each must
	// match at least one file.
	DeviceFiles []string `yaml:"device_files,omitempty"`
	// PBXs are the SIP servers the devices register with (see PBX).
	PBXs []*PBX `yaml:"pbxs,omitempty"`

	// LabelNames is the sorted union of every device's constant label
	// names; a device without one of them exports it empty.
	LabelNames []string `yaml:"-"`
	// Warnings are what loads but is probably not meant, such as no
	// devices at all; --config.check prints them, the exporter logs them.
	Warnings []Warning `yaml:"-"`
}

// Global holds the settings shared by every device.
type Global struct {
	Timeout     time.Duration `yaml:"timeout"`
	Concurrency int           `yaml:"concurrency"`
	APIVersion  string        `yaml:"api_version"`
	// Collect lists the endpoints polled: settings, status, info.
	Collect []string `yaml:"collect"`
	// InfoTTL is how long a device's /api/info answer is reused.
	InfoTTL time.Duration `yaml:"info_ttl"`
	// MinPollInterval: a poll result younger than this is served again
	// instead of polling the device; 0s turns reuse off.
	MinPollInterval *time.Duration `yaml:"min_poll_interval,omitempty"`
	// SIPInfoLabels are the labels basip_sip_info exports, a subset of
	// SIPInfoLabels kept in its order; all of them by default.
	SIPInfoLabels []string `yaml:"sip_info_labels,omitempty"`
	// Vendor is the vendor of devices that name none: one of Vendors.
	Vendor string `yaml:"vendor,omitempty"`
}

// Credential is a named username and password used to log in to devices.
type Credential struct {
	Username     string        `yaml:"username"`
	Password     device.Secret `yaml:"password,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty"`
	// Auth is one of Auths. Left out, each device uses its vendor's
	// default; the set itself reads AuthToken, BAS-IP's.
	Auth string `yaml:"auth,omitempty"`
	// MD5Case is MD5Upper or MD5Lower.
	MD5Case string `yaml:"md5_case,omitempty"`

	password device.Secret
	authSet  bool // auth was written in the file
}

// Secret returns the password, read from password_file when that is set.
func (c *Credential) Secret() device.Secret { return c.password }

// Device is one intercom to poll.
type Device struct {
	Name        string               `yaml:"name"`
	Address     string               `yaml:"address"`
	Credentials string               `yaml:"credentials,omitempty"`
	APIVersion  string               `yaml:"api_version,omitempty"`
	TLSConfig   promconfig.TLSConfig `yaml:"tls_config,omitempty"`
	Labels      map[string]string    `yaml:"labels,omitempty"`
	// Collect overrides global.collect for this device.
	Collect []string `yaml:"collect,omitempty"`
	// MinPollInterval overrides global.min_poll_interval for this device.
	MinPollInterval *time.Duration `yaml:"min_poll_interval,omitempty"`
	// Policy names the policy checked; "none" for none. Devices that name
	// none get the policy "default" when there is one.
	Policy string `yaml:"policy,omitempty"`
	// Vendor overrides global.vendor for this device.
	Vendor string `yaml:"vendor,omitempty"`
	// StatusPort is the port a Ufanet device serves its registration
	// status on; DefaultUfanetStatusPort when left out. Other vendors
	// refuse it.
	StatusPort int `yaml:"status_port,omitempty"`
	// SIPSource are the addresses (IP addresses or CIDR prefixes) the
	// device's SIP registrations come from as its PBX's registrar records
	// them: a NAT's public address, say. Left out, the host of Address
	// when it is an IP address.
	SIPSource []string `yaml:"sip_source,omitempty"`

	// URL is the normalised address (scheme://host:port).
	URL *url.URL `yaml:"-"`
	// Credential is the resolved credential set, its Auth the one this
	// device uses (its vendor's default when the set names none).
	Credential *Credential `yaml:"-"`
	// PolicyRef is the resolved policy; nil when none applies.
	PolicyRef *Policy `yaml:"-"`
	// SIPSources are SIPSource parsed, or Address's IP as a one-address
	// prefix; empty for a device known by a host name only.
	SIPSources []netip.Prefix `yaml:"-"`
}

// Error is a configuration error that names where it is.
type Error struct {
	File  string
	Line  int
	What  string // e.g. `device "lobby-1"`; may be empty
	Field string // e.g. "address"; may be empty
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.What != "" {
		b.WriteString(e.What + ": ")
	}
	if e.Field != "" {
		b.WriteString("field " + e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Warning is a part of a configuration that loads but is probably a
// mistake; it names where it is as an Error does.
type Warning Error

func (w Warning) String() string { return (*Error)(&w).Error() }

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := readFile(path, "configuration file", MaxConfigFile)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse decodes and validates a configuration. file names it in errors and
// dir is where relative paths (password_file, ca_file) are resolved. Keys
// it does not know and values of the wrong type do not stop the
// validation of the rest: every problem is reported at once.
func Parse(data []byte, file, dir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(file, data, err)
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	v := validator{file: file, dir: dir, root: docRoot(&root)}
	var probs problems
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, decodeError(file, v.root, err)
		}
		// Decoded in part: what did decode is checked too, but a section
		// that did not decode at all is not reported again as missing.
		probs.decoded(file, v.root, te)
		v.credentialsLost = len(cfg.Credentials) == 0 && child(v.root, "credentials") != nil
		v.policiesLost = len(cfg.Policies) == 0 && child(v.root, "policies") != nil
	}
	if err := v.validate(cfg, &probs); err != nil {
		return nil, err
	}
	return cfg, nil
}

// typeErrorValue is the value yaml.v3 quotes in a type error ("cannot
// unmarshal !!str `hunter2` into ..."). It may be a password written in the
// wrong place, so it is dropped: the line says where.
// (?s): a value may span lines, and its first 7 characters must go too.
var typeErrorValue = regexp.MustCompile("(?s)(cannot unmarshal \\S+) `.*` into ")

// maxDecodeErrors is how many of yaml.v3's errors decodeError reports.
const maxDecodeErrors = 10

// decodeError turns yaml.v3's "line N: ..." messages into "FILE:N: ...",
// naming the device, policy or credentials entry the line belongs to and
// the field the message is about.
func decodeError(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{File: file, Err: err}
	}
	lines := make([]string, 0, len(te.Errors))
	for i, e := range te.Errors {
		if i == maxDecodeErrors { // each costs a walk of the document
			lines = append(lines, fmt.Sprintf("%s: and %d more errors", file, len(te.Errors)-i))
			break
		}
		e = typeErrorValue.ReplaceAllString(e, "$1 into ")
		var n int
		rest := e
		if _, scanErr := fmt.Sscanf(e, "line %d:", &n); scanErr == nil {
			_, rest, _ = strings.Cut(e, ": ")
			what, field, text := describe(root, n, rest)
			lines = append(lines, (&Error{File: file, Line: n, What: what, Field: field, Err: errors.New(text)}).Error())
			continue
		}
		lines = append(lines, file+": "+rest)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// entryAt names the entry of the devices list, or of the policies or
// credentials maps, or global, that line falls in; empty elsewhere.
func entryAt(root *yaml.Node, line int) string {
	if root != nil && root.Kind == yaml.SequenceNode { // a device file
		root = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Value: "devices", Line: root.Line}, root}}
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return ""
	}
	what, start := "", 0
	mark := func(l int, w string) {
		if l <= line && l >= start {
			what, start = w, l
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if key.Value == "global" {
			mark(key.Line, "global")
		} else {
			mark(key.Line, "")
		}
		switch {
		case key.Value == "devices" && val.Kind == yaml.SequenceNode:
			for j, item := range val.Content {
				name := fmt.Sprintf("device #%d", j+1)
				if n := child(item, "name"); n != nil && n.Value != "" {
					name = fmt.Sprintf("device %q", n.Value)
				}
				mark(item.Line, name)
			}
		case (key.Value == "policies" || key.Value == "credentials") && val.Kind == yaml.MappingNode:
			kind := map[string]string{"policies": "policy", "credentials": "credentials"}[key.Value]
			for j := 0; j+1 < len(val.Content); j += 2 {
				mark(val.Content[j].Line, fmt.Sprintf("%s %q", kind, val.Content[j].Value))
			}
		}
	}
	return what
}

// loadDeviceFile reads one of device_files: a YAML list of devices. It
// returns a validator whose errors name that file; the devices that
// decoded, with their problems of decoding added to probs.
func loadDeviceFile(path string, probs *problems) ([]*Device, *validator, error) {
	data, err := readFile(path, "device file", MaxConfigFile)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == path && strings.HasPrefix(pe.Op, "read ") { // refused: the file is named once
			err = fmt.Errorf("device file %w", pe.Err)
		}
		return nil, nil, &Error{File: path, Err: err}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, syntaxError(path, data, err)
	}
	fv := &validator{file: path, dir: filepath.Dir(path), root: docRoot(&root)}
	if fv.root == nil {
		return nil, fv, nil
	}
	if fv.root.Kind != yaml.SequenceNode {
		return nil, nil, &Error{File: path, Line: fv.root.Line, Err: errors.New("a device file must be a YAML list of devices")}
	}
	var devices []*Device
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&devices); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, decodeError(path, fv.root, err)
		}
		probs.decoded(path, fv.root, te)
	}
	return devices, fv, nil
}

// seqItem returns item i of a sequence node, or nil.
func seqItem(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

type validator struct {
	file string
	dir  string
	root *yaml.Node
	// The credentials or policies section did not decode: a device's
	// reference to them is not reported as missing.
	credentialsLost, policiesLost bool

	entries map[string]map[string]*yaml.Node // see entry
}

// entry is the node of the named entry of a top-level mapping (a
// credential set, a policy), or nil. Each mapping is indexed once: a walk
// of it for every entry made loading quadratic in their number.
func (v *validator) entry(section, name string) *yaml.Node {
	idx, ok := v.entries[section]
	if !ok {
		n := child(v.root, section)
		if n != nil && n.Kind == yaml.MappingNode {
			idx = make(map[string]*yaml.Node, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				if _, dup := idx[n.Content[i].Value]; !dup { // the first, as child finds
					idx[n.Content[i].Value] = n.Content[i+1]
				}
			}
		}
		if v.entries == nil {
			v.entries = map[string]map[string]*yaml.Node{}
		}
		v.entries[section] = idx
	}
	return idx[name]
}

func (v *validator) errorf(line int, what, field string, format string, args ...any) error {
	return &Error{File: v.file, Line: line, What: what, Field: field, Err: fmt.Errorf(format, args...)}
}

// warnf adds a Warning to cfg.
func (v *validator) warnf(cfg *Config, line int, what, field string, format string, args ...any) {
	cfg.Warnings = append(cfg.Warnings, Warning{File: v.file, Line: line, What: what, Field: field, Err: fmt.Errorf(format, args...)})
}

// maxProblems is how many validation errors one load reports.
const maxProblems = 50

// problems gathers the errors of one load, so that --config.check and a
// refused reload name every one, not only the first.
type problems struct {
	errs []error
	more int
	// decodedAt are the lines, by file, that a problem of decoding was
	// reported at: the validation's own problems there are the same
	// mistake again (a timeout of the wrong type is also not positive).
	decodedAt map[string]map[int]bool
}

// add adds err, or each of the errors it joins.
func (p *problems) add(err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.add(e)
		}
		return
	}
	var e *Error
	switch {
	case err == nil:
	case errors.As(err, &e) && p.decodedAt[e.File][e.Line]:
	case len(p.errs) < maxProblems:
		p.errs = append(p.errs, err)
	default:
		p.more++
	}
}

// decoded adds the problems of decoding file, and notes their lines.
func (p *problems) decoded(file string, root *yaml.Node, te *yaml.TypeError) {
	p.add(decodeError(file, root, te))
	if p.decodedAt == nil {
		p.decodedAt = map[string]map[int]bool{}
	}
	lines := map[int]bool{}
	for _, e := range te.Errors {
		var n int
		if _, err := fmt.Sscanf(e, "line %d:", &n); err == nil {
			lines[n] = true
		}
	}
	p.decodedAt[file] = lines
}

// err is nil without problems, else all of them, one a line.
func (p *problems) err(file string) error {
	if p.more > 0 {
		p.errs = append(p.errs, &Error{File: file, Err: fmt.Errorf("and %d more errors", p.more)})
	}
	return errors.Join(p.errs...)
}

// validate checks cfg and fills in its defaults, adding what is wrong to
// probs. It reports every problem it finds: a part that fails (a
// credential whose password file cannot be read, a device, a device file)
// does not hide the others.
func (v *validator) validate(cfg *Config, probs *problems) error {
	probs.add(v.global(&cfg.Global))
	probs.add(v.policies(cfg))
	probs.add(errors.Join(v.pbxs(cfg)...))
	for _, name := range slices.Sorted(maps.Keys(cfg.Credentials)) {
		probs.add(errors.Join(v.credential(name, cfg.Credentials[name])...))
	}
	seen := make(map[string]string, len(cfg.Devices)) // name: where it was defined
	// Two devices at one address are an error even with identical
	// settings: the intercom would be polled and logged in to twice a
	// scrape under two device labels, its alerts would fire twice, and
	// /probe?target=ADDRESS could not say which of the two it means.
	addrs := make(map[string]string, len(cfg.Devices)) // address: which device, where
	labels := map[string]struct{}{}
	var risks risks
	check := func(fv *validator, i int, d *Device, node *yaml.Node) {
		if d == nil {
			probs.add(fv.errorf(line(node), fmt.Sprintf("device #%d", i+1), "", "empty device entry"))
			return
		}
		where := fmt.Sprintf("%s:%d", fv.file, fieldLine(node, "name"))
		if prev, dup := seen[d.Name]; dup && d.Name != "" {
			probs.add(fv.errorf(fieldLine(node, "name"), fmt.Sprintf("device %q", d.Name), "name",
				"duplicate device name (first defined at %s)", prev))
		} else {
			seen[d.Name] = where
		}
		errs := fv.device(cfg, i, d, node)
		for _, err := range errs {
			probs.add(err)
		}
		if d.URL != nil {
			addr := d.URL.String()
			if prev, dup := addrs[addr]; dup {
				probs.add(fv.errorf(fieldLine(node, "address"), fmt.Sprintf("device %q", d.Name), "address",
					"%s is also the address of %s", addr, prev))
			} else {
				addrs[addr] = fmt.Sprintf("device %q (%s:%d)", d.Name, fv.file, fieldLine(node, "address"))
			}
		}
		if len(errs) == 0 {
			for k := range d.Labels {
				labels[k] = struct{}{}
			}
			if d.URL != nil && d.Credential != nil {
				risks.device(fv, d, node)
			}
		}
	}
	for i, d := range cfg.Devices {
		check(v, i, d, mapItem(v.root, "devices", i))
	}
	for _, pattern := range cfg.DeviceFiles {
		paths, err := filepath.Glob(promconfig.JoinDir(v.dir, pattern))
		if err != nil {
			probs.add(v.errorf(fieldLine(v.root, "device_files"), "", "device_files", "bad pattern %q: %v", pattern, err))
			continue
		}
		if len(paths) == 0 { // a typo would drop part of the fleet without a word
			probs.add(v.errorf(fieldLine(v.root, "device_files"), "", "device_files", "pattern %q matches no file", pattern))
			continue
		}
		sort.Strings(paths)
		for _, path := range paths {
			devices, fv, err := loadDeviceFile(path, probs)
			if err != nil {
				probs.add(err)
				continue
			}
			fv.credentialsLost, fv.policiesLost = v.credentialsLost, v.policiesLost
			for i, d := range devices {
				check(fv, i, d, seqItem(fv.root, i))
			}
			cfg.Devices = append(cfg.Devices, devices...)
		}
	}
	if err := probs.err(v.file); err != nil {
		return err
	}
	risks.warn(v, cfg)
	if len(cfg.Devices) == 0 {
		at := 0
		if child(v.root, "devices") != nil {
			at = fieldLine(v.root, "devices")
		}
		v.warnf(cfg, at, "", "", "no devices configured: the exporter would serve none")
	}
	cfg.LabelNames = make([]string, 0, len(labels))
	for k := range labels {
		cfg.LabelNames = append(cfg.LabelNames, k)
	}
	sort.Strings(cfg.LabelNames)
	return nil
}

func (v *validator) global(g *Global) error {
	node := child(v.root, "global")
	var errs []error
	// A wrong value is reported once, here, and replaced by its default so
	// that the devices inheriting it are not reported for it again.
	bad := func(field, format string, args ...any) {
		errs = append(errs, v.errorf(fieldLine(node, field), "global", field, format, args...))
	}
	// Left out, a setting takes its default; written as 0 it is a mistake
	// (0s would give every device up at once), not a request for the default.
	if g.Timeout == 0 && !isSet(node, "timeout") {
		g.Timeout = DefaultTimeout
	}
	if g.Timeout <= 0 {
		bad("timeout", "must be positive")
		g.Timeout = DefaultTimeout
	}
	if g.Concurrency == 0 && !isSet(node, "concurrency") {
		g.Concurrency = DefaultConcurrency
	}
	if g.Concurrency <= 0 {
		bad("concurrency", "must be positive")
		g.Concurrency = DefaultConcurrency
	}
	if g.APIVersion == "" {
		g.APIVersion = DefaultAPIVersion
	}
	if err := checkAPIVersion(g.APIVersion); err != nil {
		bad("api_version", "%v", err)
		g.APIVersion = DefaultAPIVersion
	}
	if g.Collect == nil {
		g.Collect = DefaultCollect
	}
	if err := checkCollect(g.Collect); err != nil {
		bad("collect", "%v", err)
		g.Collect = DefaultCollect
	}
	if g.InfoTTL == 0 && !isSet(node, "info_ttl") {
		g.InfoTTL = DefaultInfoTTL
	}
	if g.InfoTTL <= 0 {
		bad("info_ttl", "must be positive")
		g.InfoTTL = DefaultInfoTTL
	}
	if g.MinPollInterval == nil || *g.MinPollInterval < 0 {
		if g.MinPollInterval != nil {
			bad("min_poll_interval", "must not be negative")
		}
		d := DefaultMinPollInterval
		g.MinPollInterval = &d
	}
	labels, err := sipInfoLabels(g.SIPInfoLabels)
	if err != nil {
		bad("sip_info_labels", "%v", err)
		labels = SIPInfoLabels
	}
	g.SIPInfoLabels = labels
	if g.Vendor == "" {
		g.Vendor = VendorBASIP
	}
	if err := checkVendor(g.Vendor); err != nil {
		bad("vendor", "%v", err)
		g.Vendor = VendorBASIP
	}
	return errors.Join(errs...)
}

func checkVendor(s string) error {
	if !slices.Contains(Vendors, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(Vendors, ", "))
	}
	return nil
}

// sipInfoLabels checks a sip_info_labels list and returns it in the order
// of SIPInfoLabels; all of them when nil.
func sipInfoLabels(names []string) ([]string, error) {
	if names == nil {
		return SIPInfoLabels, nil
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case !slices.Contains(SIPInfoLabels, n):
			return nil, fmt.Errorf("%q is not one of %s", n, strings.Join(SIPInfoLabels, ", "))
		case seen[n]:
			return nil, fmt.Errorf("%q is listed twice", n)
		}
		seen[n] = true
	}
	out := make([]string, 0, len(names))
	for _, n := range SIPInfoLabels {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

func checkCollect(c []string) error {
	if len(c) == 0 {
		return errors.New("names no endpoint; use any of settings, status, info")
	}
	seen := map[string]bool{}
	for _, e := range c {
		switch {
		case !slices.Contains(device.Endpoints[:], e):
			return fmt.Errorf("%q is not one of %s", e, strings.Join(device.Endpoints[:], ", "))
		case seen[e]:
			return fmt.Errorf("%q is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}

// Collects reports whether the device is polled for endpoint.
func (d *Device) Collects(endpoint device.Endpoint) bool {
	return slices.Contains(d.Collect, endpoint.String())
}

func checkAPIVersion(s string) error {
	if !slices.Contains(APIVersions, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(APIVersions, ", "))
	}
	return nil
}

func (v *validator) credential(name string, c *Credential) []error {
	node := v.entry("credentials", name)
	what := fmt.Sprintf("credentials %q", name)
	if c == nil {
		return []error{v.errorf(line(node), what, "", "empty credentials entry")}
	}
	var errs []error
	bad := func(line int, field, format string, args ...any) {
		errs = append(errs, v.errorf(line, what, field, format, args...))
	}
	if c.Username == "" {
		bad(line(node), "username", "missing")
	}
	c.authSet = c.Auth != ""
	switch {
	case c.Auth == "":
		c.Auth = AuthToken
	case !slices.Contains(Auths, c.Auth):
		bad(fieldLine(node, "auth"), "auth", "%q is not one of %s", c.Auth, strings.Join(Auths, ", "))
	}
	switch c.MD5Case {
	case "":
		c.MD5Case = MD5Upper
	case MD5Upper, MD5Lower:
	default:
		bad(fieldLine(node, "md5_case"), "md5_case", "%q is not %s or %s", c.MD5Case, MD5Upper, MD5Lower)
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		bad(fieldLine(node, "password_file"), "password_file", "set either password or password_file, not both")
	case c.Password != "":
		c.password = c.Password
	case c.PasswordFile != "":
		c.PasswordFile = promconfig.JoinDir(v.dir, c.PasswordFile)
		p, err := readPasswordFile(c.PasswordFile)
		if err != nil {
			bad(fieldLine(node, "password_file"), "password_file", "%v", err)
		}
		c.password = p
	default:
		bad(line(node), "password", "missing: set password or password_file")
	}
	return errs
}

// readPasswordFile reads a password file (see readFile), trimmed of one
// trailing newline. Errors name the file, never its content.
func readPasswordFile(path string) (device.Secret, error) {
	b, err := readFile(path, "password file", MaxPasswordFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return device.Secret(s), nil
}

// device checks d and fills in its defaults; it returns every problem of
// the entry.
func (v *validator) device(cfg *Config, i int, d *Device, node *yaml.Node) []error {
	what := fmt.Sprintf("device %q", d.Name)
	if d.Name == "" {
		what = fmt.Sprintf("device #%d", i+1)
		return []error{v.errorf(line(node), what, "name", "missing")}
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, v.errorf(fieldLine(node, field), what, field, format, args...))
	}
	if !utf8.ValidString(d.Name) {
		bad("name", "not valid UTF-8")
	}
	if u, err := ParseAddress(d.Address); err != nil {
		bad("address", "%v", err)
	} else {
		d.URL = u
	}
	d.SIPSources = nil
	for _, src := range d.SIPSource {
		p, err := netip.ParsePrefix(src)
		if a, aerr := netip.ParseAddr(src); aerr == nil {
			p, err = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
		}
		if err != nil {
			bad("sip_source", "%q is not an IP address or a CIDR prefix", src)
			continue
		}
		d.SIPSources = append(d.SIPSources, p.Masked())
	}
	if len(d.SIPSource) == 0 && d.URL != nil {
		if a, err := netip.ParseAddr(d.URL.Hostname()); err == nil {
			d.SIPSources = []netip.Prefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}
		}
	}
	credName := d.Credentials
	if credName == "" {
		credName = DefaultCredentials
	}
	if c, ok := cfg.Credentials[credName]; ok {
		d.Credential = c
	} else if !v.credentialsLost { // else their decoding failed, and said so
		bad("credentials", "no credentials named %q", credName)
	}
	if err := v.vendor(cfg, d, node, what); err != nil {
		errs = append(errs, err)
	}
	if err := v.resolvePolicy(cfg, d, node, what); err != nil && !v.policiesLost {
		errs = append(errs, err)
	}
	if d.APIVersion == "" {
		d.APIVersion = cfg.Global.APIVersion
	}
	if err := checkAPIVersion(d.APIVersion); err != nil {
		bad("api_version", "%v", err)
	}
	if d.Collect == nil {
		d.Collect = cfg.Global.Collect
	}
	if err := checkCollect(d.Collect); err != nil {
		bad("collect", "%v", err)
	}
	if d.MinPollInterval == nil {
		d.MinPollInterval = cfg.Global.MinPollInterval
	}
	if d.MinPollInterval != nil && *d.MinPollInterval < 0 {
		bad("min_poll_interval", "must not be negative")
	}
	d.TLSConfig.SetDirectory(v.dir)
	if err := checkTLSConfig(d.TLSConfig); err != nil {
		bad("tls_config", "%v", err)
	}
	labelsNode := child(node, "labels")
	for _, k := range slices.Sorted(maps.Keys(d.Labels)) {
		if err := checkLabel(k, d.Labels[k]); err != nil {
			errs = append(errs, v.errorf(fieldLine(labelsNode, k), what, "labels", "%v", err))
		}
	}
	return errs
}

// checkTLSConfig checks a tls_config, reading the files it names through
// ReadTLSFile: a named pipe or /dev/zero as a CA file is refused, never
// read. The check builds the TLS configuration from their content, so it
// opens no file itself.
func checkTLSConfig(tc promconfig.TLSConfig) error {
	for _, f := range []struct {
		path *string
		set  func([]byte)
	}{
		{&tc.CAFile, func(b []byte) { tc.CA = string(b) }},
		{&tc.CertFile, func(b []byte) { tc.Cert = string(b) }},
		{&tc.KeyFile, func(b []byte) { tc.Key = promconfig.Secret(b) }},
	} {
		if *f.path == "" {
			continue
		}
		b, err := ReadTLSFile(*f.path)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return fmt.Errorf("TLS file %s is empty", *f.path)
		}
		if err := tc.Validate(); err != nil { // before the file's content hides the conflict
			return err
		}
		*f.path = ""
		f.set(b)
	}
	_, err := promconfig.NewTLSConfig(&tc)
	return err
}

// vendor resolves a device's vendor, the auth it uses with its credential
// set and its status_port.
func (v *validator) vendor(cfg *Config, d *Device, node *yaml.Node, what string) error {
	if d.Vendor == "" {
		d.Vendor = cfg.Global.Vendor
	}
	if err := checkVendor(d.Vendor); err != nil {
		return v.errorf(fieldLine(node, "vendor"), what, "vendor", "%v", err)
	}
	c, auths := d.Credential, VendorAuths[d.Vendor]
	auth := auths[0]
	if c != nil && c.authSet {
		auth = c.Auth
	}
	switch {
	case c == nil: // no such set: reported by the caller
	case !slices.Contains(auths, auth):
		return v.errorf(fieldLine(node, "credentials"), what, "credentials", "%s uses auth %s, which vendor %s does not accept (it takes %s)",
			fmt.Sprintf("credentials %q", credentialName(d)), auth, d.Vendor, strings.Join(auths, " or "))
	case auth != c.Auth: // the set is shared: this device gets its own copy
		cc := *c
		cc.Auth = auth
		d.Credential = &cc
	}
	switch {
	case d.Vendor != VendorUfanet && isSet(node, "status_port"):
		return v.errorf(fieldLine(node, "status_port"), what, "status_port", "only Ufanet devices have a status port (this one is %s)", d.Vendor)
	case d.Vendor == VendorUfanet && d.StatusPort == 0 && !isSet(node, "status_port"):
		d.StatusPort = DefaultUfanetStatusPort
	case d.Vendor == VendorUfanet && (d.StatusPort < 1 || d.StatusPort > 65535):
		return v.errorf(fieldLine(node, "status_port"), what, "status_port", "%d is not a port (1-65535)", d.StatusPort)
	}
	return nil
}

func credentialName(d *Device) string {
	if d.Credentials == "" {
		return DefaultCredentials
	}
	return d.Credentials
}

func checkLabel(name, value string) error {
	if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
		return fmt.Errorf("%q is not a valid label name", name)
	}
	for _, r := range ReservedLabels {
		if name == r {
			return fmt.Errorf("label %q is set by the exporter and cannot be configured", name)
		}
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("value of label %q is not valid UTF-8", name)
	}
	return nil
}

// docRoot returns the top-level mapping of a parsed document, or nil.
func docRoot(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0]
	}
	return nil
}

// child returns the value node under key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mapItem returns item i of the sequence under key, or nil.
func mapItem(n *yaml.Node, key string, i int) *yaml.Node {
	s := child(n, key)
	if s == nil || s.Kind != yaml.SequenceNode || i >= len(s.Content) {
		return nil
	}
	return s.Content[i]
}

// isSet reports whether mapping n gives key a value other than null.
func isSet(n *yaml.Node, key string) bool {
	v := child(n, key)
	if v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	return v != nil && v.ShortTag() != "!!null"
}

// fieldLine is the line of key in mapping n, else the line of n itself.
func fieldLine(n *yaml.Node, key string) int {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	return line(n)
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}
