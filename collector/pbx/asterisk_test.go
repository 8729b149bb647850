package pbx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
)

// The manager account of the tests. The password has characters that
// query escaping changes, so its escaped form is a second thing to look
// for.
const (
	amiUser     = "exporter"
	amiPassword = "Zq9 s3cr&t=%/+x"
)

// amiFixture is one transcribed answer of testdata/asterisk.
type amiFixture struct {
	comments []string
	headers  [][2]string
	body     []byte
}

func loadAMIFixture(t testing.TB, name string) amiFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "asterisk", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("== body\n"))
	if !ok {
		t.Fatalf("%s: no == body line", name)
	}
	f := amiFixture{body: body}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(head), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			f.comments = append(f.comments, line)
		case strings.HasPrefix(line, "== header "):
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "== header "), ": ")
			if !ok {
				t.Fatalf("%s: bad header line %q", name, line)
			}
			f.headers = append(f.headers, [2]string{k, v})
		default:
			t.Fatalf("%s: unexpected line %q", name, line)
		}
	}
	return f
}

// cookie is the mansession_id the fixture sets.
func (f amiFixture) cookie() string {
	h := http.Header{}
	for _, kv := range f.headers {
		h.Add(kv[0], kv[1])
	}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "mansession_id" {
			return c.Value
		}
	}
	return ""
}

// serve writes the fixture as the answer, headers as Asterisk sends them.
func (f amiFixture) serve(w http.ResponseWriter) {
	for _, kv := range f.headers {
		w.Header()[kv[0]] = append(w.Header()[kv[0]], kv[1]) // as written, Content-type included
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.body)
}

// amiRequest is what the test manager received.
type amiRequest struct {
	method, rawQuery, contentType, cookie, body string
	action                                      string
}

// amiManager is a test manager over HTTP: it answers with the transcribed
// fixtures the way Asterisk's /rawman does. A Login with the right
// user name and secret logs the session of login-accepted's cookie in;
// PJSIPShowContacts in that session answers the contacts fixture, in
// any other Permission denied.
type amiManager struct {
	t        testing.TB
	fixtures map[string]amiFixture
	contacts string // the fixture PJSIPShowContacts answers

	mu       sync.Mutex
	loggedIn map[string]bool
	requests []amiRequest
	logins   int
	// denyAll answers every action Permission denied, however logged in.
	denyAll bool
	// answer, when set, answers PJSIPShowContacts in a logged-in session.
	answer func(w http.ResponseWriter, r *http.Request)
}

func newAMIManager(t testing.TB, contacts string) (*amiManager, *httptest.Server) {
	m := &amiManager{t: t, fixtures: map[string]amiFixture{}, contacts: contacts, loggedIn: map[string]bool{}}
	for _, name := range []string{"login-accepted", "login-failed", "permission-denied", "contacts-two", "contacts-none", "contacts-error"} {
		m.fixtures[name] = loadAMIFixture(t, name)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv
}

func (m *amiManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	req := amiRequest{method: r.Method, rawQuery: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"), body: string(body)}
	for _, c := range r.Cookies() {
		if c.Name == "mansession_id" {
			req.cookie = c.Value
		}
	}
	// Asterisk reads a POST's parameters from a form body only, a GET's
	// from the query.
	var params url.Values
	switch {
	case r.Method == http.MethodPost && req.contentType == "application/x-www-form-urlencoded":
		params, _ = url.ParseQuery(string(body))
	case r.Method == http.MethodGet:
		params = r.URL.Query()
	}
	get := func(key string) string {
		for k, v := range params {
			if strings.EqualFold(k, key) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	req.action = get("Action")
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()

	switch strings.ToLower(req.action) {
	case "login":
		m.mu.Lock()
		m.logins++
		ok := get("Username") == amiUser && get("Secret") == amiPassword
		accepted := m.fixtures["login-accepted"]
		if ok {
			m.loggedIn[accepted.cookie()] = true
		}
		m.mu.Unlock()
		if ok {
			accepted.serve(w)
		} else {
			m.fixtures["login-failed"].serve(w)
		}
	case "pjsipshowcontacts":
		m.mu.Lock()
		ok := m.loggedIn[req.cookie] && !m.denyAll
		answer := m.answer
		m.mu.Unlock()
		switch {
		case !ok:
			m.fixtures["permission-denied"].serve(w)
		case answer != nil:
			answer(w, r)
		default:
			m.fixtures[m.contacts].serve(w)
		}
	case "":
		w.Header().Set("Content-type", "text/plain")
		_, _ = io.WriteString(w, "Response: Error\r\nMessage: Missing action in request\r\n\r\n")
	default:
		w.Header().Set("Content-type", "text/plain")
		_, _ = io.WriteString(w, "Response: Error\r\nMessage: Invalid/unknown command\r\n\r\n")
	}
}

// expire ends every session, as httptimeout does.
func (m *amiManager) expire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.loggedIn)
}

func (m *amiManager) counts() (logins, requests int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logins, len(m.requests)
}

func (m *amiManager) received() []amiRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.requests)
}

