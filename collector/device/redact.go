package device

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
)

// Redacted is what Redact puts in place of a secret.
const Redacted = "<secret>"

// redactions are the shapes of a credential in text, tried in order; each
// replacement keeps the part before the secret ($1) so the text stays
// readable.
var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	// A header line "Authorization: Bearer x" or "Authorization: Basic x",
	// raw or quoted by %q (where the line ends at a literal \r or \n).
	{regexp.MustCompile(`(?i)(authorization:[ \t]*)(?:[^\r\n"\\]|\\[^rn])+`), "${1}" + Redacted},
	// "Bearer x" anywhere else.
	{regexp.MustCompile(`(?i)(\bbearer[ \t]+)[^\s"'&,;]+`), "${1}" + Redacted},
	// password=x and token=x, query or form style, and "password":"x".
	{regexp.MustCompile(`(?i)((?:password|passwd|token)=)[^&\s"']*`), "${1}" + Redacted},
	{regexp.MustCompile(`(?i)("(?:password|token)"[ \t]*:[ \t]*")(?:[^"\\]|\\.)*`), "${1}" + Redacted},
	// The values of a Digest challenge or answer: nonce, cnonce, response,
	// opaque, quoted or not.
	{regexp.MustCompile(`(?i)(\b(?:nonce|cnonce|response|opaque)[ \t]*=[ \t]*)(?:"(?:[^"\\]|\\.)*"|[^,;\s"]+)`), "${1}" + Redacted},
	// user:password@ in a URL.
	{regexp.MustCompile(`(//[^/\s:@]*:)[^/\s@]+@`), "${1}" + Redacted + "@"},
	// A UUID (Camdroid tokens), then any run of 16 or more hex digits (an
	// MD5 password hash in either case, a hex token).
	{regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}`), Redacted},
	{regexp.MustCompile(`[0-9A-Fa-f]{16,}`), Redacted},
	// A JSON Web Token: base64url of a JSON header ({" is eyJ), a dot, the
	// claims, a dot and the signature, which may be empty.
	{regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`), Redacted},
}

// basicCredentials is "Basic " and what may be base64 after it; it is a
// credential when it decodes to user:password (see isBasicCredential), so
// "Basic credentials" in a sentence stays.
var basicCredentials = regexp.MustCompile(`(?i)(\bbasic[ \t]+)([A-Za-z0-9+/]{4,}={0,2})`)

func isBasicCredential(b64 string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(b64); err == nil && strings.IndexByte(string(b), ':') > 0 {
			return true
		}
	}
	// Cut short (a device quoting a header up to a length): a prefix of
	// 8 or more characters that decodes to user: is enough.
	if n := len(b64) &^ 3; n >= 8 {
		if b, err := base64.StdEncoding.DecodeString(b64[:n]); err == nil && strings.IndexByte(string(b), ':') > 0 {
			return true
		}
	}
	return false
}

// Redact replaces every credential-shaped part of s with <secret>: the value
// of a password= or token= parameter (up to &, white space or a quote), of a
// JSON "password" or "token" field, of an Authorization header, a Bearer
// token, the nonce, cnonce, response and opaque of HTTP Digest, the
// password of a URL's user info, a UUID, any run of 16 or more hex digits,
// a JSON Web Token, and "Basic " followed by base64 of user:password. It
// recognises secrets by their shape, not their value, so
// it also catches a credential the caller does not know (an echoed
// request, another device's token); a long decimal number is redacted too,
// the price of catching hex tokens that happen to contain no letter.
func Redact(s string) string {
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return basicCredentials.ReplaceAllStringFunc(s, func(m string) string {
		sub := basicCredentials.FindStringSubmatch(m)
		if !isBasicCredential(sub[2]) {
			return m
		}
		return sub[1] + Redacted
	})
}

// MinSecretLen is the shortest secret RedactValues replaces: a shorter one
// would blot out ordinary words and numbers of every message.
const MinSecretLen = 4

// RedactValues replaces every occurrence of each known secret value in s
// with <secret>, longest first (so a secret that contains another goes
// whole), then redacts by shape (Redact). The values are the secrets a
// caller knows it holds in every form they travel in: the password, its
// MD5 in each case, the Basic header's base64, the tokens issued. Values
// shorter than MinSecretLen are skipped.
func RedactValues(s string, values []string) string {
	vs := make([]string, 0, len(values))
	for _, v := range values {
		if len(v) >= MinSecretLen && strings.Contains(s, v) {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vs {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return Redact(s)
}
