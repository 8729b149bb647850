package device

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"Digest values outside a header line": {
			in:   `WWW-Authenticate: Digest realm="2N", nonce="MTcwMDAwMDAwMDpab3Jr", qop="auth", opaque=abc; answer response="x1", cnonce="0a1b", nc=00000001`,
			want: `WWW-Authenticate: Digest realm="2N", nonce=<secret>, qop="auth", opaque=<secret>; answer response=<secret>, cnonce=<secret>, nc=00000001`,
		},
		"login query, upper-case MD5": {
			in:   "GET /api/v1/login?username=admin&password=E10ADC3949BA59ABBE56E057F20F883E HTTP/1.1",
			want: "GET /api/v1/login?username=admin&password=<secret> HTTP/1.1",
		},
		"password first, short value": {
			in:   "password=abc&username=admin",
			want: "password=<secret>&username=admin",
		},
		"password ends at a quote": {
			in:   `malformed HTTP version "password=x1'y"`,
			want: `malformed HTTP version "password=<secret>'y"`,
		},
		"form style, upper-case key": {
			in:   "PASSWORD=hunter2 next",
			want: "PASSWORD=<secret> next",
		},
		"empty password stays empty": {
			in:   "password=&x=1",
			want: "password=<secret>&x=1",
		},
		"token parameter": {
			in:   "?token=eyJhbGciOiJIUzI1NiJ9.e30.sig&x=1",
			want: "?token=<secret>&x=1",
		},
		"JSON password and token": {
			in:   `{"password":"s1p-101-pass","token": "t-1\"x","user":"101"}`,
			want: `{"password":"<secret>","token": "<secret>","user":"101"}`,
		},
		"lower-case MD5 alone": {
			in:   "hash e10adc3949ba59abbe56e057f20f883e seen",
			want: "hash <secret> seen",
		},
		"16 hex digits inside a word": {
			in:   "id=x93144b0c1d2e3f4a5b6c7",
			want: "id=x<secret>",
		},
		"15 hex digits stay": {
			in:   "abcdef012345678",
			want: "abcdef012345678",
		},
		"UUID token": {
			in:   "token 3f2c8a4e-1b2d-4c5e-8f90-a1b2c3d4e5f6 refused",
			want: "token <secret> refused",
		},
		"Bearer token": {
			in:   "sent Bearer abc.DEF-123, then",
			want: "sent Bearer <secret>, then",
		},
		"Authorization header, raw": {
			in:   "Authorization: Basic YWRtaW46MTIzNDU2\r\nHost: x",
			want: "Authorization: <secret>\r\nHost: x",
		},
		"Authorization header quoted by %q": {
			in:   `"Authorization: Bearer t0k3n\r\nHost: 127.0.0.1"`,
			want: `"Authorization: <secret>\r\nHost: 127.0.0.1"`,
		},
		"URL user info": {
			in:   "http://admin:123456@10.0.0.5:8080/api",
			want: "http://admin:<secret>@10.0.0.5:8080/api",
		},
		"address with port stays": {
			in:   "dial tcp 127.0.0.1:8080: connect: connection refused",
			want: "dial tcp 127.0.0.1:8080: connect: connection refused",
		},
		"plain message stays": {
			in:   "GET /api/v1/device/sip/settings: HTTP 401: Log In",
			want: "GET /api/v1/device/sip/settings: HTTP 401: Log In",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Redact(c.in); got != c.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestRedactNeverLeavesTheMD5(t *testing.T) {
	const md5 = "E10ADC3949BA59ABBE56E057F20F883E"
	for _, s := range []string{
		md5, strings.ToLower(md5), "x" + md5 + "y", "&password=" + strings.ToLower(md5) + "\r\n",
		`"GET /api/v1/login?password=` + md5 + ` HTTP/1.1\r\n"`,
	} {
		got := Redact(s)
		if strings.Contains(strings.ToUpper(got), md5) {
			t.Errorf("Redact(%q) = %q", s, got)
		}
	}
}

func TestRedactShapes(t *testing.T) {
	for in, want := range map[string]string{
		// A device that echoes the request's header in its 401 body.
		`{"error":"Basic YWRtaW46T3R0ZXItUHlsb24tNjYyMA=="}`:         `{"error":"Basic <secret>"}`,
		"got basic YWRtaW46T3R0ZXI, refused":                         "got basic <secret>, refused",
		"echo: Basic YWRtaW46T3R0":                                   "echo: Basic <secret>", // cut short by the device
		"device rejected the Basic credentials: HTTP 401":            "device rejected the Basic credentials: HTTP 401",
		"may want HTTP Basic auth":                                   "may want HTTP Basic auth",
		"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x9 expired": "token <secret> expired",
		"unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. token":        "unsigned <secret> token",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestRedactValues(t *testing.T) {
	const pw = "Otter-Pylon-6620"
	values := []string{pw, "E10ADC3949BA59ABBE56E057F20F883E", "e10adc3949ba59abbe56e057f20f883e", "abc", "Otter"}
	for in, want := range map[string]string{
		`{"error":"wrong password Otter-Pylon-6620"}`: `{"error":"wrong password <secret>"}`, // the longer value goes whole
		"password Otter was":                          "password <secret> was",
		"abc stays, too short to redact":              "abc stays, too short to redact",
		"md5 E10ADC3949BA59ABBE56E057F20F883E":        "md5 <secret>",
		"HTTP 401: Log In":                            "HTTP 401: Log In",
	} {
		if got := RedactValues(in, values); got != want {
			t.Errorf("RedactValues(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
