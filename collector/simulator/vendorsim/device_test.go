package vendorsim

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, method, url, authz, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func serveT(t *testing.T, d *Device) *Server {
	t.Helper()
	s, err := Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBasicIsCheckedByteForByte: only the exact header passes.
func TestBasicIsCheckedByteForByte(t *testing.T) {
	d := New("rubetek", "api_user", "Pass:with=odd&chars")
	s := serveT(t, d)
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("api_user:Pass:with=odd&chars"))
	if code, _, body := do(t, "GET", s.URL+"/api/v1/sip", good, ""); code != 200 || !strings.Contains(body, "Acc1Login=") {
		t.Fatalf("%d %q", code, body)
	}
	for name, h := range map[string]string{
		"lower-case scheme":  "basic " + strings.TrimPrefix(good, "Basic "),
		"two spaces":         "Basic  " + strings.TrimPrefix(good, "Basic "),
		"user in upper case": "Basic " + base64.StdEncoding.EncodeToString([]byte("API_USER:Pass:with=odd&chars")),
		"unpadded base64":    "Basic " + base64.RawStdEncoding.EncodeToString([]byte("api_user:Pass:with=odd&chars")),
		"password cut short": "Basic " + base64.StdEncoding.EncodeToString([]byte("api_user:Pass:with=odd")),
		"no credentials":     "",
		"Digest for a Basic": `Digest username="api_user"`,
	} {
		code, hdr, _ := do(t, "GET", s.URL+"/api/v1/sip", h, "")
		if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: %d %q", name, code, hdr.Get("WWW-Authenticate"))
		}
	}
}

// digestAnswer computes an RFC 7616 MD5 answer by hand.
func digestAnswer(user, realm, password, method, uri, nonce, nc, cnonce string) string {
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	resp := h(h(user+":"+realm+":"+password) + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s", response="%s"`,
		user, realm, nonce, uri, nc, cnonce, resp)
}

// TestDigestIsVerified: the hash is checked, a replayed nc, a wrong uri,
// an unknown nonce or a wrong password are refused, and a nonce past its
// uses is answered stale=true.
func TestDigestIsVerified(t *testing.T) {
	d := New("2n", "admin", "Two-N-Pass-7")
	d.Digest.NonceUses = 3
	s := serveT(t, d)
	code, hdr, _ := do(t, "GET", s.URL+"/api/phone/status", "", "")
	ch := hdr.Get("WWW-Authenticate")
	if code != 401 || !strings.Contains(ch, `qop="auth"`) {
		t.Fatalf("%d %q", code, ch)
	}
	_, rest, _ := strings.Cut(ch, `nonce="`)
	nonce, _, _ := strings.Cut(rest, `"`)
	uri := "/api/phone/status"
	for i, c := range []struct {
		name, authz string
		want        int
	}{
		{"good", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000001", "abc"), 200},
		{"replayed nc", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000001", "abc"), 401},
		{"next nc", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000002", "abd"), 200},
		{"wrong password", digestAnswer("admin", "2n", "Two-N-Pass-8", "GET", uri, nonce, "00000003", "abe"), 401},
		{"another uri", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", "/api/phone/config", nonce, "00000004", "abf"), 401},
		{"unknown nonce", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, "00ff", "00000005", "ab0"), 401},
		{"wrong realm", strings.Replace(digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000006", "ab1"), `realm="2n"`, `realm="x"`, 1), 401},
		{"third use", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000007", "ab2"), 200},
		{"past its uses", digestAnswer("admin", "2n", "Two-N-Pass-7", "GET", uri, nonce, "00000008", "ab3"), 401},
	} {
		code, hdr, _ := do(t, "GET", s.URL+uri, c.authz, "")
		if code != c.want {
			t.Errorf("%d %s: %d, want %d", i, c.name, code, c.want)
		}
		if c.name == "past its uses" && !strings.Contains(hdr.Get("WWW-Authenticate"), "stale=true") {
			t.Errorf("no stale=true: %q", hdr.Get("WWW-Authenticate"))
		}
	}
}

// TestEveryVendorAnswersItsPaths: each simulated vendor answers its
// documented requests, 404 for others.
func TestEveryVendorAnswersItsPaths(t *testing.T) {
	cases := map[string][]struct{ method, path, body, want string }{
		"beward":  {{"GET", "/cgi-bin/sip_cgi?action=get", "", "AccPassword1=Sip-Secret-0042"}, {"GET", "/cgi-bin/sip_cgi?action=regstatus", "", "AccountReg1=1"}},
		"qtech":   {{"POST", "/api", `{"target":"sip","action":"get","data":{"AccountId":0}}`, `"AccountStatus":"2"`}, {"POST", "/api", `{"target":"config","action":"get","data":{"config_key":"Config.Account1.SIP.Port"}}`, `"Config.Account1.SIP.Port":"5060"`}},
		"sokol":   {{"GET", "/v1/sip/settings", "", `"password":"Sip-Secret-0042"`}, {"GET", "/system/info", "", `"registerStatus":"true"`}},
		"rubetek": {{"GET", "/api/v1/reg_status", "", `"acc1_register_status":"registered"`}},
		"ufanet":  {{"GET", "/api/v1/configuration", "", `"domain":"sip.example.net:5060"`}},
		"hikvision": {{"GET", "/ISAPI/System/Network/SIP", "", `<proxyPort>5060</proxyPort>`}, {"GET", "/ISAPI/System/Network/SIP/1", "", `<registerStatus>true</registerStatus>`},
			{"GET", "/ISAPI/System/deviceInfo", "", `<DeviceInfo version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">`}},
	}
	for vendor, reqs := range cases {
		d := New(vendor, "admin", "p")
		d.Auth = "basic" // Hikvision's default is Digest
		s := serveT(t, d)
		authz := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:p"))
		for _, r := range reqs {
			if code, _, body := do(t, r.method, s.URL+r.path, authz, r.body); code != 200 || !strings.Contains(body, r.want) {
				t.Errorf("%s %s %s: %d %q", vendor, r.method, r.path, code, body)
			}
		}
		if vendor == "hikvision" {
			if _, hdr, _ := do(t, "GET", s.URL+"/ISAPI/System/deviceInfo", authz, ""); hdr.Get("Content-Type") != "application/xml" {
				t.Errorf("hikvision: Content-Type %q", hdr.Get("Content-Type"))
			}
		}
		if code, _, _ := do(t, "GET", s.URL+"/nope", authz, ""); code != 404 {
			t.Errorf("%s: /nope answered %d", vendor, code)
		}
		if vendor == "ufanet" {
			if code, _, _ := do(t, "GET", s.URL+"/api/v1/status", authz, ""); code != 404 {
				t.Errorf("ufanet: status on the web port answered %d", code)
			}
			status := fmt.Sprintf("http://127.0.0.1:%d/api/v1/status", s.StatusPort)
			if code, _, body := do(t, "GET", status, authz, ""); code != 200 || !strings.Contains(body, `"sipreg":true`) {
				t.Errorf("ufanet status port: %d %q", code, body)
			}
		}
	}
}
