package safetext

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"AA-07FB 3.9.2":                "AA-07FB 3.9.2",
		"sip:pbx.example.com:5060":     "sip:pbx.example.com:5060",
		"Панель «вход»":                "Панель «вход»",
		"\x1b[2J\x1b[Hok":              `\x1b[2J\x1b[Hok`,
		"\x1b]0;pwned\x07":             `\x1b]0;pwned\a`,
		"a\rb":                         `a\rb`,
		"a\nb\tc":                      `a\nb\tc`,
		"del\x7f":                      `del\x7f`,
		"c1 \u009b31m":                 `c1 \u009b31m`,
		"rlo \u202etxt.exe":            `rlo \u202etxt.exe`,
		"zero\u200bwidth":              `zero\u200bwidth`,
		"bad \xff\xfe utf8":            `bad \xff\xfe utf8`,
		`already \x1b escaped`:         `already \x1b escaped`,
		"nul\x00":                      `nul\x00`,
		"nbsp\u00a0":                   `nbsp\u00a0`,
		"astral \U0001F600 \U000E0001": `astral ` + "\U0001F600" + ` \U000e0001`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if got := Escape(Escape(in)); got != Escape(in) {
			t.Errorf("Escape is not idempotent on %q: %q", in, got)
		}
	}
}

func TestEscapeLines(t *testing.T) {
	in := "== lobby (http://h:80): up\n\tfirmware \x1b[31mred\r\n"
	want := "== lobby (http://h:80): up\n\tfirmware \\x1b[31mred\\r\n"
	if got := EscapeLines(in); got != want {
		t.Errorf("EscapeLines(%q) = %q, want %q", in, got, want)
	}
}

// TestEscapedTextIsPrintable: whatever the bytes, the result holds only
// printable characters and spaces (and, for lines, line breaks and tabs).
func TestEscapedTextIsPrintable(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for r := rune(0x80); r < 0x3000; r++ {
		all = utf8.AppendRune(all, r)
	}
	for _, lines := range []bool{false, true} {
		out := escape(string(all), lines)
		if !utf8.ValidString(out) {
			t.Fatalf("lines=%v: not valid UTF-8", lines)
		}
		for _, r := range out {
			ok := unicode.IsPrint(r) || r == ' ' || (lines && (r == '\n' || r == '\t'))
			if !ok {
				t.Errorf("lines=%v: %U left in the output", lines, r)
			}
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2J")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for _, r := range out {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("%U left in %q", r, out)
			}
		}
		if Escape(out) != out {
			t.Fatalf("not idempotent: %q", s)
		}
	})
}
