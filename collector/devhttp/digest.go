package devhttp

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
)

// HTTP Digest access authentication (RFC 7616), the client's side, kept
// small: algorithms MD5 and SHA-256 (and their -sess variants), qop "auth"
// or none (RFC 2069), opaque echoed. A challenge is kept and its nonce
// reused, nc counting up, while the device accepts it: in steady state a
// request costs no extra round trip. The response, nonce and cnonce are
// secrets: they go into the Authorization header and nowhere else.

// challenge is a device's Digest challenge.
type challenge struct {
	realm, nonce, opaque, algorithm string
	qop                             bool // qop=auth offered: send qop, nc and cnonce
	stale                           bool
	nc                              uint32
}

// algorithms are the Digest algorithms spoken, the strongest first.
var algorithms = map[string]int{"SHA-256": 2, "SHA-256-SESS": 2, "MD5": 1, "MD5-SESS": 1, "": 1}

// parseChallenges returns the strongest Digest challenge of a 401's
// WWW-Authenticate headers that this client can answer, or nil.
func parseChallenges(h http.Header) *challenge {
	var best *challenge
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Digest") {
			continue
		}
		p := authParams(rest)
		c := &challenge{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"], algorithm: strings.ToUpper(p["algorithm"]),
			stale: strings.EqualFold(p["stale"], "true")}
		if _, ok := algorithms[c.algorithm]; !ok || c.nonce == "" {
			continue
		}
		if q, ok := p["qop"]; ok {
			for _, o := range strings.Split(q, ",") {
				c.qop = c.qop || strings.TrimSpace(o) == "auth"
			}
			if !c.qop { // auth-int only: not spoken
				continue
			}
		}
		if best == nil || algorithms[c.algorithm] > algorithms[best.algorithm] {
			best = c
		}
	}
	return best
}

// authParams parses the comma-separated name=value and name="quoted value"
// pairs of an auth header; names in lower case.
func authParams(s string) map[string]string {
	p := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " \t,")
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		name = strings.ToLower(strings.TrimSpace(name))
		rest = strings.TrimLeft(rest, " \t")
		var val strings.Builder
		if strings.HasPrefix(rest, `"`) {
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				val.WriteByte(rest[i])
			}
			s = rest[min(i+1, len(rest)):]
		} else {
			v, after, _ := strings.Cut(rest, ",")
			val.WriteString(strings.TrimSpace(v))
			s = after
		}
		p[name] = val.String()
	}
	return p
}

// authorization is the Authorization header answering c for one request;
// it counts nc up.
func (c *challenge) authorization(username, password, method, uri string) (string, error) {
	var h func() hash.Hash = md5.New
	if strings.HasPrefix(c.algorithm, "SHA-256") {
		h = sha256.New
	}
	hx := func(s string) string {
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	var cnonce string
	if c.qop || strings.HasSuffix(c.algorithm, "-SESS") {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("digest cnonce: %w", err)
		}
		cnonce = hex.EncodeToString(b)
	}
	ha1 := hx(username + ":" + c.realm + ":" + password)
	if strings.HasSuffix(c.algorithm, "-SESS") {
		ha1 = hx(ha1 + ":" + c.nonce + ":" + cnonce)
	}
	ha2 := hx(method + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s`, quote(username), quote(c.realm), quote(c.nonce), quote(uri))
	if c.algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", c.algorithm)
	}
	if c.qop {
		c.nc++
		nc := fmt.Sprintf("%08x", c.nc)
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce="%s", response="%s"`, nc, cnonce, hx(ha1+":"+c.nonce+":"+nc+":"+cnonce+":auth:"+ha2))
	} else {
		fmt.Fprintf(&b, `, response="%s"`, hx(ha1+":"+c.nonce+":"+ha2))
		if cnonce != "" {
			fmt.Fprintf(&b, `, cnonce="%s"`, cnonce)
		}
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quote(c.opaque))
	}
	return b.String(), nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
