package vendors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator/vendorsim"
)

const testPassword = "Heron-Gable-5180"

// serve starts a simulated device of vendor and returns it with a client
// for it, built from a configuration as the exporter builds it.
func serve(t *testing.T, vendor string, setup func(d *vendorsim.Device)) (*vendorsim.Device, device.Client) {
	t.Helper()
	d := vendorsim.New(vendor, "admin", testPassword)
	if setup != nil {
		setup(d)
	}
	srv, err := vendorsim.Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return d, clientFor(t, vendor, srv, testPassword, "")
}

func clientFor(t *testing.T, vendor string, srv *vendorsim.Server, password, auth string) device.Client {
	t.Helper()
	y := fmt.Sprintf("credentials:\n  default:\n    username: admin\n    password: %q\n", password)
	if auth != "" {
		y += "    auth: " + auth + "\n"
	}
	y += fmt.Sprintf("devices:\n  - name: d\n    address: %s\n    vendor: %s\n", srv.URL, vendor)
	if srv.StatusPort != 0 {
		y += fmt.Sprintf("    status_port: %d\n", srv.StatusPort)
	}
	cfg, err := config.Parse([]byte(y), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg.Devices[0], nil)
	t.Cleanup(c.Close)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// poll reads settings, status and info as the collector does.
type polled struct {
	settings *device.SIPSettings
	status   *device.SIPStatus
	info     *device.Info
	requests int
	errs     []error
}

func poll(t *testing.T, c device.Client) polled {
	t.Helper()
	var p polled
	s, res, err := c.SIPSettings(ctx(t))
	p.settings, p.requests = s, res.Requests
	p.errs = append(p.errs, err)
	st, res, err := c.SIPStatus(ctx(t))
	p.status, p.requests = st, p.requests+res.Requests
	p.errs = append(p.errs, err)
	i, res, err := c.Info(ctx(t))
	p.info, p.requests = i, p.requests+res.Requests
	if !errors.Is(err, device.ErrNotSupported) {
		p.errs = append(p.errs, err)
	}
	return p
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// TestEveryVendorHealthyAndRegistered reads every simulated vendor over
// HTTP with its default auth and checks what each maps.
func TestEveryVendorHealthyAndRegistered(t *testing.T) {
	cases := map[string]struct {
		proxy, user, transport, stun, model, firmware string
		exposed                                       bool
		enable                                        string // "true", "false" or "<nil>"
		accounts                                      int
		requests                                      int // of a steady-state poll
	}{
		"2n":        {"sip:sip.example.net", "1001", "<nil>", "", "2N IP Verso", "2.40.1", false, "true", 2, 3},
		"beward":    {"sip:sip.example.net", "1001", "<nil>", "stun.example.net:3478", "DKS15122", "2.40.1", true, "true", 2, 3},
		"qtech":     {"sip:sip.example.net", "1001", "<nil>", "stun.example.net:3478", "QDB-27C-H", "2.40.1", false, "<nil>", 0, 8},
		"akuvox":    {"sip:sip.example.net", "1001", "udp", "stun.example.net:3478", "E12W", "2.40.1", false, "true", 0, 3},
		"sokol":     {"sip:sip.example.net", "1001", "udp", "", "ISCOM X1", "2.40.1", true, "<nil>", 0, 4},
		"rubetek":   {"sip:sip.example.net", "1001", "udp", "stun.example.net:3478", "RV-3434", "2.40.1", true, "<nil>", 0, 3},
		"ufanet":    {"sip:sip.example.net", "1001", "<nil>", "", "Secret Top", "2.40.1", true, "<nil>", 0, 6},
		"hikvision": {"sip:sip.example.net", "1001", "<nil>", "", "DS-KV8113-WME1", "V2.40.1", false, "true", 0, 3},
	}
	for _, vendor := range vendorsim.Vendors {
		want := cases[vendor]
		t.Run(vendor, func(t *testing.T) {
			_, c := serve(t, vendor, nil)
			poll(t, c) // the first poll may cost a Digest challenge or a revision probe
			p := poll(t, c)
			for _, err := range p.errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			s := p.settings
			if str(s.Proxy) != want.proxy || str(s.User) != want.user || str(lowerTransport(s.Transport)) != want.transport || s.STUNAddress() != want.stun {
				t.Errorf("settings proxy %s user %s transport %s stun %q", str(s.Proxy), str(s.User), str(s.Transport), s.STUNAddress())
			}
			if s.PasswordExposed() != want.exposed {
				t.Errorf("password exposed %v", s.PasswordExposed())
			}
			if got := fmt.Sprint(deref(s.Enable)); got != want.enable {
				t.Errorf("enable %s, want %s", got, want.enable)
			}
			if str(p.status.Status) != device.StatusOK || len(p.status.Accounts) != want.accounts {
				t.Errorf("status %s accounts %+v", str(p.status.Status), p.status.Accounts)
			}
			if p.info == nil || string(p.info.Model) != want.model || string(p.info.Firmware) != want.firmware || p.info.Type != Panel {
				t.Errorf("info %+v", p.info)
			}
			if p.requests != want.requests {
				t.Errorf("%d requests in a steady-state poll, want %d", p.requests, want.requests)
			}
		})
	}
}

func deref(b *bool) any {
	if b == nil {
		return "<nil>"
	}
	return *b
}

// TestUnregisteredIsError: an enabled account that is not registered is
// ERROR for every vendor, whatever the vendor calls it.
func TestUnregisteredIsError(t *testing.T) {
	for _, vendor := range vendorsim.Vendors {
		t.Run(vendor, func(t *testing.T) {
			_, c := serve(t, vendor, func(d *vendorsim.Device) { d.Registered, d.Registered2 = false, false })
			st, _, err := c.SIPStatus(ctx(t))
			if err != nil || str(st.Status) != device.StatusError {
				t.Fatalf("status %v %v", st, err)
			}
			for _, a := range st.Accounts {
				if a.Registered {
					t.Errorf("account %d registered", a.Account)
				}
			}
		})
	}
}

// TestDisabledAccountIsOffline: OFFLINE where the vendor says every
// account is disabled, in its status or in the settings read first (as a
// poll reads them); Qtech's status "0" is a failure (accountStates) and
// its settings as read do not say.
func TestDisabledAccountIsOffline(t *testing.T) {
	want := map[string]string{"2n": device.StatusOffline, "qtech": device.StatusError, "akuvox": device.StatusOffline,
		"beward": device.StatusOffline, "hikvision": device.StatusOffline}
	for vendor, w := range want {
		t.Run(vendor, func(t *testing.T) {
			_, c := serve(t, vendor, func(d *vendorsim.Device) { d.Enabled, d.Enabled2 = false, false })
			s, _, err := c.SIPSettings(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if vendor != "qtech" && (s.Enable == nil || *s.Enable) {
				t.Errorf("enable %v", deref(s.Enable))
			}
			st, _, err := c.SIPStatus(ctx(t))
			if err != nil || str(st.Status) != w || len(st.Accounts) != 0 {
				t.Fatalf("status %s %+v %v, want %s and no account", str(st.Status), st.Accounts, err, w)
			}
		})
	}
}

// TestWrongPasswordBacksOff: a wrong password is an auth failure, and the
// device hears nothing more during the back-off.
func TestWrongPasswordBacksOff(t *testing.T) {
	for _, vendor := range vendorsim.Vendors {
		t.Run(vendor, func(t *testing.T) {
			d := vendorsim.New(vendor, "admin", testPassword)
			srv, err := vendorsim.Serve(d)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c := clientFor(t, vendor, srv, "not-the-password", "")
			_, res, err := c.SIPSettings(ctx(t))
			if device.ReasonOf(err) != device.ReasonAuth || res.AuthFailures != 1 {
				t.Fatalf("%+v %v", res, err)
			}
			if strings.Contains(err.Error(), "not-the-password") {
				t.Errorf("error quotes the password: %v", err)
			}
			before := d.Requests.Load()
			for range 5 {
				if _, res, err := c.SIPSettings(ctx(t)); device.ReasonOf(err) != device.ReasonAuth || res.Requests != 0 {
					t.Fatalf("during the back-off: %+v %v", res, err)
				}
				// The status too (on Ufanet's other port).
				if _, res, err := c.SIPStatus(ctx(t)); device.ReasonOf(err) != device.ReasonAuth || res.Requests != 0 {
					t.Fatalf("status during the back-off: %+v %v", res, err)
				}
			}
			if n := d.Requests.Load() - before; n != 0 {
				t.Errorf("%d requests during the back-off", n)
			}
		})
	}
}

// TestBasicAndDigestWhereAccepted: 2N, Akuvox and Hikvision default to
// Digest and take Basic when so configured and so set; Beward takes Digest.
func TestBasicAndDigestWhereAccepted(t *testing.T) {
	for _, c := range []struct{ vendor, auth string }{{"2n", "basic"}, {"akuvox", "basic"}, {"beward", "digest"}, {"2n", "digest"},
		{"hikvision", "basic"}, {"hikvision", "digest"}} {
		t.Run(c.vendor+"/"+c.auth, func(t *testing.T) {
			d := vendorsim.New(c.vendor, "admin", testPassword)
			d.Auth = c.auth
			srv, err := vendorsim.Serve(d)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cl := clientFor(t, c.vendor, srv, testPassword, c.auth)
			for i := range 3 {
				if _, _, err := cl.SIPSettings(ctx(t)); err != nil {
					t.Fatalf("poll %d: %v", i, err)
				}
			}
			wantUnauth := int64(0)
			if c.auth == "digest" {
				wantUnauth = 1 // the first challenge, then none
			}
			if got := d.Unauthorized.Load(); got != wantUnauth {
				t.Errorf("%d 401s, want %d", got, wantUnauth)
			}
		})
	}
}

// TestDigestNoChallengePerPoll: in steady state a Digest device is asked
// exactly the requests of the poll, no challenge round trip.
func TestDigestNoChallengePerPoll(t *testing.T) {
	for _, vendor := range []string{"2n", "akuvox", "hikvision"} {
		t.Run(vendor, func(t *testing.T) {
			d, c := serve(t, vendor, nil)
			first := poll(t, c)
			const polls = 20
			for range polls {
				if p := poll(t, c); p.requests != first.requests-1 {
					t.Fatalf("%d requests in a poll, the first took %d", p.requests, first.requests)
				}
			}
			if got := d.Unauthorized.Load(); got != 1 {
				t.Errorf("%d challenges over %d polls, want 1", got, polls+1)
			}
		})
	}
}

// TestSokolRevisions: rev.2 (status a boolean) and rev.5 (status text) are
// told apart by path, and a device upgraded to the other is found again.
func TestSokolRevisions(t *testing.T) {
	for _, rev := range []int{2, 5} {
		for _, registered := range []bool{true, false} {
			t.Run(fmt.Sprintf("rev.%d/registered=%v", rev, registered), func(t *testing.T) {
				d, c := serve(t, "sokol", func(d *vendorsim.Device) { d.Revision, d.Registered = rev, registered })
				p := poll(t, c)
				if p.errs[0] != nil || p.errs[1] != nil {
					t.Fatal(p.errs)
				}
				want := device.StatusOK
				if !registered {
					want = device.StatusError
				}
				if str(p.status.Status) != want || c.APIVersion() != fmt.Sprintf("rev.%d", rev) {
					t.Errorf("status %s revision %s", str(p.status.Status), c.APIVersion())
				}
				if p := poll(t, c); p.requests != 4 { // settings, status, and the identity's two
					t.Errorf("%d requests once the revision is known", p.requests)
				}
				d.Lock()
				d.Revision = 7 - rev
				d.Unlock()
				if _, _, err := c.SIPSettings(ctx(t)); !errors.Is(err, device.ErrNotSupported) && device.ReasonOf(err) != device.ReasonHTTPStatus {
					t.Fatalf("after the upgrade: %v", err)
				}
				if _, _, err := c.SIPSettings(ctx(t)); err != nil || c.APIVersion() != fmt.Sprintf("rev.%d", 7-rev) {
					t.Fatalf("not found again: %v %s", err, c.APIVersion())
				}
			})
		}
	}
}

// TestRubetekFailedStatuses: "failed..." and "unregistered" are ERROR.
func TestRubetekFailedStatuses(t *testing.T) {
	for _, failure := range []string{"failed: 403", "failed", "Failed (timeout)", "unregistered"} {
		t.Run(failure, func(t *testing.T) {
			_, c := serve(t, "rubetek", func(d *vendorsim.Device) { d.Registered, d.Failure = false, failure })
			st, _, err := c.SIPStatus(ctx(t))
			if err != nil || str(st.Status) != device.StatusError {
				t.Fatalf("%s: %s %v", failure, str(st.Status), err)
			}
		})
	}
}

// TestUfanetStatusPort: the status is read from the status port, the
// settings from the address's port.
func TestUfanetStatusPort(t *testing.T) {
	d, c := serve(t, "ufanet", func(d *vendorsim.Device) { d.Registered = false })
	st, _, err := c.SIPStatus(ctx(t))
	if err != nil || str(st.Status) != device.StatusError {
		t.Fatalf("%v %v", st, err)
	}
	if _, _, err := c.SIPSettings(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Paths(), " "); got != "/api/v1/status /api/v1/configuration" {
		t.Errorf("paths %s", got)
	}
}

// TestHikvision: the registerStatus values, the identity with its type,
// and the paths asked.
func TestHikvision(t *testing.T) {
	for _, c := range []struct {
		registered bool
		text, want string
	}{{true, "", device.StatusOK}, {false, "", device.StatusError}, {false, "unknown", device.StatusError}, {false, "registering", device.StatusError}} {
		t.Run(fmt.Sprintf("%v/%s", c.registered, c.text), func(t *testing.T) {
			d, cl := serve(t, "hikvision", func(d *vendorsim.Device) { d.Registered, d.Failure = c.registered, c.text })
			p := poll(t, cl)
			for _, err := range p.errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if str(p.status.Status) != c.want {
				t.Errorf("status %s, want %s", str(p.status.Status), c.want)
			}
			i := p.info
			if i.Type != "panel" || i.Name != "OUTDOOR STATION" || !strings.HasPrefix(string(i.Serial), "DS-KV8113-WME1") || i.Firmware != "V2.40.1" {
				t.Errorf("info %+v", i)
			}
			s := p.settings
			if str(s.UserID) != "1001" || s.RegistrationInterval == nil || *s.RegistrationInterval != 300 || s.Transport != nil {
				t.Errorf("settings %+v", s)
			}
			want := "/ISAPI/System/Network/SIP /ISAPI/System/Network/SIP/1 /ISAPI/System/deviceInfo"
			if got := strings.Join(d.Paths(), " "); !strings.HasSuffix(got, want) {
				t.Errorf("paths %s", got)
			}
		})
	}
}

// TestSokolPathKeptOnlyWhenItDecodes: a rev.2 panel whose web server
// answers 200 HTML to any path (the rev.5 path included) is read at its
// rev.2 path, which is kept: the next poll asks it alone.
func TestSokolPathKeptOnlyWhenItDecodes(t *testing.T) {
	d, c := serve(t, "sokol", func(d *vendorsim.Device) { d.Revision, d.AnyPath200 = 2, true })
	s, _, err := c.SIPSettings(ctx(t))
	if err != nil || s.User == nil || c.APIVersion() != "rev.2" {
		t.Fatalf("settings %+v, %v, revision %q", s, err, c.APIVersion())
	}
	before := len(d.Paths())
	if _, _, err := c.SIPSettings(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := d.Paths()[before:]; len(got) != 1 || got[0] != "/sip/settings" {
		t.Errorf("the next poll asked %v, want /sip/settings alone", got)
	}
}