// checkRequests: every request is a form POST, with nothing in the query;
// the secret travels only in a Login's body.
func (m *amiManager) checkRequests(t *testing.T) {
	t.Helper()
	for _, r := range m.received() {
		if r.method != http.MethodPost || r.contentType != "application/x-www-form-urlencoded" {
			t.Errorf("request %s with Content-Type %q, want a form POST", r.method, r.contentType)
		}
		if r.rawQuery != "" {
			t.Errorf("request with a query %q", r.rawQuery)
		}
		for _, s := range passwordForms() {
			if strings.Contains(r.rawQuery, s) || strings.Contains(r.cookie, s) {
				t.Errorf("the password is in the URL or cookie of a request")
			}
		}
		if !strings.EqualFold(r.action, "Login") && strings.Contains(r.body, url.QueryEscape(amiPassword)) {
			t.Errorf("the password is in the body of a %s", r.action)
		}
	}
}

func passwordForms() []string {
	return []string{amiPassword, url.QueryEscape(amiPassword), url.PathEscape(amiPassword)}
}

// checkNoSecret fails if text holds the password in any form.
func checkNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range passwordForms() {
		if strings.Contains(text, s) {
			t.Errorf("%s holds the password (%q): %s", what, s, text)
		}
	}
}

func newTestAsterisk(srv *httptest.Server) Registrar {
	return NewAsterisk(srv.URL+"/rawman", amiUser, device.Secret(amiPassword), srv.Client())
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestAsteriskFixtures: every transcribed answer names its source and its
// shape, and its body is AMI: CRLF line ends (the bare LF inside a
// message's value aside), ended by an empty line.
func TestAsteriskFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "asterisk", "*.txt"))
	if err != nil || len(files) < 6 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		f := loadAMIFixture(t, name)
		var sources, shapes int
		for _, c := range f.comments {
			switch {
			case strings.HasPrefix(c, "# source: "):
				sources++
			case strings.HasPrefix(c, "# shape: "):
				shapes++
			}
		}
		if sources == 0 || shapes != 1 || !strings.HasPrefix(f.comments[0], "# ") {
			t.Errorf("%s: %d source lines, %d shape lines", name, sources, shapes)
		}
		if !bytes.HasSuffix(f.body, []byte("\r\n\r\n")) {
			t.Errorf("%s: body does not end in an empty CRLF line", name)
		}
		if f.cookie() == "" {
			t.Errorf("%s: no mansession_id cookie", name)
		}
	}
}

// TestAsteriskContacts: a login, the listing mapped to contacts; the next
// call reuses the session; once the session expired, one new login.
func TestAsteriskContacts(t *testing.T) {
	m, srv := newAMIManager(t, "contacts-two")
	reg := newTestAsterisk(srv)
	want := []Contact{
		{User: "1001", Domain: "", Source: "192.0.2.10"},
		{User: "1002", Domain: "pbx.example.com", Source: "2001:db8::20"},
	}
	for call, wantLogins := range []int{1, 1, 2} {
		if call == 2 {
			m.expire()
		}
		got, err := reg.Contacts(testContext(t, 5*time.Second))
		if err != nil {
			t.Fatalf("call %d: %v", call+1, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("call %d: %+v, want %+v", call+1, got, want)
		}
		if logins, _ := m.counts(); logins != wantLogins {
			t.Errorf("call %d: %d logins in all, want %d", call+1, logins, wantLogins)
		}
	}
	// Calls: login+list, list, list (denied)+login+list.
	if _, n := m.counts(); n != 6 {
		t.Errorf("%d requests, want 6", n)
	}
	m.checkRequests(t)
	for _, r := range m.received() {
		if strings.EqualFold(r.action, "Login") {
			form, _ := url.ParseQuery(r.body)
			if form.Get("Events") != "off" || form.Get("Username") != amiUser {
				t.Errorf("login form %v", form)
			}
		} else if r.cookie != m.fixtures["login-accepted"].cookie() {
			t.Errorf("%s with cookie %q, want the login's", r.action, r.cookie)
		}
	}
}

// TestAsteriskEmptyListing: "No Contacts found" is an empty listing, not
// an error.
func TestAsteriskEmptyListing(t *testing.T) {
	_, srv := newAMIManager(t, "contacts-none")
	got, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("%v %v, want an empty listing", got, err)
	}
}

