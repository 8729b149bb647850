package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// errUserInfo refuses an address with user@ or user:password@ in it,
// quoting none of it.
var errUserInfo = errors.New("address must not contain user information (user:password@); use credentials")

// ParseAddress turns a device address (host, host:port, or an http:// or
// https:// URL) into its normal form: scheme://host:port with the scheme and
// host in lower case and the default port made explicit. Two spellings of the
// same device give the same string, which is what /probe compares.
//
// An address with user information is refused before it is parsed, and
// no error quotes it: url.Parse's own errors (an invalid escape, an
// invalid port) quote pieces of a password written as
// http://admin:100%Secure@host, and a host never contains an @.
func ParseAddress(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty address")
	}
	if strings.Contains(s, "@") {
		return nil, errUserInfo
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, errors.New("address contains white space")
	}
	raw := s
	if !strings.Contains(s, "://") {
		if ip := net.ParseIP(s); ip != nil && strings.Contains(s, ":") {
			s = "[" + s + "]" // a bare IPv6 address
		}
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot parse %q: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	switch {
	case u.User != nil:
		return nil, errUserInfo
	case u.Opaque != "":
		return nil, fmt.Errorf("cannot parse %q", s)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("address must not contain a query")
	case u.Fragment != "":
		return nil, errors.New("address must not contain a fragment")
	case u.Path != "" && u.Path != "/":
		return nil, errors.New("address must not contain a path: the API path is derived from api_version")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, errors.New("address has no host")
	}
	// A name of digits and dots is not a host name (a top-level domain is
	// never numeric) but a mistyped IPv4 address, which a resolver would
	// otherwise be asked about.
	if strings.Trim(host, "0123456789.") == "" && net.ParseIP(host).To4() == nil {
		return nil, fmt.Errorf("%q is not a valid IPv4 address", host)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return nil, errors.New("address has an empty port")
		}
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	// strconv.Itoa: "080" and "80" are the same port.
	out := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(n))}
	// The normal form must parse back to itself; a host that does not
	// survive printing (an IPv6 zone of stray bytes, say) is refused.
	if back, err := url.Parse(out.String()); err != nil || back.Host != out.Host {
		return nil, fmt.Errorf("cannot parse %q: unusable host", s)
	}
	return out, nil
}
