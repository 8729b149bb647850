package simulator

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testUser     = "admin"
	testPassword = "s3cret-Pass"
)

// newDevice is a panel with settings, status and info, on API v1.
func newDevice() *Device {
	d := &Device{Username: testUser, Password: testPassword, APIVersion: "v1"}
	d.SetSettings(PanelSettings("100", "udp"))
	d.SetStatus(Status("OK", 1732600000))
	d.SetInfo(Info("Entrance", "AV-08FB", "panel", "3.9.1", "2.0.0"))
	return d
}

// start serves d on loopback until the test ends.
func start(t *testing.T, d *Device) *Server {
	t.Helper()
	s, err := Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newClient is a client with its own connection pool, closed when the test
// ends.
func newClient(t *testing.T) (*http.Client, *http.Transport) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

// do sends a GET with the header h (name: value) and returns the status
// and the body.
func do(t *testing.T, c *http.Client, url string, h ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func md5Hex(p string) string {
	sum := md5.Sum([]byte(p))
	return hex.EncodeToString(sum[:])
}

func loginURL(s *Server, version, user, hash string) string {
	return s.URL + "/api/" + version + "/login?username=" + user + "&password=" + hash
}

// login logs in with the upper-case MD5 and returns the token.
func login(t *testing.T, c *http.Client, s *Server, version string) string {
	t.Helper()
	code, body := do(t, c, loginURL(s, version, testUser, strings.ToUpper(md5Hex(testPassword))))
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	var v struct{ Token string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Token == "" {
		t.Fatalf("login body %s: %v", body, err)
	}
	return v.Token
}

// eventually polls cond every 10 ms for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
