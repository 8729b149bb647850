package simulator

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMaxInFlight(t *testing.T) {
	d := newDevice()
	d.Latency = 300 * time.Millisecond
	s := start(t, d)
	c, _ := newClient(t)
	const n = 5
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/info", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	eventually(t, "5 requests in flight", func() bool { return d.InFlight() == n })
	wg.Wait()
	if got := d.MaxInFlight(); got != n {
		t.Errorf("MaxInFlight = %d, want %d", got, n)
	}
	eventually(t, "no request in flight", func() bool { return d.InFlight() == 0 })
	if d.Requests.Load() != n || d.InfoRequests() != n {
		t.Errorf("requests %d, info %d", d.Requests.Load(), d.InfoRequests())
	}

	d.ResetCounters()
	if d.MaxInFlight() != 0 || d.Requests.Load() != 0 || d.InfoRequests() != 0 || d.Connections.Load() != 0 {
		t.Errorf("after reset: max %d, requests %d, info %d, connections %d",
			d.MaxInFlight(), d.Requests.Load(), d.InfoRequests(), d.Connections.Load())
	}
	d.Latency = 0
	do(t, c, s.URL+"/api/info")
	if d.MaxInFlight() != 1 {
		t.Errorf("MaxInFlight after one request = %d", d.MaxInFlight())
	}
}

func TestOpenConnections(t *testing.T) {
	d := newDevice()
	s := start(t, d)
	c1, tr1 := newClient(t)
	c2, tr2 := newClient(t)
	do(t, c1, s.URL+"/api/info")
	do(t, c1, s.URL+"/api/info") // the kept-alive connection again
	do(t, c2, s.URL+"/api/info")
	eventually(t, "two open connections", func() bool { return d.OpenConnections() == 2 })
	if d.Connections.Load() != 2 {
		t.Errorf("Connections = %d", d.Connections.Load())
	}
	tr1.CloseIdleConnections()
	eventually(t, "one open connection", func() bool { return d.OpenConnections() == 1 })
	tr2.CloseIdleConnections()
	eventually(t, "no open connection", func() bool { return d.OpenConnections() == 0 })

	// The server closing counts too.
	do(t, c1, s.URL+"/api/info")
	eventually(t, "one open connection", func() bool { return d.OpenConnections() == 1 })
	_ = s.Close()
	eventually(t, "no open connection after Close", func() bool { return d.OpenConnections() == 0 })
}

func TestAuthBasic(t *testing.T) {
	d := newDevice()
	d.Auth = AuthBasic
	s := start(t, d)
	c, _ := newClient(t)
	settings := s.URL + "/api/v1/device/sip/settings"

	code, body := do(t, c, loginURL(s, "v1", testUser, md5Hex(testPassword)))
	if code != http.StatusNotFound {
		t.Errorf("login: %d %s, want 404", code, body)
	}
	if d.Logins.Load() != 1 || len(d.IssuedTokens()) != 0 {
		t.Errorf("logins %d, tokens %v", d.Logins.Load(), d.IssuedTokens())
	}
	for _, h := range [][]string{
		nil,
		{"Authorization", basic(testUser, "wrong")},
		{"Authorization", basic(testUser, md5Hex(testPassword))},
		{"Authorization", "Bearer " + md5Hex(testPassword)},
	} {
		code, body := do(t, c, settings, h...)
		if code != http.StatusUnauthorized || body != `{"error":"Log In"}` {
			t.Errorf("%v: %d %s, want 401 Log In", h, code, body)
		}
	}
	if d.RejectedBasicAuth() != 2 {
		t.Errorf("RejectedBasicAuth = %d, want 2", d.RejectedBasicAuth())
	}
	code, body = do(t, c, settings, "Authorization", basic(testUser, testPassword))
	if code != http.StatusOK || !strings.Contains(body, `"user":"100"`) {
		t.Errorf("settings with Basic: %d %s", code, body)
	}
	code, _ = do(t, c, s.URL+"/api/v1/sip/status", "Authorization", basic(testUser, testPassword))
	if code != http.StatusOK {
		t.Errorf("status with Basic: %d", code)
	}
	if code, _ := do(t, c, s.URL+"/api/info"); code != http.StatusOK {
		t.Errorf("info without auth: %d", code)
	}
}

