package devhttp

import (
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// TestParseChallenges: the strongest Digest challenge this client can
// answer is taken; auth-int only, unknown algorithms and other schemes are
// not.
func TestParseChallenges(t *testing.T) {
	cases := map[string]struct {
		headers []string
		want    string // algorithm of the challenge taken; "none" for nil
		qop     bool
	}{
		"MD5 with qop":          {[]string{`Digest realm="2N", qop="auth", nonce="abc", algorithm=MD5`}, "MD5", true},
		"SHA-256 over MD5":      {[]string{`Digest realm="r", qop="auth", algorithm=MD5, nonce="a"`, `Digest realm="r", qop="auth", algorithm=SHA-256, nonce="b"`}, "SHA-256", true},
		"no algorithm: MD5":     {[]string{`Digest realm="r", nonce="a", qop="auth,auth-int"`}, "", true},
		"RFC 2069, no qop":      {[]string{`Digest realm="r", nonce="a"`}, "", false},
		"auth-int only":         {[]string{`Digest realm="r", nonce="a", qop="auth-int"`}, "none", false},
		"unknown algorithm":     {[]string{`Digest realm="r", nonce="a", qop="auth", algorithm=SHA-512-256`}, "none", false},
		"Basic only":            {[]string{`Basic realm="r"`}, "none", false},
		"no nonce":              {[]string{`Digest realm="r", qop="auth"`}, "none", false},
		"a comma in the realm":  {[]string{`Digest realm="a, b", nonce="n", qop="auth"`}, "", true},
		"lower-case scheme":     {[]string{`digest realm="r", nonce="n", qop="auth", algorithm=md5`}, "MD5", true},
		"escaped quote in opaq": {[]string{`Digest realm="r", nonce="n", opaque="x\"y", qop="auth"`}, "", true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range c.headers {
				h.Add("WWW-Authenticate", v)
			}
			ch := parseChallenges(h)
			switch {
			case c.want == "none" && ch != nil:
				t.Fatalf("took %+v", ch)
			case c.want == "none":
			case ch == nil:
				t.Fatal("took none")
			case ch.algorithm != c.want || ch.qop != c.qop:
				t.Errorf("algorithm %q qop %v", ch.algorithm, ch.qop)
			}
		})
	}
	h := http.Header{"Www-Authenticate": {`Digest realm="a, b", nonce="n", opaque="x\"y", qop="auth"`}}
	if ch := parseChallenges(h); ch.realm != "a, b" || ch.opaque != `x"y` {
		t.Errorf("realm %q opaque %q", ch.realm, ch.opaque)
	}
}

// TestDigestWithoutQop: an RFC 2069 challenge is answered without nc and
// cnonce, as H(HA1:nonce:HA2).
func TestDigestWithoutQop(t *testing.T) {
	ch := &challenge{realm: "r", nonce: "n0"}
	got, err := ch.authorization("u", "p", "GET", "/x")
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	want := h(h("u:r:p") + ":n0:" + h("GET:/x"))
	if !strings.Contains(got, `response="`+want+`"`) || strings.Contains(got, "nc=") || strings.Contains(got, "cnonce") {
		t.Errorf("%s", got)
	}
}