// TestAsteriskActionError: another Response: Error quotes the manager's
// message.
func TestAsteriskActionError(t *testing.T) {
	_, srv := newAMIManager(t, "contacts-error")
	_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
	if device.ReasonOf(err) != device.ReasonDecode || !strings.Contains(err.Error(), `"Could not get Contacts"`) {
		t.Errorf("%v (%s)", err, device.ReasonOf(err))
	}
}

// TestAsteriskLoginRejected: a rejected login is an auth error, and the
// listing is not asked for.
func TestAsteriskLoginRejected(t *testing.T) {
	m, srv := newAMIManager(t, "contacts-two")
	reg := NewAsterisk(srv.URL+"/rawman", amiUser, device.Secret("wrong-"+amiPassword), srv.Client())
	_, err := reg.Contacts(testContext(t, 5*time.Second))
	if device.ReasonOf(err) != device.ReasonAuth || !strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("%v (%s)", err, device.ReasonOf(err))
	}
	if logins, n := m.counts(); logins != 1 || n != 1 {
		t.Errorf("%d logins, %d requests, want 1 and 1", logins, n)
	}
	checkNoSecret(t, "error", err.Error())
}

// TestAsteriskLoginLoop: a manager that accepts every login and refuses
// every listing gets one login per call, whether the call starts with a
// session or without one.
func TestAsteriskLoginLoop(t *testing.T) {
	m, srv := newAMIManager(t, "contacts-two")
	reg := newTestAsterisk(srv)
	if _, err := reg.Contacts(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err) // a session to start the loop with
	}
	m.mu.Lock()
	m.denyAll = true
	m.mu.Unlock()
	for call := range 4 {
		before, _ := m.counts()
		_, err := reg.Contacts(testContext(t, 5*time.Second))
		after, _ := m.counts()
		if device.ReasonOf(err) != device.ReasonAuth || !strings.Contains(err.Error(), "write = system") {
			t.Errorf("call %d: %v", call+1, err)
		}
		if after-before != 1 {
			t.Errorf("call %d: %d logins, want 1", call+1, after-before)
		}
	}
}

// TestAsteriskHTTPStatus: 401 and 403 (a proxy's) are auth errors, any
// other status an HTTP status error; a redirect is not followed, so the
// login's body goes nowhere else.
func TestAsteriskHTTPStatus(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	for _, tc := range []struct {
		code   int
		reason device.Reason
	}{
		{http.StatusUnauthorized, device.ReasonAuth},
		{http.StatusForbidden, device.ReasonAuth},
		{http.StatusInternalServerError, device.ReasonHTTPStatus},
		{http.StatusNotFound, device.ReasonHTTPStatus},
		{http.StatusTemporaryRedirect, device.ReasonHTTPStatus},
		{http.StatusPermanentRedirect, device.ReasonHTTPStatus},
		{http.StatusFound, device.ReasonHTTPStatus},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.code >= 300 && tc.code < 400 {
					w.Header().Set("Location", other.URL+"/rawman")
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, "Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
			}))
			defer srv.Close()
			_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
			var de *device.Error
			if !errors.As(err, &de) || de.Reason != tc.reason || de.Status != tc.code {
				t.Errorf("%v, want %s with status %d", err, tc.reason, tc.code)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests followed a redirect", n)
	}
}

// TestAsteriskNotRawman: an answer in another encoding (/mxml, /manager)
// says the url is not rawman's.
func TestAsteriskNotRawman(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-type", "text/xml")
		_, _ = io.WriteString(w, "<ajax-response>\n</ajax-response>\n")
	}))
	defer srv.Close()
	_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
	if device.ReasonOf(err) != device.ReasonDecode || !strings.Contains(err.Error(), "/rawman") {
		t.Errorf("%v", err)
	}
}