func TestAuthBoth(t *testing.T) {
	d := newDevice()
	d.Auth = AuthBoth
	s := start(t, d)
	c, _ := newClient(t)
	settings := s.URL + "/api/v1/device/sip/settings"
	if code, _ := do(t, c, settings, "Authorization", basic(testUser, testPassword)); code != http.StatusOK {
		t.Errorf("Basic: %d", code)
	}
	tok := login(t, c, s, "v1")
	if code, _ := do(t, c, settings, "Authorization", "Bearer "+tok); code != http.StatusOK {
		t.Errorf("Bearer: %d", code)
	}
	if code, _ := do(t, c, settings, "Authorization", basic(testUser, "nope")); code != http.StatusUnauthorized {
		t.Errorf("wrong Basic: %d", code)
	}

	// Back to tokens only, as after a firmware change.
	d.SetAuth(AuthToken)
	if code, _ := do(t, c, settings, "Authorization", basic(testUser, testPassword)); code != http.StatusUnauthorized {
		t.Errorf("Basic on a token-only device: %d", code)
	}
	if code, _ := do(t, c, settings, "Authorization", "Bearer "+tok); code != http.StatusOK {
		t.Errorf("Bearer on a token-only device: %d", code)
	}
}

func TestMD5Case(t *testing.T) {
	upper, lower := strings.ToUpper(md5Hex(testPassword)), md5Hex(testPassword)
	for _, tc := range []struct {
		mode         MD5Case
		upper, lower int
	}{
		{MD5Any, http.StatusOK, http.StatusOK},
		{MD5Upper, http.StatusOK, http.StatusBadRequest},
		{MD5Lower, http.StatusBadRequest, http.StatusOK},
	} {
		d := newDevice()
		d.MD5Case = tc.mode
		s := start(t, d)
		c, _ := newClient(t)
		for _, h := range []struct {
			hash string
			want int
		}{{upper, tc.upper}, {lower, tc.lower}} {
			code, body := do(t, c, loginURL(s, "v1", testUser, h.hash))
			if code != h.want {
				t.Errorf("mode %d, hash %s: %d %s, want %d", tc.mode, h.hash, code, body, h.want)
			}
			if code == http.StatusBadRequest && body != `{"error":"Wrong login or password"}` {
				t.Errorf("mode %d: rejected with %s", tc.mode, body)
			}
		}
		wantRejected := int64(0)
		if tc.mode != MD5Any {
			wantRejected = 1
		}
		if d.RejectedLogins.Load() != wantRejected {
			t.Errorf("mode %d: RejectedLogins = %d", tc.mode, d.RejectedLogins.Load())
		}
	}
}

func TestUnauthorizedBodies(t *testing.T) {
	for _, tc := range []struct {
		shape UnauthorizedBody
		auth  AuthMode
		want  string
	}{
		{UnauthorizedLogIn, AuthToken, `{"error":"Log In"}`},
		{UnauthorizedCamdroid, AuthToken, `{"error":{"code":"invalid_authentication","message":"Invalid authentication"}}`},
		{UnauthorizedCamdroid, AuthBasic, `{"error":{"code":"invalid_authentication","message":"Invalid authentication"}}`},
	} {
		d := newDevice()
		d.UnauthorizedBody, d.Auth = tc.shape, tc.auth
		s := start(t, d)
		c, _ := newClient(t)
		code, body := do(t, c, s.URL+"/api/v1/device/sip/settings", "Authorization", "Bearer nope")
		if code != http.StatusUnauthorized || body != tc.want {
			t.Errorf("shape %d: %d %s, want 401 %s", tc.shape, code, body, tc.want)
		}
	}
}

