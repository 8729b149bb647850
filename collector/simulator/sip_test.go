package simulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/kamailiotest"
)

// fastSIP registers for 2 s, refreshing every second, with short timeouts.
var fastSIP = SIPRegistration{Expires: 2 * time.Second, Timeout: 500 * time.Millisecond, RetryAfter: 200 * time.Millisecond}

// sipDevice is a panel whose settings name proxy and user, served until the
// test ends.
func sipDevice(t *testing.T, proxy, user string) (*Device, *Server) {
	t.Helper()
	d := newDevice()
	set := PanelSettings(user, "udp")
	set["proxy"] = proxy
	d.SetSettings(set)
	return d, start(t, d)
}

// registerSIP turns on d's registration until the test ends.
func registerSIP(t *testing.T, d *Device, r SIPRegistration) {
	t.Helper()
	if err := d.RegisterSIP(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.StopSIP)
}

// sipStatus reads the device's sip/status over HTTP.
func sipStatus(t *testing.T, c *http.Client, s *Server, token string) (status string, lastAttempt float64) {
	t.Helper()
	code, body := do(t, c, s.URL+"/api/v1/sip/status", "Authorization", "Bearer "+token)
	if code != http.StatusOK {
		t.Fatalf("sip/status: %d %s", code, body)
	}
	var v struct {
		Status      string   `json:"sip_status"`
		LastAttempt *float64 `json:"register_last_attempt"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("sip/status %s: %v", body, err)
	}
	if v.LastAttempt != nil {
		lastAttempt = *v.LastAttempt
	}
	return v.Status, lastAttempt
}

// within polls cond every 20 ms until it holds, for at most d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegisterSIPStatusFollowsTheRegistrar(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{})
	d, s := sipDevice(t, "sip:"+k.SIPAddr, "100")
	r := fastSIP
	r.LocalIP = "127.0.0.2"
	registerSIP(t, d, r)
	c, _ := newClient(t)
	token := login(t, c, s, "v1")
	statusIs := func(want string) func() bool {
		return func() bool { got, _ := sipStatus(t, c, s, token); return got == want }
	}

	within(t, 5*time.Second, "sip_status OK", statusIs("OK"))
	_, last := sipStatus(t, c, s, token)
	if now := float64(time.Now().Unix()); last < now-5 || last > now+1 {
		t.Errorf("register_last_attempt %v, now %v", last, now)
	}
	cs := k.ContactsOf(t, "100")
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Address, "sip:100@127.0.0.2:") || cs[0].Address != d.SIPAgent().Contact() {
		t.Fatalf("contacts of 100: %+v", cs)
	}

	k.Stop()
	within(t, 4*time.Second, "sip_status ERROR with the registrar stopped", statusIs("ERROR"))
	k.Start()
	within(t, 4*time.Second, "sip_status OK with the registrar started again", statusIs("OK"))
	if cs := k.ContactsOf(t, "100"); len(cs) != 1 {
		t.Errorf("contacts of 100 after the restart: %+v", cs)
	}
}

func TestPauseSIPFreezesTheStatus(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{TimerInterval: time.Second})
	d, s := sipDevice(t, k.SIPAddr, "200")
	registerSIP(t, d, fastSIP)
	c, _ := newClient(t)
	token := login(t, c, s, "v1")
	within(t, 5*time.Second, "registered", func() bool { return len(k.ContactsOf(t, "200")) == 1 })
	within(t, 3*time.Second, "sip_status OK", func() bool { st, _ := sipStatus(t, c, s, token); return st == "OK" })

	d.PauseSIP()
	_, last := sipStatus(t, c, s, token)
	within(t, 6*time.Second, "the contact gone at the registrar", func() bool {
		cs := k.ContactsOf(t, "200")
		return len(cs) == 0 || cs[0].Expired()
	})
	if st, l := sipStatus(t, c, s, token); st != "OK" || l != last {
		t.Errorf("paused device says %s, last attempt %v (was OK, %v)", st, l, last)
	}
}

func TestSIPSettingsChangeMovesTheRegistration(t *testing.T) {
	k1 := kamailiotest.Start(t, kamailiotest.Options{})
	k2 := kamailiotest.Start(t, kamailiotest.Options{UseDomain: true})
	d, s := sipDevice(t, "sip:"+k1.SIPAddr, "300")
	registerSIP(t, d, fastSIP)
	within(t, 5*time.Second, "registered at the first registrar", func() bool { return len(k1.ContactsOf(t, "300")) == 1 })
	first := d.SIPAgent()

	set := d.Settings()
	set["proxy"] = "sip:" + k2.SIPAddr
	set["user"] = "301"
	d.SetSettings(set)
	if d.SIPAgent() == first {
		t.Fatal("the UA was not started again")
	}
	host, _, _ := strings.Cut(k2.SIPAddr, ":")
	within(t, 5*time.Second, "registered at the second registrar", func() bool { return len(k2.ContactsOf(t, "301@"+host)) == 1 })
	if cs := k1.Contacts(t); len(cs) != 0 {
		t.Errorf("the first registrar keeps %+v", cs)
	}
	c, _ := newClient(t)
	token := login(t, c, s, "v1")
	within(t, 3*time.Second, "sip_status OK", func() bool { st, _ := sipStatus(t, c, s, token); return st == "OK" })

	// A setting the UA does not use changes nothing.
	ua := d.SIPAgent()
	set = d.Settings()
	set["registration_interval"] = 60
	d.SetSettings(set)
	if d.SIPAgent() != ua {
		t.Error("the UA was started again for an unrelated setting")
	}

	// A proxy that is not an IP address: nothing registers, the status
	// says ERROR.
	set["proxy"] = "sip:pbx.example.com"
	d.SetSettings(set)
	if d.SIPAgent() != nil {
		t.Error("a UA for a host name")
	}
	if st, _ := sipStatus(t, c, s, token); st != "ERROR" {
		t.Errorf("sip_status %s without a usable proxy", st)
	}
	within(t, 3*time.Second, "unregistered from the second registrar", func() bool { return len(k2.Contacts(t)) == 0 })
}

func TestRegisterSIPDigestAndOffline(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.Options{Password: "s1p-400-pass"})
	d := newDevice()
	set := MonitorSettings("400", "udp") // password s1p-400-pass in clear
	set["proxy"] = k.SIPAddr
	d.SetSettings(set)
	d.APIVersion = "v0"
	s := start(t, d)
	registerSIP(t, d, fastSIP)
	c, _ := newClient(t)
	token := login(t, c, s, "v0")
	get := func() string {
		code, body := do(t, c, s.URL+"/api/v0/sip/status", "Authorization", "Bearer "+token)
		if code != http.StatusOK {
			t.Fatalf("sip/status: %d %s", code, body)
		}
		var v struct {
			Status string `json:"sip_status"`
		}
		_ = json.Unmarshal([]byte(body), &v)
		return v.Status
	}
	within(t, 5*time.Second, "OK with digest", func() bool { return get() == "OK" })
	if code := d.SIPAgent().LastCode(); code != 200 {
		t.Errorf("LastCode %d", code)
	}

	set["enable"] = false
	d.SetSettings(set)
	if st := get(); st != "OFFLINE" || d.SIPAgent() != nil {
		t.Errorf("SIP disabled: status %s, agent %v", st, d.SIPAgent())
	}
	within(t, 3*time.Second, "unregistered", func() bool { return len(k.Contacts(t)) == 0 })

	set["enable"] = true
	set["password"] = "not-the-password"
	d.SetSettings(set)
	within(t, 5*time.Second, "refused with a wrong password", func() bool { return d.SIPAgent().LastCode() == 401 })
	if st := get(); st != "ERROR" {
		t.Errorf("status %s with a wrong password", st)
	}

	// StopSIP: the set status again.
	d.StopSIP()
	d.SetStatus(Status("OFFLINE", 0))
	if st := get(); st != "OFFLINE" {
		t.Errorf("status %s after StopSIP", st)
	}
}

func TestRegisterSIPRefusesUnusableSettings(t *testing.T) {
	d := newDevice() // proxy sip:pbx.example.com
	if err := d.RegisterSIP(SIPRegistration{}); err == nil {
		d.StopSIP()
		t.Fatal("RegisterSIP with a host name proxy")
	}
	if d.SIPAgent() != nil {
		t.Error("an agent after a refused RegisterSIP")
	}
	set := d.Settings()
	set["proxy"] = "127.0.0.1:5060"
	delete(set, "user")
	d.SetSettings(set)
	if err := d.RegisterSIP(SIPRegistration{}); err == nil {
		d.StopSIP()
		t.Fatal("RegisterSIP without a user")
	}
	d.StopSIP() // nothing to stop
}
