package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	promconfig "github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// PBX is a SIP server the devices register with: the exporter asks it
// (one SIP OPTIONS) whether it answers, and reads its registrar's
// contacts to set them beside what each device says of its own
// registration.
type PBX struct {
	Name string `yaml:"name"`
	// SIP is where the OPTIONS go, transport://host[:port] with transport
	// udp, tcp or tls: the only address the exporter sends SIP to. It is
	// also the address a device's proxy must name to count as pointing
	// to this PBX.
	SIP string `yaml:"sip"`
	// Aliases are other host[:port] (or sip:host[:port]) spellings the
	// devices' proxy setting may use for this PBX: a domain name, a
	// second address. They are matched, never sent to.
	Aliases []string `yaml:"aliases,omitempty"`
	// TLSConfig is the client TLS configuration for sip: tls://...
	TLSConfig promconfig.TLSConfig `yaml:"tls_config,omitempty"`
	// Registrar, when set, is read for the contacts it holds.
	Registrar *PBXRegistrar `yaml:"registrar,omitempty"`

	// Transport, Host and Port are SIP, parsed; Host in lower case.
	Transport string `yaml:"-"`
	Host      string `yaml:"-"`
	Port      int    `yaml:"-"`
	// Names are the host:port forms a device's proxy is matched against:
	// SIP's and the aliases', each with its port made explicit.
	Names []string `yaml:"-"`
}

// PBXRegistrar is where a PBX's registrations are read.
type PBXRegistrar struct {
	// Type is one of RegistrarTypes.
	Type string `yaml:"type"`
	// URL is the registrar's HTTP endpoint: Kamailio's JSON-RPC (for
	// example http://10.0.0.5:5071/RPC), Asterisk's manager over HTTP
	// (http://10.0.0.6:8088/rawman).
	URL string `yaml:"url"`
	// Credentials names a credentials set (username and password or
	// password_file); none for a registrar that takes none.
	Credentials string               `yaml:"credentials,omitempty"`
	TLSConfig   promconfig.TLSConfig `yaml:"tls_config,omitempty"`

	// Credential is the resolved set; nil when none is named.
	Credential *Credential `yaml:"-"`
}

// RegistrarTypes are the registrars the exporter reads.
var RegistrarTypes = []string{"kamailio", "asterisk"}

// SIP transports and their default ports.
var sipDefaultPorts = map[string]int{"udp": 5060, "tcp": 5060, "tls": 5061}

// ParseSIPAddress parses a PBX's sip address, transport://host[:port].
func ParseSIPAddress(s string) (transport, host string, port int, err error) {
	if strings.Contains(s, "@") {
		return "", "", 0, errors.New("must not contain user information (user@)")
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return "", "", 0, fmt.Errorf("%q is not transport://host[:port] (transport udp, tcp or tls)", s)
	}
	transport = strings.ToLower(u.Scheme)
	def, ok := sipDefaultPorts[transport]
	if !ok {
		return "", "", 0, fmt.Errorf("transport %q is not udp, tcp or tls", u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", 0, fmt.Errorf("%q has a path or query: write transport://host[:port]", s)
	}
	host, port, err = hostPort(u.Host, def)
	return transport, host, port, err
}

// hostPort splits host[:port], the port def when left out.
func hostPort(s string, def int) (string, int, error) {
	host, p := s, ""
	if h, pp, err := net.SplitHostPort(s); err == nil {
		host, p = h, pp
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	host = strings.ToLower(host)
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || r == '/' || r == '@' }) {
		return "", 0, fmt.Errorf("%q has no valid host", s)
	}
	port := def
	if p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%q: port is not 1-65535", s)
		}
		port = n
	}
	return host, port, nil
}

