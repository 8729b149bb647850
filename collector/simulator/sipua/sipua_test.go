package sipua_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
	"github.com/basip/basip_exporter/collector/simulator/sipua"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start starts a UA that the test's end stops.
func start(t *testing.T, o sipua.Options) *sipua.UA {
	t.Helper()
	ua, err := sipua.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := ua.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ua.Stop)
	return ua
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log destination the UA's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRegistersAndUnregisters(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{})
	// The first REGISTER succeeds: a retry would come after 10 s.
	ua := start(t, sipua.Options{User: "100", Proxy: k.SIPAddr, RetryAfter: 10 * time.Second})
	eventually(t, 5*time.Second, "registered by the first REGISTER", ua.Registered)
	if ua.LastCode() != 200 {
		t.Errorf("LastCode = %d, want 200", ua.LastCode())
	}
	if since := time.Since(ua.LastAttempt()); since < 0 || since > 5*time.Second {
		t.Errorf("LastAttempt %v ago", since)
	}
	if !strings.HasPrefix(ua.Contact(), "sip:100@127.0.0.1:") {
		t.Errorf("Contact = %q", ua.Contact())
	}
	cs := k.ContactsOf(t, "100")
	if len(cs) != 1 {
		t.Fatalf("contacts of 100: %+v\n%s", cs, k.Dump(t))
	}
	c := cs[0]
	if c.Address != ua.Contact() || c.Received != "" || c.UserAgent != "basip-simulator" || c.Socket != "udp:"+k.SIPAddr {
		t.Errorf("contact %+v, want Address %s, no Received", c, ua.Contact())
	}

	ua.Stop()
	if ua.Registered() || ua.LastCode() != 200 {
		t.Errorf("after Stop: registered %v, last code %d", ua.Registered(), ua.LastCode())
	}
	eventually(t, 3*time.Second, "the contact removed by the unregister", func() bool {
		return len(k.ContactsOf(t, "100")) == 0
	})
}

func TestTwoAddressesTwoContacts(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{})
	a := start(t, sipua.Options{User: "200", Proxy: k.SIPAddr})
	b := start(t, sipua.Options{User: "200", Proxy: "sip:" + k.SIPAddr, LocalIP: "127.0.0.2"})
	eventually(t, 5*time.Second, "both registered", func() bool { return a.Registered() && b.Registered() })
	cs := k.ContactsOf(t, "200")
	if len(cs) != 2 {
		t.Fatalf("contacts of 200: %+v", cs)
	}
	hosts := map[string]bool{}
	for _, c := range cs {
		u := strings.TrimPrefix(c.Address, "sip:200@")
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			t.Fatalf("contact address %q: %v", c.Address, err)
		}
		hosts[ap.Addr().String()] = true
	}
	if !hosts["127.0.0.1"] || !hosts["127.0.0.2"] {
		t.Errorf("contact hosts %v, want 127.0.0.1 and 127.0.0.2", hosts)
	}
	if !strings.HasPrefix(b.Contact(), "sip:200@127.0.0.2:") {
		t.Errorf("second UA's Contact = %q", b.Contact())
	}
}

func TestRegistrarStoppedAndStartedAgain(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{})
	ua := start(t, sipua.Options{
		User: "300", Proxy: k.SIPAddr,
		Expires: 2 * time.Second, Timeout: 500 * time.Millisecond, RetryAfter: 200 * time.Millisecond,
	})
	eventually(t, 5*time.Second, "registered", ua.Registered)

	k.Stop()
	// The next refresh (at 1 s) times out (0.5 s).
	eventually(t, 4*time.Second, "not registered, the refresh timed out (LastCode 0)", func() bool {
		return !ua.Registered() && ua.LastCode() == 0
	})
	before := ua.LastAttempt()
	eventually(t, 3*time.Second, "retried", func() bool { return ua.LastAttempt().After(before) })

	k.Start()
	eventually(t, 4*time.Second, "registered again", ua.Registered)
	if ua.LastCode() != 200 {
		t.Errorf("LastCode = %d", ua.LastCode())
	}
	if cs := k.ContactsOf(t, "300"); len(cs) != 1 || cs[0].Address != ua.Contact() {
		t.Errorf("contacts after the restart: %+v", cs)
	}
}