func TestTokenStyles(t *testing.T) {
	for _, tc := range []struct {
		style TokenStyle
		re    *regexp.Regexp
	}{
		{TokenHex, regexp.MustCompile(`^[0-9a-f]{32}$`)},
		{TokenUUID, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
	} {
		d := newDevice()
		d.TokenStyle = tc.style
		s := start(t, d)
		c, _ := newClient(t)
		for i := 0; i < 3; i++ {
			tok := login(t, c, s, "v1")
			if !tc.re.MatchString(tok) {
				t.Errorf("style %d: token %q", tc.style, tok)
			}
			if code, _ := do(t, c, s.URL+"/api/v1/device/sip/settings", "Authorization", "Bearer "+tok); code != http.StatusOK {
				t.Errorf("style %d: settings with the token: %d", tc.style, code)
			}
		}
	}
}

func TestOneUseTokens(t *testing.T) {
	d := newDevice()
	d.OneUseTokens = true
	s := start(t, d)
	c, _ := newClient(t)
	settings, status := s.URL+"/api/v1/device/sip/settings", s.URL+"/api/v1/sip/status"
	tok := login(t, c, s, "v1")
	if code, _ := do(t, c, settings, "Authorization", "Bearer "+tok); code != http.StatusOK {
		t.Fatalf("first use: %d", code)
	}
	if code, _ := do(t, c, status, "Authorization", "Bearer "+tok); code != http.StatusUnauthorized {
		t.Errorf("second use: %d, want 401", code)
	}
	if len(d.Tokens()) != 0 {
		t.Errorf("tokens left: %v", d.Tokens())
	}
	tok2 := login(t, c, s, "v1")
	if tok2 == tok {
		t.Error("the same token twice")
	}
	if code, _ := do(t, c, status, "Authorization", "Bearer "+tok2); code != http.StatusOK {
		t.Errorf("new token: %d", code)
	}
	if d.Logins.Load() != 2 {
		t.Errorf("Logins = %d", d.Logins.Load())
	}
}

func TestSetAPIVersion(t *testing.T) {
	d := newDevice()
	s := start(t, d)
	c, _ := newClient(t)
	tok := login(t, c, s, "v1")
	bearer := []string{"Authorization", "Bearer " + tok}
	if code, _ := do(t, c, s.URL+"/api/v1/device/sip/settings", bearer...); code != http.StatusOK {
		t.Fatalf("v1 settings: %d", code)
	}
	if code, _ := do(t, c, s.URL+"/api/v0/device/sip/settings", bearer...); code != http.StatusNotFound {
		t.Errorf("v0 settings on a v1 device: %d", code)
	}

	d.SetAPIVersion("v0")
	if d.CurrentAPIVersion() != "v0" {
		t.Errorf("CurrentAPIVersion = %q", d.CurrentAPIVersion())
	}
	for _, p := range []string{"/api/v1/device/sip/settings", "/api/v1/sip/status", "/api/v1/login?username=admin&password=x"} {
		if code, body := do(t, c, s.URL+p, bearer...); code != http.StatusNotFound {
			t.Errorf("%s after the upgrade: %d %s, want 404", p, code, body)
		}
	}
	if code, _ := do(t, c, s.URL+"/api/v0/device/sip/settings", bearer...); code != http.StatusOK {
		t.Errorf("v0 settings with the old token: %d", code)
	}
	tok = login(t, c, s, "v0")
	if code, _ := do(t, c, s.URL+"/api/v0/sip/status", "Authorization", "Bearer "+tok); code != http.StatusOK {
		t.Errorf("v0 status: %d", code)
	}
	if code, _ := do(t, c, s.URL+"/api/info"); code != http.StatusOK {
		t.Errorf("info: %d", code)
	}
	if code, _ := do(t, c, s.URL+"/api/v0/info"); code != http.StatusNotFound {
		t.Errorf("info under a prefix: %d", code)
	}
}

func TestBodies(t *testing.T) {
	d := newDevice()
	s := start(t, d)
	c, _ := newClient(t)
	auth := []string{"Authorization", "Bearer " + login(t, c, s, "v1")}
	get := func(path string) map[string]any {
		t.Helper()
		code, body := do(t, c, s.URL+path, auth...)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	ms := time.Date(2024, 11, 26, 6, 0, 0, 0, time.UTC).UnixMilli()
	d.SetStatus(StatusMillis("ERROR", ms))
	st := get("/api/v1/sip/status")
	if n, err := st["register_last_attempt"].(json.Number).Int64(); err != nil || n != ms || n < 1e11 {
		t.Errorf("register_last_attempt %v, want %d", st["register_last_attempt"], ms)
	}
	d.SetStatus(StatusMillis("OFFLINE", 0))
	if st := get("/api/v1/sip/status"); st["register_last_attempt"] != nil {
		t.Errorf("never attempted: %v", st["register_last_attempt"])
	}

	d.SetSettings(LeakyPanelSettings("100", "udp", "clear-sip-pass"))
	se := get("/api/v1/device/sip/settings")
	if se["password"] != "clear-sip-pass" || se["outbound"] != "sip:sbc.example.com:5060" || se["enable"] != nil {
		t.Errorf("leaky panel settings: %v", se)
	}
	d.SetSettings(FieldPanelSettings("100", "tls"))
	se = get("/api/v1/device/sip/settings")
	if se["realm"] != "example.com:5060" || se["proxy"] != "sip:pbx.example.com:5060" ||
		se["outbound"] != "sip:sbc.example.com:5060" || se["password"] != "WebPass" ||
		se["registration_interval"] != json.Number("900") || se["stun"].(map[string]any)["ip"] != "127.0.0.1" {
		t.Errorf("field panel settings: %v", se)
	}

	for _, fw := range []struct{ model, firmware string }{
		{"AA-07BD", "3.8.0"}, {"AV-08FB", "3.9.1"}, {"AA-12FB", "3.9.2"}, {"AV-04SD", "3.12.0"},
	} {
		d.SetInfo(Info("Door", fw.model, "panel", fw.firmware, "1.3.5"))
		in := get("/api/info")
		if in["device_model"] != fw.model || in["firmware_version"] != fw.firmware || in["api_version"] != "1.3.5" {
			t.Errorf("info: %v", in)
		}
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}