// TestAsteriskLoginWithoutCookie: an accepted login without a usable
// mansession_id is an error, not a session.
func TestAsteriskLoginWithoutCookie(t *testing.T) {
	for name, cookie := range map[string]string{
		"none":      "",
		"not hex":   `mansession_id="zz"; Version=1`,
		"too long":  `mansession_id="0123456789"; Version=1`,
		"injection": "mansession_id=0e92\r\nX: y",
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if cookie != "" {
					w.Header()["Set-Cookie"] = []string{cookie}
				}
				_, _ = io.WriteString(w, "Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
			}))
			defer srv.Close()
			_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
			if device.ReasonOf(err) != device.ReasonDecode || !strings.Contains(err.Error(), "mansession_id") {
				t.Errorf("%v", err)
			}
		})
	}
}

// TestAsteriskSecretNeverShown: neither the password nor its escaped form
// is in any error, in the URL of any request, nor in the registrar
// printed; a manager quoting the secret back has it redacted.
func TestAsteriskSecretNeverShown(t *testing.T) {
	m, srv := newAMIManager(t, "contacts-two")
	reg := newTestAsterisk(srv)
	if _, err := reg.Contacts(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	session := m.fixtures["login-accepted"].cookie()
	printed := fmt.Sprintf("%v %+v %#v %s %q %x", reg, reg, reg, reg, reg, reg)
	checkNoSecret(t, "the printed registrar", printed)
	if strings.Contains(printed, session) {
		t.Errorf("the printed registrar holds the session: %s", printed)
	}
	if !strings.Contains(printed, "asterisk registrar http://") {
		t.Errorf("printed as %s", printed)
	}
	m.checkRequests(t)

	// Managers quoting the secret, its escaped form and the session back.
	for _, echo := range []string{amiPassword, url.QueryEscape(amiPassword), "Secret: " + amiPassword + " for " + amiUser, session} {
		for _, action := range []string{"login", "contacts"} {
			if action == "login" && echo == session {
				continue // a session of another registrar's, unknown to this one
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-type", "text/plain")
				if action == "contacts" && strings.Contains(string(body), "Login") {
					w.Header().Set("Set-Cookie", `mansession_id="`+session+`"; Version=1; Max-Age=60`)
					_, _ = io.WriteString(w, "Response: Success\r\nMessage: Authentication accepted\r\n\r\n")
					return
				}
				_, _ = io.WriteString(w, "Response: Error\r\nMessage: "+echo+"\r\n\r\n")
			}))
			_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
			srv.Close()
			if err == nil {
				t.Fatalf("%s echoing: no error", action)
			}
			checkNoSecret(t, action+" error", err.Error())
			if strings.Contains(err.Error(), session) {
				t.Errorf("%s error holds the session: %v", action, err)
			}
		}
	}
}

// TestAsteriskErrorExcerpt: the manager's message is quoted short and
// escaped.
func TestAsteriskErrorExcerpt(t *testing.T) {
	msg := "\x1b[2J\x1b]0;pwned\x07" + strings.Repeat("é", 4000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-type", "text/plain")
		_, _ = io.WriteString(w, "Response: Error\r\nMessage: "+msg+"\r\n\r\n")
	}))
	defer srv.Close()
	_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
	if err == nil || len(err.Error()) > 200 || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `\x1b[2J`) {
		t.Errorf("%q", err)
	}
}

// TestAsteriskConcurrent: calls from many goroutines share the session:
// at most one login each, the first calls' that found none.
func TestAsteriskConcurrent(t *testing.T) {
	const goroutines, calls = 8, 5
	m, srv := newAMIManager(t, "contacts-two")
	reg := newTestAsterisk(srv)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if got, err := reg.Contacts(testContext(t, 5*time.Second)); err != nil || len(got) != 2 {
					t.Errorf("%v %v", got, err)
				}
			}
		})
	}
	wg.Wait()
	if logins, n := m.counts(); logins > goroutines || n != logins+goroutines*calls {
		t.Errorf("%d logins, %d requests", logins, n)
	}
}

