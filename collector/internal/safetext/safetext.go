// Package safetext makes text from devices safe to show: on a terminal, in
// a page, in a log. A device's firmware, model or SIP proxy may hold an ESC
// sequence that a terminal obeys (moves the cursor, rewrites the screen,
// sets the window title), a carriage return that overwrites what came
// before it, or a bidirectional override that shows text in another order
// than it has.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape writes every character of s that is not printable as Go writes it
// in a quoted string (ESC as \x1b, a C1 CSI as \u009b, a right-to-left
// override as \u202e, a byte that is not UTF-8 as \xff); printable text
// and spaces are kept. A line break is escaped too: the result is one
// line. Escape is idempotent, since a backslash is printable.
func Escape(s string) string { return escape(s, false) }

// EscapeLines is Escape for text of many lines: line breaks and tabs are
// kept, everything else that is not printable is escaped.
func EscapeLines(s string) string { return escape(s, true) }

func escape(s string, lines bool) string {
	i := 0
	for i < len(s) && safeASCII(s[i], lines) {
		i++
	}
	if i == len(s) {
		return s // the common case, without a copy
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if safeASCII(c, lines) {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(c))
		case r >= utf8.RuneSelf && unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// safeASCII reports whether c is printable ASCII (or, in lines mode, a
// line break or a tab), which Escape keeps.
func safeASCII(c byte, lines bool) bool {
	return (c >= 0x20 && c < 0x7f) || (lines && (c == '\n' || c == '\t'))
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}
