package device

import "regexp"

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
}

// Redact replaces every credential-shaped part of s with <secret>: the value
// of a password= or token= parameter (up to &, white space or a quote), of a
// JSON "password" or "token" field, of an Authorization header, a Bearer
// token, the nonce, cnonce, response and opaque of HTTP Digest, the password of a URL's user info, a UUID, and any run of 16 or
// more hex digits. It recognises secrets by their shape, not their value, so
// it also catches a credential the caller does not know (an echoed
// request, another device's token); a long decimal number is redacted too,
// the price of catching hex tokens that happen to contain no letter.
func Redact(s string) string {
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}
