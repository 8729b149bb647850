// Package vendors builds the device.Client of each vendor the exporter
// reads: BAS-IP (package basip) and, here, 2N, Beward, Qtech, Akuvox, IS
// Sokol, Rubetek, Ufanet and Hikvision. Each of these is a small client over
// the shared device transport (package devhttp): which requests, how to
// decode their answers, and how to map them onto device.SIPSettings,
// SIPStatus and Info.
//
// Every client New returns, BAS-IP's included, answers through one
// boundary (boundary.go) that owns what holds whatever the vendor: text
// safe for every output, one form for the proxy, the transport and the
// device type, accounts bounded by the vendor's count and kept only when
// enabled, unknown registration values an error kept raw, the device's
// state derived from its accounts. A vendor's file only decodes and maps.
//
// Hikvision answers ISAPI XML (GET /ISAPI/System/Network/SIP,
// /ISAPI/System/Network/SIP/1 and /ISAPI/System/deviceInfo), decoded by
// local element names whatever the namespace; its shapes come from the
// SmartYard-Server, Selpol and Scrypted clients, no device answer being
// public (hikvision.go names the lines and what is unverified).
//
// One package with a file per vendor rather than a package each: the
// vendors share the decoding helpers of this file (key=value text, JSON
// objects, flexible booleans and ports) and the boundary, which a package
// per vendor would have to export to the others; a vendor's file is read
// alone all the same.
//
// The shapes come from public clients and manuals (the sources are named
// in each file), not from devices on a bench; testdata/field holds the
// answers they show, each file naming its source, and the collector's
// tests run every vendor's client against them over HTTP.
//
// Decoding is the same for every vendor: keys the client does not read are
// ignored, a key that is missing gives a nil field (no series), a value of
// the wrong type is an error (reason decode) that quotes nothing of the
// body, and a registration value the vendor's table does not hold is
// ERROR with the value kept raw (mapState), never a decode error.
package vendors

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/basip/basip_exporter/collector/basip"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// New returns the client of dc's vendor, its answers held to the
// boundary's guarantees (boundary.go). tc is the device's TLS
// configuration; it may be shared and is not modified.
func New(dc *config.Device, tc *tls.Config) device.Client {
	return newGuard(newClient(dc, tc), SpecOf(dc.Vendor))
}

// newClient is the vendor's own client.
func newClient(dc *config.Device, tc *tls.Config) device.Client {
	cred := dc.Credential
	o := devhttp.Options{BaseURL: dc.URL, TLSConfig: tc}
	authed := func() *devhttp.Authed {
		return devhttp.NewAuthed(o, devhttp.Credentials{Auth: cred.Auth, Username: cred.Username, Password: cred.Secret().Reveal()})
	}
	switch dc.Vendor {
	case config.Vendor2N:
		return &TwoN{base{authed()}}
	case config.VendorBeward:
		return &Beward{base: base{authed()}}
	case config.VendorQtech:
		return &Qtech{base{authed()}}
	case config.VendorAkuvox:
		return &Akuvox{base{authed()}}
	case config.VendorSokol:
		return &Sokol{base: base{authed()}}
	case config.VendorRubetek:
		return &Rubetek{base{authed()}}
	case config.VendorUfanet:
		so := o
		so.BaseURL = withPort(dc.URL, dc.StatusPort)
		web := authed()
		return &Ufanet{base: base{web}, status: web.OtherPort(so)}
	case config.VendorHikvision:
		return &Hikvision{base{authed()}}
	}
	return basip.New(basip.Options{
		BaseURL:    dc.URL,
		APIVersion: dc.APIVersion,
		Username:   cred.Username,
		Password:   cred.Secret().Reveal(),
		Basic:      cred.Auth == config.AuthBasic,
		LowerMD5:   cred.MD5Case == config.MD5Lower,
		TLSConfig:  tc,
	})
}

// base is what every vendor's client has: its authenticated connection.
type base struct{ conn *devhttp.Authed }

// Close implements device.Client.
func (b *base) Close() { b.conn.Close() }

// APIVersion implements device.Client: these vendors have one API.
func (b *base) APIVersion() string { return "" }

// get sends a GET of target and returns the body of a 200 and the
// request's name for errors.
func (b *base) get(ctx context.Context, target string, res *device.Result) ([]byte, string, error) {
	r := &devhttp.Request{Target: target}
	body, err := b.conn.Fetch(ctx, r, res)
	return body, r.Op(), err
}

// post sends payload as JSON in a POST to target.
func (b *base) post(ctx context.Context, target string, payload any, res *device.Result) ([]byte, string, error) {
	data, err := json.Marshal(payload)
	r := &devhttp.Request{Method: "POST", Target: target, Body: data, Header: http.Header{"Content-Type": {"application/json"}}}
	if err != nil {
		return nil, r.Op(), &device.Error{Reason: device.ReasonConnection, Op: r.Op(), Err: errors.New("cannot build request")}
	}
	body, err := b.conn.Fetch(ctx, r, res)
	return body, r.Op(), err
}