func TestPauseKeepsReportingWhileTheContactExpires(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{TimerInterval: time.Second})
	ua := start(t, sipua.Options{User: "400", Proxy: k.SIPAddr, Expires: 2 * time.Second})
	eventually(t, 5*time.Second, "registered", ua.Registered)
	ua.Pause()
	last, code := ua.LastAttempt(), ua.LastCode()
	eventually(t, 6*time.Second, "the contact expired at the registrar", func() bool {
		cs := k.ContactsOf(t, "400")
		return len(cs) == 0 || cs[0].Expired()
	})
	if !ua.Registered() || !ua.LastAttempt().Equal(last) || ua.LastCode() != code {
		t.Errorf("paused UA reports registered %v, last attempt %v (was %v), code %d (was %d)",
			ua.Registered(), ua.LastAttempt(), last, ua.LastCode(), code)
	}
}

func TestDigest(t *testing.T) {
	const password = "Reg-pw-7731"
	k := kamailiotest.Start(t, kamailiotest.Options{Password: password})
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	good := start(t, sipua.Options{User: "500", Password: password, Proxy: k.SIPAddr, Logger: logger})
	bad := start(t, sipua.Options{User: "501", Password: "wrong-pw-9913", Proxy: k.SIPAddr, Logger: logger,
		RetryAfter: 200 * time.Millisecond})
	none := start(t, sipua.Options{User: "502", Proxy: k.SIPAddr, Logger: logger, RetryAfter: 200 * time.Millisecond})
	eventually(t, 5*time.Second, "registered with the right password", good.Registered)
	eventually(t, 5*time.Second, "refused with the wrong password and without one", func() bool {
		return bad.LastCode() == 401 && none.LastCode() == 401
	})
	if bad.Registered() || none.Registered() {
		t.Error("registered without the right password")
	}
	if cs := k.Contacts(t); len(cs) != 1 || cs[0].AoR != "500" {
		t.Errorf("contacts: %+v", cs)
	}
	good.Stop()
	bad.Stop()
	s := logs.String()
	if !strings.Contains(s, "REGISTER refused") || !strings.Contains(s, "registered") {
		t.Errorf("the log does not tell the outcomes:\n%s", s)
	}
	if strings.Contains(s, password) || strings.Contains(s, "wrong-pw-9913") {
		t.Errorf("a password in the log:\n%s", s)
	}
}

func TestDomain(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{UseDomain: true})
	a := start(t, sipua.Options{User: "600", Domain: "example.com", Proxy: k.SIPAddr})
	b := start(t, sipua.Options{User: "601", Proxy: k.SIPAddr, LocalIP: "127.0.0.3"})
	eventually(t, 5*time.Second, "registered", func() bool { return a.Registered() && b.Registered() })
	if cs := k.ContactsOf(t, "600@example.com"); len(cs) != 1 {
		t.Errorf("contacts of 600@example.com: %+v", k.Contacts(t))
	}
	if cs := k.ContactsOf(t, "601@127.0.0.1"); len(cs) != 1 || !strings.HasPrefix(cs[0].Address, "sip:601@127.0.0.3:") {
		t.Errorf("contacts of 601@127.0.0.1: %+v", k.Contacts(t))
	}
}

func TestParseProxy(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5070":                       "127.0.0.1:5070",
		"127.0.0.1":                            "127.0.0.1:5060",
		"sip:127.0.0.1:5070":                   "127.0.0.1:5070",
		"sip:127.0.0.1":                        "127.0.0.1:5060",
		"<sip:127.0.0.1:5070;lr>":              "127.0.0.1:5070",
		"sip:100@127.0.0.2:5080;transport=udp": "127.0.0.2:5080",
		"[::1]:5070":                           "[::1]:5070",
		" sip:127.0.0.1:5070 ":                 "127.0.0.1:5070",
	} {
		got, err := sipua.ParseProxy(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseProxy(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "sip:pbx.example.com", "pbx.example.com:5060", "sip:", "127.0.0.1:99999"} {
		if got, err := sipua.ParseProxy(in); err == nil {
			t.Errorf("ParseProxy(%q) = %v, want an error", in, got)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for name, o := range map[string]sipua.Options{
		"no user":         {Proxy: "127.0.0.1:5060"},
		"host name proxy": {User: "1", Proxy: "pbx.example.com"},
		"bad local IP":    {User: "1", Proxy: "127.0.0.1", LocalIP: "localhost"},
	} {
		if _, err := sipua.New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ua, err := sipua.New(sipua.Options{User: "1", Password: "secret-pw", Proxy: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ua.Stop() // never started: nothing to do
	ua.Pause()
	if ua.Registered() || ua.Contact() != "" || !ua.LastAttempt().IsZero() {
		t.Error("a UA never started reports something")
	}
}