// ProxyName is the host:port a device's proxy setting names, in the form
// of PBX.Names (lower case, the port explicit: 5060, or 5061 for sips:);
// "" when proxy names no host. proxy is in the form the boundary gives
// it: sip:host[:port] or sips:host[:port].
func ProxyName(proxy string) string {
	def := 5060
	switch {
	case strings.HasPrefix(proxy, "sips:"):
		proxy, def = proxy[len("sips:"):], 5061
	case strings.HasPrefix(proxy, "sip:"):
		proxy = proxy[len("sip:"):]
	}
	if proxy == "" {
		return ""
	}
	host, port, err := hostPort(proxy, def)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// aliasName is an alias in the form of PBX.Names.
func aliasName(s string) (string, error) {
	s = strings.TrimSpace(s)
	def := 5060
	switch ls := strings.ToLower(s); {
	case strings.HasPrefix(ls, "sips:"):
		s, def = s[len("sips:"):], 5061
	case strings.HasPrefix(ls, "sip:"):
		s = s[len("sip:"):]
	}
	if strings.Contains(s, "@") || strings.Contains(s, ";") {
		return "", fmt.Errorf("%q is not host[:port]", s)
	}
	host, port, err := hostPort(s, def)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// pbxs checks cfg.PBXs and resolves their credentials.
func (v *validator) pbxs(cfg *Config) []error {
	var errs []error
	names := map[string]int{}     // name: line
	owners := map[string]string{} // host:port: PBX
	for i, p := range cfg.PBXs {
		node := mapItem(v.root, "pbxs", i)
		what := fmt.Sprintf("pbx #%d", i+1)
		if p == nil {
			errs = append(errs, v.errorf(line(node), what, "", "empty pbx entry"))
			continue
		}
		bad := func(field, format string, args ...any) {
			at := line(node)
			if field != "" && isSet(node, field) {
				at = fieldLine(node, field)
			}
			errs = append(errs, v.errorf(at, what, field, format, args...))
		}
		switch {
		case p.Name == "":
			bad("name", "missing")
		case !utf8.ValidString(p.Name) || strings.ContainsFunc(p.Name, unicode.IsControl) || len(p.Name) > 128:
			bad("name", "must be printable UTF-8, at most 128 bytes")
		default:
			what = fmt.Sprintf("pbx %q", p.Name)
			if prev, dup := names[p.Name]; dup {
				bad("name", "duplicate pbx name (first defined at line %d)", prev)
			}
			names[p.Name] = fieldLine(node, "name")
		}
		if p.SIP == "" {
			bad("sip", "missing: transport://host[:port], where the devices' proxy points")
		} else if t, h, port, err := ParseSIPAddress(p.SIP); err != nil {
			bad("sip", "%v", err)
		} else {
			p.Transport, p.Host, p.Port = t, h, port
			p.Names = []string{net.JoinHostPort(h, strconv.Itoa(port))}
		}
		for _, a := range p.Aliases {
			n, err := aliasName(a)
			if err != nil {
				bad("aliases", "%v", err)
				continue
			}
			if !slices.Contains(p.Names, n) {
				p.Names = append(p.Names, n)
			}
		}
		for _, n := range p.Names {
			if prev, dup := owners[n]; dup && prev != p.Name {
				bad("sip", "%s is also an address of pbx %q: a device's proxy would point to both", n, prev)
			}
			owners[n] = p.Name
		}
		if p.Transport == "tls" {
			if err := checkTLSConfig(p.TLSConfig); err != nil {
				bad("tls_config", "%v", err)
			}
		}
		if r := p.Registrar; r != nil {
			errs = append(errs, v.registrar(cfg, r, child(node, "registrar"), what)...)
		}
	}
	return errs
}

func (v *validator) registrar(cfg *Config, r *PBXRegistrar, node *yaml.Node, what string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		at := line(node)
		if isSet(node, field) {
			at = fieldLine(node, field)
		}
		errs = append(errs, v.errorf(at, what, "registrar."+field, format, args...))
	}
	if !slices.Contains(RegistrarTypes, r.Type) {
		bad("type", "%q is not one of %s", r.Type, strings.Join(RegistrarTypes, ", "))
	}
	if r.URL == "" {
		bad("url", "missing")
	} else if u, err := parseRegistrarURL(r.URL); err != nil {
		bad("url", "%v", err)
	} else {
		r.URL = u
	}
	if r.Credentials != "" {
		c, ok := cfg.Credentials[r.Credentials]
		switch {
		case ok && c != nil:
			r.Credential = c
		case !v.credentialsLost:
			bad("credentials", "no credentials set %q", r.Credentials)
		}
	}
	if strings.HasPrefix(r.URL, "https://") {
		if err := checkTLSConfig(r.TLSConfig); err != nil {
			bad("tls_config", "%v", err)
		}
	}
	return errs
}

// parseRegistrarURL checks a registrar's URL: http or https, a host, a
// path, no user information (credentials go in a credentials set), no
// query (where a secret would end up in every proxy's log). No error
// quotes a URL with user information.
func parseRegistrarURL(s string) (string, error) {
	if strings.Contains(s, "@") {
		return "", errUserInfo
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("cannot parse %q", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: the scheme must be http or https", s)
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("must not contain a query")
	case u.Fragment != "":
		return "", errors.New("must not contain a fragment")
	}
	if _, _, err := hostPort(u.Host, 80); err != nil {
		return "", err
	}
	return u.String(), nil
}