// TestContactMapping: ObjectName's aor gives User and Domain; the Uri's
// host, else ViaAddr, gives Source.
func TestContactMapping(t *testing.T) {
	for _, tc := range []struct {
		name, uri, via string
		want           Contact
	}{
		{"1001;@f370e51948e013d60982d9fc3168aa39", "sip:1001@192.0.2.10:5060", "192.0.2.10", Contact{"1001", "", "192.0.2.10"}},
		{"1002@pbx.example.com;@9fe7", "sip:1002@[2001:db8::20]:5060", "2001:db8::20", Contact{"1002", "pbx.example.com", "2001:db8::20"}},
		// rewrite_contact: the Uri holds the source address, the Via the device's own.
		{"1003;@aa", "sip:1003@203.0.113.7:41234;x-ast-orig-host=10.1.2.3:5060", "10.1.2.3", Contact{"1003", "", "203.0.113.7"}},
		{"1004;@aa", "sips:1004@[2001:db8::4];transport=tls", "", Contact{"1004", "", "2001:db8::4"}},
		{"1005;@aa", "<sip:1005@192.0.2.5;ob>", "", Contact{"1005", "", "192.0.2.5"}},
		{"1006;@aa", "SIP:1006@192.0.2.6", "", Contact{"1006", "", "192.0.2.6"}},
		{"1007;@aa", "sip:1007@intercom.example.com:5060", "192.0.2.7", Contact{"1007", "", "192.0.2.7"}},
		{"1008;@aa", "sip:1008@intercom.example.com", "[2001:db8::8]", Contact{"1008", "", "2001:db8::8"}},
		{"1009;@aa", "sip:1009@intercom.example.com", "intercom.example.com", Contact{"1009", "", ""}},
		{"1010;@aa", "tel:+15550101", "", Contact{"1010", "", ""}},
		{"1011;@aa", "sip:1011@[::ffff:192.0.2.11]:5060", "", Contact{"1011", "", "192.0.2.11"}},
		{"1012;@aa", "sip:1012@[fe80::12%25eth0]:5060", "", Contact{"1012", "", "fe80::12"}},
		{"1013;@aa", "sip:1013;phone-context=x@192.0.2.13", "", Contact{"1013", "", "192.0.2.13"}},
		{"1014;@aa", "sip:1014@2001:db8::14", "", Contact{"1014", "", ""}},
		{"1015;@aa", "sip:1015@[2001:db8::15", "", Contact{"1015", "", ""}},
		{"1016;@aa", "sip:1016@192.0.2.999", "", Contact{"1016", "", ""}},
		{"1017;@aa", "", "", Contact{"1017", "", ""}},
		{"trunk@@0123", "sip:192.0.2.50", "", Contact{"trunk", "", "192.0.2.50"}},
		{"plain", "sip:192.0.2.51", "", Contact{"plain", "", "192.0.2.51"}},
	} {
		var m amiMessage
		m.val[keyObjectName] = []byte(tc.name)
		m.val[keyUri] = []byte(tc.uri)
		m.val[keyViaAddr] = []byte(tc.via)
		got, err := contactOf(&m)
		if err != nil || got != tc.want {
			t.Errorf("%q %q %q: %+v %v, want %+v", tc.name, tc.uri, tc.via, got, err, tc.want)
		}
	}
	for _, name := range []string{"", ";@abc", "@@abc", "@example.com;@abc", strings.Repeat("1", amiMaxAoR+1) + ";@a", "10\x1b[31m01;@a", "\xff;@a", "10\u202e01;@a"} {
		var m amiMessage
		m.val[keyObjectName] = []byte(name)
		if c, err := contactOf(&m); err == nil {
			t.Errorf("ObjectName %q: %+v, want an error", name, c)
		}
	}
}

// amiListing is a listing's answer: the Response, the events, and a
// ContactListComplete for n contacts unless n < 0.
func amiListing(events string, n int) string {
	s := "Response: Success\r\nEventList: start\r\nMessage: A listing of Contacts follows, presented as ContactList events\r\n\r\n" + events
	if n >= 0 {
		s += fmt.Sprintf("Event: ContactListComplete\r\nEventList: Complete\r\nListItems: %d\r\n\r\n", n)
	}
	return s
}

const amiEvent = "Event: ContactList\r\nObjectType: contact\r\nObjectName: 1001;@f370e51948e013d60982d9fc3168aa39\r\nUri: sip:1001@192.0.2.10:5060\r\n\r\n"

