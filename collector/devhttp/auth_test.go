package devhttp

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

const (
	digestUser = "admin"
	digestPass = "Quokka-Lintel-4471"
)

// digestDevice is a device behind Digest auth that records every request
// and the Authorization headers it got.
type digestDevice struct {
	auth     *vendorsim.DigestAuth
	password string
	requests atomic.Int64
	mu       sync.Mutex
	authz    []string
}

func (d *digestDevice) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	d.mu.Lock()
	d.authz = append(d.authz, r.Header.Get("Authorization"))
	d.mu.Unlock()
	if ok, stale := d.auth.Verify(r, digestUser, d.password); !ok {
		d.auth.Challenge(w, stale)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func digestServer(t *testing.T, d *digestDevice) *url.URL {
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

func fetch(t *testing.T, a *Authed, target string) (device.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var res device.Result
	_, err := a.Fetch(ctx, &Request{Target: target}, &res)
	return res, err
}

// TestDigestReusesTheNonce: the first request costs one challenge round
// trip; every later one goes straight through with the kept nonce and a
// growing nc, verified by the server.
func TestDigestReusesTheNonce(t *testing.T) {
	for _, algs := range [][]string{{"MD5"}, {"SHA-256"}, {"MD5", "SHA-256"}} {
		t.Run(strings.Join(algs, ","), func(t *testing.T) {
			d := &digestDevice{auth: &vendorsim.DigestAuth{Realm: "2N", Algorithms: algs}, password: digestPass}
			a := NewAuthed(Options{BaseURL: digestServer(t, d)}, Credentials{Auth: Digest, Username: digestUser, Password: digestPass})
			defer a.Close()
			const polls = 10
			for i := range polls {
				res, err := fetch(t, a, "/api/phone/status?x=1")
				if err != nil {
					t.Fatalf("poll %d: %v", i, err)
				}
				want := 1
				if i == 0 {
					want = 2 // the challenge
				}
				if res.Requests != want || res.AuthFailures != 0 {
					t.Fatalf("poll %d: %+v, want %d requests", i, res, want)
				}
			}
			if got := d.requests.Load(); got != polls+1 {
				t.Errorf("%d requests for %d polls", got, polls)
			}
			if len(algs) > 1 && !strings.Contains(d.authz[1], "algorithm=SHA-256") {
				t.Errorf("SHA-256 offered but not chosen: %s", d.authz[1])
			}
			if !strings.Contains(d.authz[polls], "nc=0000000a") {
				t.Errorf("nc did not count up: %s", d.authz[polls])
			}
		})
	}
}

// TestDigestStaleNonceRechallengesOnce: a nonce the device stops accepting
// costs one more round trip, once.
func TestDigestStaleNonceRechallengesOnce(t *testing.T) {
	d := &digestDevice{auth: &vendorsim.DigestAuth{Realm: "akuvox", NonceUses: 3}, password: digestPass}
	a := NewAuthed(Options{BaseURL: digestServer(t, d)}, Credentials{Auth: Digest, Username: digestUser, Password: digestPass})
	defer a.Close()
	var requests []int
	for range 7 {
		res, err := fetch(t, a, "/api")
		if err != nil {
			t.Fatal(err)
		}
		requests = append(requests, res.Requests)
	}
	// challenge+1, 1, 1, stale: 401 + 1, 1, 1, stale again.
	want := []int{2, 1, 1, 2, 1, 1, 2}
	for i := range want {
		if requests[i] != want[i] {
			t.Fatalf("requests per poll %v, want %v", requests, want)
		}
	}
}

// TestDigestWrongPasswordBacksOff: a rejected answer to a fresh challenge
// is an auth failure, and no request goes to the device during the
// back-off.
func TestDigestWrongPasswordBacksOff(t *testing.T) {
	d := &digestDevice{auth: &vendorsim.DigestAuth{Realm: "2N"}, password: "another"}
	now := time.Unix(1_700_000_000, 0)
	a := NewAuthed(Options{BaseURL: digestServer(t, d)}, Credentials{Auth: Digest, Username: digestUser, Password: digestPass, Now: func() time.Time { return now }})
	defer a.Close()
	res, err := fetch(t, a, "/api/phone/config")
	if device.ReasonOf(err) != device.ReasonAuth || res.AuthFailures != 1 || res.Requests != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	for range 5 {
		if res, err := fetch(t, a, "/api/phone/config"); device.ReasonOf(err) != device.ReasonAuth || res.Requests != 0 {
			t.Fatalf("during the back-off: %+v %v", res, err)
		}
	}
	if d.requests.Load() != 2 {
		t.Errorf("%d requests reached the device", d.requests.Load())
	}
	now = now.Add(61 * time.Second)
	d.password = digestPass
	if res, err := fetch(t, a, "/api/phone/config"); err != nil || res.Requests != 2 {
		t.Fatalf("after the back-off: %+v %v", res, err)
	}
}

// TestBasicIsSentAsIs: Basic credentials go on every request, byte for
// byte, and a 401 backs off.
func TestBasicIsSentAsIs(t *testing.T) {
	var got atomic.Value
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		got.Store(r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("api_user:"+digestPass)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	a := NewAuthed(Options{BaseURL: u}, Credentials{Auth: Basic, Username: "api_user", Password: digestPass})
	defer a.Close()
	if res, err := fetch(t, a, "/api/v1/sip"); err != nil || res.Requests != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	bad := NewAuthed(Options{BaseURL: u}, Credentials{Auth: Basic, Username: "api_user", Password: "wrong"})
	defer bad.Close()
	before := requests.Load()
	for range 3 {
		_, err := fetch(t, bad, "/api/v1/sip")
		if device.ReasonOf(err) != device.ReasonAuth || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("err %v", err)
		}
	}
	if n := requests.Load() - before; n != 1 {
		t.Errorf("%d requests with a wrong password, want 1 then the back-off", n)
	}
}

// TestDigestValuesNeverInErrors: whatever the device answers, the error
// quotes no nonce, cnonce, response or password.
func TestDigestValuesNeverInErrors(t *testing.T) {
	d := &digestDevice{auth: &vendorsim.DigestAuth{Realm: "2N"}, password: "other"}
	a := NewAuthed(Options{BaseURL: digestServer(t, d)}, Credentials{Auth: Digest, Username: digestUser, Password: digestPass})
	defer a.Close()
	_, err := fetch(t, a, "/api")
	if err == nil {
		t.Fatal("accepted")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.authz {
		for _, v := range []string{"nonce", "cnonce", "response"} {
			if i := strings.Index(h, v+`="`); i >= 0 {
				val, _, _ := strings.Cut(h[i+len(v)+2:], `"`)
				if strings.Contains(err.Error(), val) {
					t.Errorf("error %q quotes the %s", err, v)
				}
			}
		}
	}
	if strings.Contains(err.Error(), digestPass) {
		t.Errorf("error %q quotes the password", err)
	}
}

// TestAuthErrorsRedactThePasswordByValue: a device that quotes the
// password it was sent, in any form, in its refusal gives an error without
// it.
func TestAuthErrorsRedactThePasswordByValue(t *testing.T) {
	const pass = "Plain-Words-Here"
	b64 := base64.StdEncoding.EncodeToString([]byte("admin:" + pass))
	for name, quoted := range map[string]string{"plain": pass, "base64": b64} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"wrong ` + quoted + `"}`))
			}))
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			a := NewAuthed(Options{BaseURL: u}, Credentials{Auth: Basic, Username: "admin", Password: pass})
			defer a.Close()
			_, err := fetch(t, a, "/x")
			if device.ReasonOf(err) != device.ReasonAuth || strings.Contains(err.Error(), quoted) || !strings.Contains(err.Error(), "wrong <secret>") {
				t.Errorf("err %v", err)
			}
		})
	}
}