// withPort is u on another port.
func withPort(u *url.URL, port int) *url.URL {
	v := *u
	v.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return &v
}

// decodeError is the error of an answer not understood.
func decodeError(op string, err error) *device.Error {
	return &device.Error{Reason: device.ReasonDecode, Op: op, Err: err}
}

// notSupported turns a 404 into device.ErrNotSupported.
func notSupported(err error) error {
	var e *device.Error
	if errors.As(err, &e) && e.Reason == device.ReasonHTTPStatus && e.Status == 404 {
		return device.ErrNotSupported
	}
	return err
}

// decodeJSON decodes a JSON object into v, with errors that quote nothing
// of the body.
func decodeJSON(body []byte, v any) error {
	b := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(b) == 0:
		return errors.New("empty body")
	case b[0] != '{':
		return errors.New("body is not a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return devhttp.JSONError(err)
	}
	return nil
}

// maxKeyValueLines bounds the lines of a key=value answer.
const maxKeyValueLines = 10000

// parseKeyValues reads the keys of a "key=value" answer (Beward, Rubetek,
// Ufanet's INI): the value is everything after the first "=", trimmed.
// It walks the body line by line and keeps only the keys asked for, so
// what it allocates is bounded by keys, not by the body; the line limit
// applies as it walks. Lines that are not key=value (a banner, an INI
// section, a blank line) are skipped, as public clients do; an answer
// with none of keys is not the device's (an HTML page), nor is one with a
// NUL (binary). The first occurrence of a key counts.
func parseKeyValues(body []byte, keys ...string) (map[string]string, error) {
	if bytes.IndexByte(body, 0) >= 0 {
		return nil, errors.New("body is not text")
	}
	kv := make(map[string]string, len(keys))
	for n, rest := 1, body; len(rest) > 0; n++ {
		if n > maxKeyValueLines {
			return nil, fmt.Errorf("more than %d lines", maxKeyValueLines)
		}
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		k = bytes.TrimSpace(k)
		for _, want := range keys {
			if string(k) == want { // no allocation: the compiler compares in place
				if _, dup := kv[want]; !dup {
					kv[want] = string(bytes.TrimSpace(v))
				}
				break
			}
		}
	}
	if len(kv) == 0 {
		return nil, errors.New("none of the expected keys")
	}
	return kv, nil
}

// Field getters over a parsed answer: a missing key is nil; a value of the
// wrong shape is an error naming the key.

func kvString(kv map[string]string, key string) *string {
	if v, ok := kv[key]; ok {
		return &v
	}
	return nil
}

func kvSecret(kv map[string]string, key string) *device.Secret {
	if v, ok := kv[key]; ok {
		s := device.Secret(v)
		return &s
	}
	return nil
}

// parseBool reads the booleans vendors write: on/off, 1/0, true/false,
// yes/no, in any case.
func parseBool(key, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "on", "true", "yes", "enable", "enabled":
		return true, nil
	case "0", "off", "false", "no", "disable", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("field %s: not a boolean", key)
}

func kvBool(kv map[string]string, key string) (*bool, error) {
	v, ok := kv[key]
	if !ok {
		return nil, nil
	}
	b, err := parseBool(key, v)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// parseInt reads a decimal integer; empty is absent (nil).
func parseInt(key, v string) (*int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("field %s: not an integer", key)
	}
	return &n, nil
}

func kvInt(kv map[string]string, key string) (*int64, error) {
	v, ok := kv[key]
	if !ok {
		return nil, nil
	}
	return parseInt(key, v)
}

// hostPort joins a SIP server and its port as host:port; the host alone
// when the port is unknown; nil without a host.
func hostPort(host *string, port *int64) *string {
	if host == nil {
		return nil
	}
	h := *host
	if port != nil && h != "" {
		if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			h = "[" + h + "]"
		}
		h = fmt.Sprintf("%s:%d", h, *port)
	}
	return &h
}

// stun is the STUN server when the device says one is used, nil when it
// says none is, and when it does not say.
func stun(enabled *bool, server *string, port *int64) *device.STUN {
	if enabled == nil && server == nil {
		return nil
	}
	if (enabled != nil && !*enabled) || server == nil || *server == "" {
		empty := ""
		return &device.STUN{IP: &empty}
	}
	return &device.STUN{IP: server, Port: port}
}

// lowerTransport normalises a transport name ("UDP", "TLS") to the
// exporter's lower case; unknown values stay as sent.
func lowerTransport(t *string) *string {
	if t == nil {
		return nil
	}
	v := strings.ToLower(strings.TrimSpace(*t))
	return &v
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