// TestReadContactsStream: the stream's framing and its mistakes.
func TestReadContactsStream(t *testing.T) {
	good := []Contact{{User: "1001", Source: "192.0.2.10"}}
	for _, tc := range []struct {
		name, in string
		want     []Contact // nil: an error
	}{
		{"one", amiListing(amiEvent, 1), good},
		{"bare LF line ends", strings.ReplaceAll(amiListing(amiEvent, 1), "\r\n", "\n"), good},
		{"events before the Response", "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n" + amiListing(amiEvent, 1), good},
		{"other events inside", amiListing("Event: PeerStatus\r\nPeer: PJSIP/1001\r\n\r\n"+amiEvent, 1), good},
		{"extra empty lines", amiListing("\r\n\r\n"+amiEvent+"\r\n", 1), good},
		{"unread long field", amiListing("Event: ContactList\r\nObjectName: 1001;@a\r\nUserAgent: "+strings.Repeat("x", 3*amiMaxLine)+"\r\nUri: sip:1001@192.0.2.10\r\n\r\n", 1), good},
		{"trailing bytes unread", amiListing(amiEvent, 1) + "garbage without a colon", good},
		{"empty complete", amiListing("", 0), []Contact{}},
		{"no contacts found", "Response: Error\r\nMessage: No Contacts found\n\r\n\r\n", []Contact{}},

		{"empty", "", nil},
		{"no complete", amiListing(amiEvent, -1), nil},
		{"cut inside an event", amiListing(amiEvent, 1)[:200], nil},
		{"cut inside the complete", strings.TrimSuffix(amiListing(amiEvent, 1), "\r\n"), nil},
		{"ListItems wrong", amiListing(amiEvent, 2), nil},
		{"ListItems missing", amiListing(amiEvent, -1) + "Event: ContactListComplete\r\nEventList: Complete\r\n\r\n", nil},
		{"ListItems not a number", amiListing(amiEvent, -1) + "Event: ContactListComplete\r\nListItems: one\r\n\r\n", nil},
		{"line without a colon", amiListing("Event: ContactList\r\nnot a field\r\n\r\n", 1), nil},
		{"html", "<html><body>Not Found</body></html>\r\n\r\n", nil},
		{"long kept field", amiListing("Event: ContactList\r\nUri: sip:"+strings.Repeat("x", amiMaxLine)+"\r\n\r\n", 1), nil},
		{"long line without a colon", amiListing(strings.Repeat("x", 3*amiMaxLine)+"\r\n\r\n", 1), nil},
		{"a second Response", amiListing("Response: Success\r\n\r\n", 0), nil},
		{"unknown Response", "Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n", nil},
		{"a message without Response or Event", "Foo: bar\r\n\r\n", nil},
		{"event without ObjectName", amiListing("Event: ContactList\r\nUri: sip:1@192.0.2.1\r\n\r\n", 1), nil},
		{"permission denied", "Response: Error\r\nMessage: Permission denied\r\n\r\n", nil},
		{"other error", "Response: Error\r\nMessage: Could not get Contacts\n\r\n\r\n", nil},
	} {
		got, err := readContacts(strings.NewReader(tc.in))
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%s: %+v, want an error", tc.name, got)
		case tc.want != nil && (err != nil || !slices.Equal(got, tc.want) || got == nil):
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}
}

// allocated is the heap bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// repeatReader is head, then unit count times (forever when count < 0),
// without holding more than one unit.
type repeatReader struct {
	head, unit []byte
	count      int
	off        int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.head) > 0 {
			k := copy(p[n:], r.head)
			r.head = r.head[k:]
			n += k
			continue
		}
		if r.count == 0 {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		k := copy(p[n:], r.unit[r.off:])
		n += k
		r.off += k
		if r.off == len(r.unit) {
			r.off = 0
			if r.count > 0 {
				r.count--
			}
		}
	}
	return n, nil
}

