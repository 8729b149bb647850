package pbx

import (
	"strings"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/internal/safetext"
)

// safeExcerpt is s made safe to show (safetext.Escape) and cut to at most max
// bytes: a cut text ends in "...", within max, and is cut between
// characters, so no escape sequence or UTF-8 character is cut in two.
func safeExcerpt(s string, max int) string {
	if len(s) <= max { // escaping only lengthens
		if e := safetext.Escape(s); len(e) <= max {
			return e
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		piece := safetext.Escape(s[i : i+size])
		if b.Len()+len(piece) > max-3 {
			break
		}
		b.WriteString(piece)
		i += size
	}
	b.WriteString("...")
	return b.String()
}
