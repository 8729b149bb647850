package vendorsim

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// DigestAuth is the server's side of HTTP Digest (RFC 7616) as a device
// does it, written from the RFC apart from the exporter's client so that a
// test of one against the other can fail: it issues nonces, and verifies
// the response hash, the nonce, the realm, the uri against the request and
// that nc only grows.
type DigestAuth struct {
	Realm string
	// Algorithms offered, one challenge each, in this order: "MD5" when
	// empty. "SHA-256" and "MD5" are known.
	Algorithms []string
	// NonceUses is how many requests a nonce serves before it is stale
	// (0: for ever).
	NonceUses int

	mu     sync.Mutex
	nonces map[string]*nonceState
}

type nonceState struct {
	lastNC uint64
	uses   int
}

var digestParam = regexp.MustCompile(`(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))`)

// Challenge writes the WWW-Authenticate headers of a 401: a fresh nonce,
// with stale=true when stale.
func (a *DigestAuth) Challenge(w http.ResponseWriter, stale bool) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	nonce := hex.EncodeToString(b)
	a.mu.Lock()
	if a.nonces == nil {
		a.nonces = map[string]*nonceState{}
	}
	a.nonces[nonce] = &nonceState{}
	a.mu.Unlock()
	algs := a.Algorithms
	if len(algs) == 0 {
		algs = []string{"MD5"}
	}
	for _, alg := range algs {
		v := fmt.Sprintf(`Digest realm="%s", qop="auth", algorithm=%s, nonce="%s", opaque="5ccc069c403ebaf9"`, a.Realm, alg, nonce)
		if stale {
			v += ", stale=true"
		}
		w.Header().Add("WWW-Authenticate", v)
	}
}

// Nonces returns the nonces issued so far.
func (a *DigestAuth) Nonces() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.nonces))
	for n := range a.nonces {
		out = append(out, n)
	}
	return out
}

// Verify checks r's Digest Authorization against the user's password. It
// returns ok, and stale when the only fault is a nonce past its uses.
func (a *DigestAuth) Verify(r *http.Request, user, password string) (ok, stale bool) {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Digest ") {
		return false, false
	}
	p := map[string]string{}
	for _, m := range digestParam.FindAllStringSubmatch(h[len("Digest "):], -1) {
		v := m[3]
		if m[2] != "" || strings.HasPrefix(m[0][len(m[1])+1:], `"`) {
			v = strings.ReplaceAll(strings.ReplaceAll(m[2], `\"`, `"`), `\\`, `\`)
		}
		p[strings.ToLower(m[1])] = v
	}
	if p["username"] != user || p["realm"] != a.Realm || p["uri"] != r.URL.RequestURI() || p["qop"] != "auth" {
		return false, false
	}
	sum := func(s string) string {
		if strings.EqualFold(p["algorithm"], "SHA-256") {
			x := sha256.Sum256([]byte(s))
			return hex.EncodeToString(x[:])
		}
		x := md5.Sum([]byte(s))
		return hex.EncodeToString(x[:])
	}
	want := sum(sum(user+":"+a.Realm+":"+password) + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + sum(r.Method+":"+p["uri"]))
	if p["response"] != want {
		return false, false
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 32)
	if err != nil || len(p["nc"]) != 8 || p["cnonce"] == "" {
		return false, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nonces[p["nonce"]]
	switch {
	case n == nil || nc <= n.lastNC: // unknown nonce, or a replay
		return false, false
	case a.NonceUses > 0 && n.uses >= a.NonceUses:
		return false, true
	}
	n.lastNC = nc
	n.uses++
	return true, false
}