// TestReadContactsLongLine: a line of 10 MiB without a newline, of a field
// read, of a field skipped or with no colon at all, costs a buffer, not
// the line.
func TestReadContactsLongLine(t *testing.T) {
	const size = 10 << 20
	for name, head := range map[string]string{
		"kept field":  amiListing("Event: ContactList\r\nObjectName: ", -1),
		"other field": amiListing("Event: ContactList\r\nUserAgent: ", -1),
		"no colon":    amiListing("", -1),
		"response":    "Response: ",
	} {
		t.Run(name, func(t *testing.T) {
			r := &countingReader{r: &repeatReader{head: []byte(head), unit: []byte("x"), count: size}}
			var err error
			n := allocated(func() { _, err = readContacts(r) })
			if err == nil {
				t.Fatal("no error")
			}
			if n > 256<<10 {
				t.Errorf("%d bytes allocated for a %d-byte line", n, size)
			}
			t.Logf("%v; %d bytes read, %d allocated", err, r.n, n)
		})
	}
}

// TestReadContactsTooMany: a listing of a million contacts stops at
// contact MaxContacts+1 with ErrTooManyContacts: the reading stops there,
// and the memory is that of MaxContacts contacts.
func TestReadContactsTooMany(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 200000 contacts")
	}
	event := []byte(amiEvent)
	head := []byte(amiListing("", -1))
	r := &countingReader{r: &repeatReader{head: head, unit: event, count: 1_000_000}}
	var err error
	n := allocated(func() { _, err = readContacts(r) })
	if !errors.Is(err, ErrTooManyContacts) {
		t.Fatalf("%v, want ErrTooManyContacts", err)
	}
	// Read: the head, MaxContacts+1 events, and the reader's buffer ahead.
	if limit := int64(len(head) + (MaxContacts+1)*len(event) + amiMaxLine); r.n > limit {
		t.Errorf("%d bytes read, want at most %d", r.n, limit)
	}
	// Each contact kept costs its Contact (48 bytes, in a slice doubling
	// up to 2^18 of them: 25 MiB on the way) and its strings (a few dozen
	// bytes): about 40 MiB in all. A reader keeping the million contacts
	// would allocate over 130 MiB; one holding the whole stream, 120 MiB
	// for the bytes alone.
	if n > 64<<20 {
		t.Errorf("%d bytes allocated for %d contacts", n, MaxContacts)
	}
	t.Logf("%d bytes read, %d allocated", r.n, n)
}

// TestReadContactsMaxBody: more than the byte limit is an error, however
// it is made of, with the limit's bytes read and no more.
func TestReadContactsMaxBody(t *testing.T) {
	const limit = 1 << 20
	for name, unit := range map[string]string{
		"other events": "Event: PeerStatus\r\nPeer: PJSIP/1001\r\n\r\n",
		"empty lines":  "\r\n",
		"long lines":   "Event: X\r\nUserAgent: " + strings.Repeat("y", 100_000) + "\r\n\r\n",
	} {
		r := &countingReader{r: &repeatReader{head: []byte(amiListing("", -1)), unit: []byte(unit), count: -1}}
		_, err := readContactsLimit(r, limit)
		if !errors.Is(err, errAMITooLarge) {
			t.Errorf("%s: %v, want errAMITooLarge", name, err)
		}
		if r.n > limit+1 {
			t.Errorf("%s: %d bytes read", name, r.n)
		}
	}
}

// streamingManager answers a Login, then PJSIPShowContacts with the
// Response and then whatever more writes, in a session of its own.
func streamingManager(t *testing.T, more func(w io.Writer, flush func(), done <-chan struct{})) *httptest.Server {
	m, srv := newAMIManager(t, "contacts-two")
	m.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-type", "text/plain")
		_, _ = io.WriteString(w, amiListing("", -1))
		flush := func() { _ = http.NewResponseController(w).Flush() }
		flush()
		more(w, flush, r.Context().Done())
	}
	return srv
}

// TestAsteriskMillionContacts: over HTTP, a million contacts end at
// MaxContacts+1 with ErrTooManyContacts, the stream left unread.
func TestAsteriskMillionContacts(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 200000 contacts")
	}
	var written atomic.Int64
	srv := streamingManager(t, func(w io.Writer, flush func(), done <-chan struct{}) {
		bw := bufio.NewWriterSize(w, 64<<10)
		for range 1_000_000 {
			n, err := bw.WriteString(amiEvent)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		_ = bw.Flush()
	})
	_, err := newTestAsterisk(srv).Contacts(testContext(t, 30*time.Second))
	var de *device.Error
	if !errors.Is(err, ErrTooManyContacts) || !errors.As(err, &de) || de.Reason != device.ReasonTooLarge {
		t.Fatalf("%v, want ErrTooManyContacts", err)
	}
	if all := int64(1_000_000 * len(amiEvent)); written.Load() > all/2 {
		t.Errorf("the server wrote %d of %d bytes: the client read past MaxContacts", written.Load(), all)
	}
}

