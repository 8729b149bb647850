package devhttp

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedirectAllowed(t *testing.T) {
	cases := []struct {
		from, to string
		want     bool
	}{
		{"http://d.example/a", "http://d.example/b", true},
		{"http://d.example:8080/a", "http://D.EXAMPLE:8080/b", true},
		{"http://d.example/a", "http://d.example:80/b", true},
		{"http://d.example:8080/a", "http://d.example:8081/b", false},
		{"http://d.example/a", "http://other.example/a", false},
		{"http://d.example/a", "https://d.example/a", true},           // 80 to 443
		{"http://d.example:80/a", "https://d.example:443/a", true},    // the same, spelt out
		{"http://d.example:8080/a", "https://d.example:8080/a", true}, // same port
		{"http://d.example:8080/a", "https://d.example/a", false},     // 8080 to 443: maybe another device
		{"http://d.example/a", "https://d.example:8443/a", false},
		{"https://d.example/a", "http://d.example/a", false},
		{"https://d.example:8443/a", "http://d.example:8443/a", false},
		{"https://d.example/a", "https://d.example:443/b", true},
		{"http://d.example/a", "http://user:pw@d.example/a", false},
		{"http://d.example/a", "ftp://d.example/a", false},
	}
	for _, c := range cases {
		from, _ := url.Parse(c.from)
		to, _ := url.Parse(c.to)
		if got := redirectAllowed(from, to); got != c.want {
			t.Errorf("%s -> %s: %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestDeviceReason(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"panel":               {`{"error":"Log In"}`, "Log In"},
		"Camdroid":            {`{"error":{"code":"invalid_authentication","message":"no"}}`, "invalid_authentication"},
		"login":               {`{"error":"Wrong login or password"}`, "Wrong login or password"},
		"no error field":      {`{"token":"x"}`, ""},
		"not JSON":            {`<html>Log In</html>`, ""},
		"error of no shape":   {`{"error":42}`, ""},
		"object without code": {`{"error":{"message":"Log In"}}`, ""},
		"control characters":  {`{"error":"a\u0000b\nc\u00e9"}`, "a?b?c??"},
		"long":                {`{"error":"` + strings.Repeat("x", 300) + `"}`, strings.Repeat("x", 61) + "..."},
		"hex token":           {`{"error":"token 93144b0c1d2e3f4a5b6c7d8e9f001122 expired"}`, "token <secret> expired"},
		"Bearer":              {`{"error":"bad Authorization: Bearer abc"}`, "bad Authorization: <secret>"},
		"a secret cut short":  {`{"error":"` + strings.Repeat("y", 60) + "E10ADC3949BA59ABBE56E057F20F883E" + `"}`, strings.Repeat("y", 60) + "<..."},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := DeviceReason([]byte(c.body), nil); got != c.want {
				t.Errorf("DeviceReason(%s) = %q, want %q", c.body, got, c.want)
			}
		})
	}
}