// TestAsteriskEndlessBody: a body that never ends is ended by the
// context, as a timeout.
func TestAsteriskEndlessBody(t *testing.T) {
	srv := streamingManager(t, func(w io.Writer, flush func(), done <-chan struct{}) {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := io.WriteString(w, "Event: PeerStatus\r\nPeer: PJSIP/1001\r\n\r\n"); err != nil {
				return
			}
			flush()
		}
	})
	start := time.Now()
	_, err := newTestAsterisk(srv).Contacts(testContext(t, 300*time.Millisecond))
	if device.ReasonOf(err) != device.ReasonTimeout {
		t.Errorf("%v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestAsteriskHangingServer: a manager that answers nothing, or sends
// headers and then nothing, is a timeout when the context ends.
func TestAsteriskHangingServer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for name, headers := range map[string]bool{"silent": false, "headers only": true} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body) // so the server sees the client leave
				if headers {
					w.Header().Set("Content-type", "text/plain")
					w.WriteHeader(http.StatusOK)
					_ = http.NewResponseController(w).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			}))
			defer srv.Close()
			start := time.Now()
			_, err := newTestAsterisk(srv).Contacts(testContext(t, 200*time.Millisecond))
			if device.ReasonOf(err) != device.ReasonTimeout {
				t.Errorf("%v, want a timeout", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestAsteriskMalformedAnswers: hostile listings over HTTP are decode
// errors that quote none of the answer.
func TestAsteriskMalformedAnswers(t *testing.T) {
	const marker = "Qm7-Marker"
	for name, body := range map[string]string{
		"line without a colon": amiListing("Event: ContactList\r\n"+marker+"\r\n\r\n", 1),
		"truncated":            amiListing("Event: ContactList\r\nObjectName: "+marker, -1),
		"ListItems wrong":      amiListing(amiEvent, 7),
		"bad aor":              amiListing("Event: ContactList\r\nObjectName: \x1b"+marker+";@a\r\n\r\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			m, srv := newAMIManager(t, "contacts-two")
			m.answer = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-type", "text/plain")
				_, _ = io.WriteString(w, body)
			}
			_, err := newTestAsterisk(srv).Contacts(testContext(t, 5*time.Second))
			if device.ReasonOf(err) != device.ReasonDecode || strings.Contains(err.Error(), marker) {
				t.Errorf("%v", err)
			}
		})
	}
}

// FuzzAsteriskContacts: whatever the answer, the reader does not panic,
// keeps its bounds, and every contact it returns has a user and a Source
// that is empty or an IP address in netip's text form; no error quotes
// the answer.
func FuzzAsteriskContacts(f *testing.F) {
	const marker = "Zq9-Fuzz-Marker"
	for _, name := range []string{"contacts-two", "contacts-none", "contacts-error", "permission-denied", "login-accepted"} {
		f.Add(loadAMIFixture(f, name).body)
	}
	f.Add([]byte(amiListing(amiEvent, 1)))
	f.Add([]byte(amiListing("Event: ContactList\r\nObjectName: "+marker+"@example.com;@a\r\nUri: sip:x@[::ffff:10.0.0.1]\r\nViaAddr: [fe80::1%eth0]\r\n\r\n", 1)))
	f.Add([]byte(amiListing("Event: ContactList\r\n"+marker+"\r\n\r\n", 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		contacts, err := readContacts(bytes.NewReader(in))
		if err != nil {
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("error quotes the answer: %v", err)
			}
			return
		}
		if len(contacts) > MaxContacts {
			t.Fatalf("%d contacts", len(contacts))
		}
		for _, c := range contacts {
			if c.User == "" {
				t.Fatalf("contact without an aor: %+v", c)
			}
			if len(c.User)+len(c.Domain) > amiMaxAoR {
				t.Fatalf("aor longer than %d: %+v", amiMaxAoR, c)
			}
			if c.Source == "" {
				continue
			}
			a, err := netip.ParseAddr(c.Source)
			if err != nil || a.String() != c.Source || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("Source %q is not an IP address in netip's form", c.Source)
			}
		}
	})
}
