// Asterisk's registrar, read through the manager interface (AMI) over
// HTTP: a Login, then the action PJSIPShowContacts, whose answer is a
// stream of ContactList events ended by ContactListComplete.
//
// Where each fact comes from. "src" is the asterisk/asterisk repository
// at f0c1c1a7b79b0f8cc0311649bf36824cbeee30a9; "docs" is
// asterisk/documentation at 382db781db3bfde0b6364e6febac4a8fddd6c469
// (published as docs.asterisk.org).
//
// Documented:
//   - PJSIPShowContacts raises one ContactList event per contact, then a
//     ContactListComplete with EventList and ListItems: src
//     res/res_pjsip/pjsip_manager.xml L1163-1195;
//     docs.asterisk.org/Asterisk_18_Documentation/API_Documentation/AMI_Actions/PJSIPShowContacts/.
//   - ContactList's fields, among them ObjectName ("the name of this
//     object"), Uri ("this contact's URI"), ViaAddr ("IP address of the
//     last Via header in REGISTER request. Will only appear in the event if
//     available"), Endpoint: src res/res_pjsip/pjsip_manager.xml L835-912;
//     docs.asterisk.org/Asterisk_18_Documentation/API_Documentation/AMI_Events/ContactList/.
//   - Messages are "Key: value" lines ended by an empty line (\r\n): docs
//     docs/Configuration/Interfaces/Asterisk-Manager-Interface-AMI/AMI-Command-Syntax.md.
//   - Login takes Username, Secret and Events: src main/manager_doc.xml
//     L64-99.
//   - AMI over HTTP: /rawman answers in the TCP interface's format, and a
//     login's session lives in a cookie for httptimeout seconds: docs
//     .../Asynchronous-Javascript-Asterisk-Manager-AJAM/Allow-Manager-Access-via-HTTP.md;
//     src configs/samples/manager.conf.sample L76-82 (httptimeout, 60 s
//     by default, renewed by each action).
//   - ARI's Endpoint model (technology, resource, state, channel_ids) has
//     no contact address: src rest-api/api-docs/endpoints.json L362-394.
//     Hence AMI, not ARI.
//
// Read in the source, not in the documentation pages:
//   - The documentation shows AMI over HTTP with GET and the parameters in
//     the query. A POST is read too: for POST, generic_http_callback takes
//     the parameters from the body alone (src main/manager.c L8532-8551),
//     read only when its Content-Type is application/x-www-form-urlencoded
//     (src main/http.c L1463-1489). The login goes as such a POST, so the
//     secret is in no URL, nor in any proxy's or server's access log.
//   - Every answer is HTTP 200, Content-type text/plain for rawman, with
//     Set-Cookie: mansession_id="%08x"; Version=1; Max-Age=<httptimeout>:
//     src main/manager.c L8570-8575, L8637; the cookie is read back with
//     its quotes stripped: src main/http.c L247-261, L1596-1627.
//   - An action other than Login, Logoff or Challenge on a session that is
//     not logged in (none, or one expired) answers "Response: Error",
//     "Message: Permission denied": src main/manager.c L7116-7126; so does
//     an action the account lacks the authority for (L7156-7183), and
//     PJSIPShowContacts is registered with EVENT_FLAG_SYSTEM (src
//     res/res_pjsip/pjsip_options.c L2976): the account needs
//     write = system.
//   - A rejected login answers "Response: Error", "Message: Authentication
//     failed"; an accepted one "Response: Success", "Message:
//     Authentication accepted": src main/manager.c L3404-3423.
//   - With no contact at all, PJSIPShowContacts answers "Response: Error",
//     "Message: No Contacts found" (the message ends in its own \n); a
//     listing starts with "Response: Success", "EventList: start": src
//     res/res_pjsip/pjsip_options.c L2456-2483, main/manager.c L1885-2010.
//   - A contact's ObjectName is its sorcery id, "<aor>;@<md5 of the URI>"
//     for a registered contact ("<aor>@@<md5>" for one configured in the
//     aor, which is not listed: PJSIPShowContacts reads the sorcery store,
//     where only registered contacts are): src res/res_pjsip/location.c
//     L119-145, L355-366; res/res_pjsip/pjsip_options.c L2403-2411. The
//     fields come from ast_sip_sorcery_object_to_ami, field names
//     camel-cased (via_addr: ViaAddr): src
//     res/res_pjsip/pjsip_configuration.c L1848-1890.
//   - The aor a REGISTER lands in is the one named "<user>@<domain>" of
//     its To URI, else "<user>" (else the same for the digest user name):
//     src res/res_pjsip_registrar.c L1118-1235. So the aor's name is the
//     contact's user, with the domain after an @ when it has one.
//   - ViaAddr is the sent-by host of the REGISTER's last Via (the one the
//     device added): what the device says it sent from, not where the
//     packet came from: src res/res_pjsip_registrar.c L857-869. The Uri's
//     host is the device's Contact, rewritten to the packet's source
//     address and port when the endpoint has rewrite_contact: src
//     res/res_pjsip_nat.c L70-80, res/res_pjsip/pjsip_config.xml L773-786.
//
// Inferred:
//   - Source is the Uri's host when it is an IP address (the address the
//     registration came from when rewrite_contact is on, the device's own
//     Contact otherwise), else ViaAddr when that is one (a Contact with a
//     host name). Asterisk records no received-from address beside these.
//   - pjsip keeps an IPv6 sent-by without its brackets, so ViaAddr of an
//     IPv6 device is a bare address; brackets are stripped if present.
//   - The aor's name holds no "@" other than the one before its domain
//     (a SIP user part has none unescaped).

package pbx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/internal/safetext"
)

// Bounds of an Asterisk manager answer, beside MaxBody and MaxContacts.
const (
	// amiMaxLine is the longest line of a field the client reads; a longer
	// line of another field is skipped, never held.
	amiMaxLine = 8 << 10
	// amiMaxLogin is the most bytes a Login's answer may have.
	amiMaxLogin = 64 << 10
	// amiMaxAoR is the longest aor name taken from an ObjectName: Asterisk
	// caps a sorcery id at 128 bytes (MAX_OBJECT_FIELD), twice is ample.
	amiMaxAoR = 256
	// amiExcerpt is the most bytes of the manager's words quoted in an
	// error, before escaping.
	amiExcerpt = 64
	// amiTimeout bounds a Contacts call whose context has no deadline.
	amiTimeout = time.Minute
)

// Operations, as errors name them.
const (
	opAMILogin    = "AMI Login"
	opAMIContacts = "AMI PJSIPShowContacts"
)

var (
	// errAMIDenied is the manager's "Permission denied": the session is not
	// logged in (expired), or the account may not run the action.
	errAMIDenied = errors.New("the manager answered Permission denied")
	// errAMITooLarge is an answer over its byte limit.
	errAMITooLarge = errors.New("answer larger than the exporter reads")
	// errAMITruncated is an answer that ended inside a message or before
	// the listing's end.
	errAMITruncated = errors.New("answer ended before ContactListComplete")
)

// asterisk reads an Asterisk's PJSIP contacts over AMI over HTTP.
type asterisk struct {
	url      string
	name     string // url without user information, query or fragment
	username string
	password device.Secret
	client   *http.Client

	mu sync.Mutex
	// session is the mansession_id of the last accepted login, reused
	// while the manager takes it; "" when there is none.
	session device.Secret
}

// NewAsterisk returns the Registrar of an Asterisk's PJSIP contacts, read
// through the manager interface over HTTP: url is the manager's rawman
// address (http://10.0.0.6:8088/rawman, with http.conf's prefix if it has
// one), username and password an account of manager.conf with write
// permission system. Each Contacts logs in when it holds no session that
// the manager still takes (at most once a call), with the password in a
// POST body, never in a URL; use https where the network is not trusted,
// as the manager's plain-text login sends the password as it is. The
// session is left to expire (manager.conf's httptimeout), not logged off.
// A contact's User and Domain are its aor's name (user, or user@domain);
// its Source is its URI's host when that is an IP address (the address
// the REGISTER came from, with the endpoint's rewrite_contact), else the
// REGISTER's Via address. client's transport and timeout are used; redirects are not followed (a
// redirected login would carry the password elsewhere) and no cookie jar
// is used.
func NewAsterisk(url, username string, password device.Secret, client *http.Client) Registrar {
	var c http.Client
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = nil
	return &asterisk{url: url, name: printableURL(url), username: username, password: password, client: &c}
}

// printableURL is u without user information, query and fragment, made
// safe to print; "<invalid url>" when it does not parse.
func printableURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<invalid url>"
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return safetext.Escape(p.String())
}

// Format prints the registrar as its type and URL, whatever the verb, so
// no password nor session reaches a log through %v, %+v or %#v.
func (a *asterisk) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "asterisk registrar %s", a.name)
}

// LogValue implements slog.LogValuer, with the same text as Format.
func (a *asterisk) LogValue() slog.Value {
	return slog.StringValue("asterisk registrar " + a.name)
}

// Contacts logs in if need be, runs PJSIPShowContacts and returns its
// contacts. A login the manager rejects, and a listing it refuses right
// after a login, are device.ReasonAuth errors.
func (a *asterisk) Contacts(ctx context.Context) ([]Contact, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, amiTimeout)
		defer cancel()
	}
	session := a.currentSession()
	fresh := false
	if session == "" {
		s, err := a.login(ctx)
		if err != nil {
			return nil, err
		}
		session, fresh = s, true
	}
	contacts, err := a.showContacts(ctx, session)
	if errors.Is(err, errAMIDenied) && !fresh {
		// The session expired: one login, one more try.
		a.forget(session)
		if session, err = a.login(ctx); err != nil {
			return nil, err
		}
		contacts, err = a.showContacts(ctx, session)
	}
	if errors.Is(err, errAMIDenied) {
		a.forget(session)
		return nil, &device.Error{Reason: device.ReasonAuth, Op: opAMIContacts,
			Err: errors.New("the manager answered Permission denied right after a login: the account needs write = system")}
	}
	if device.ReasonOf(err) == device.ReasonAuth {
		a.forget(session)
	}
	if err != nil {
		return nil, err
	}
	return contacts, nil
}

func (a *asterisk) currentSession() device.Secret {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.session
}

// forget drops session if it is still the current one.
func (a *asterisk) forget(session device.Secret) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session == session {
		a.session = ""
	}
}

// login sends a Login and returns the session it opened.
func (a *asterisk) login(ctx context.Context) (device.Secret, error) {
	form := url.Values{
		"Action":   {"Login"},
		"Username": {a.username},
		"Secret":   {a.password.Reveal()},
		"Events":   {"off"}, // no event in this session's answers
	}
	resp, err := a.post(ctx, opAMILogin, form, "")
	if err != nil {
		return "", err
	}
	defer drain(resp.Body)
	r := newAMIReader(resp.Body, amiMaxLogin)
	var m amiMessage
	if err := r.response(&m); err != nil {
		return "", a.readError(ctx, opAMILogin, err)
	}
	switch answer := m.value(keyResponse); {
	case strings.EqualFold(answer, "Success"):
	case strings.EqualFold(answer, "Error"):
		return "", &device.Error{Reason: device.ReasonAuth, Op: opAMILogin,
			Err: fmt.Errorf("the manager rejected the login: %s", a.excerpt(m.value(keyMessage)))}
	default:
		return "", &device.Error{Reason: device.ReasonDecode, Op: opAMILogin,
			Err: fmt.Errorf("unexpected Response %s", a.excerpt(answer))}
	}
	session, ok := sessionCookie(resp)
	if !ok {
		return "", &device.Error{Reason: device.ReasonDecode, Op: opAMILogin,
			Err: errors.New("login accepted without a mansession_id cookie (8 hex digits)")}
	}
	a.mu.Lock()
	a.session = session
	a.mu.Unlock()
	return session, nil
}

// sessionCookie returns the mansession_id resp sets, when it is what
// Asterisk sends: 1 to 8 hex digits (a uint32 in %08x).
func sessionCookie(resp *http.Response) (device.Secret, bool) {
	for _, c := range resp.Cookies() {
		if c.Name != "mansession_id" {
			continue
		}
		v := c.Value
		if len(v) < 1 || len(v) > 8 {
			return "", false
		}
		if _, err := strconv.ParseUint(v, 16, 32); err != nil {
			return "", false
		}
		return device.Secret(v), true
	}
	return "", false
}

// showContacts runs PJSIPShowContacts in session. A Permission denied is
// errAMIDenied.
func (a *asterisk) showContacts(ctx context.Context, session device.Secret) ([]Contact, error) {
	resp, err := a.post(ctx, opAMIContacts, url.Values{"Action": {"PJSIPShowContacts"}}, session)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	contacts, err := readContacts(resp.Body)
	var refused *amiRefusal
	switch {
	case err == nil:
		return contacts, nil
	case errors.Is(err, errAMIDenied):
		return nil, err
	case errors.As(err, &refused):
		return nil, &device.Error{Reason: device.ReasonDecode, Op: opAMIContacts,
			Err: fmt.Errorf("the manager answered Error: %s", a.excerpt(refused.message))}
	}
	return nil, a.readError(ctx, opAMIContacts, err)
}

// post sends form to the manager, with the session's cookie when there is
// one, and returns a 200 answer in text/plain (rawman's). Every other
// answer is closed and is an error: 401 and 403 (a proxy's, or http.conf's
// for /arawman) are device.ReasonAuth.
func (a *asterisk) post(ctx context.Context, op string, form url.Values, session device.Secret) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &device.Error{Reason: device.ReasonConnection, Op: op, Err: fmt.Errorf("cannot make a request to %s", a.name)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if session != "" {
		req.Header.Set("Cookie", "mansession_id="+session.Reveal())
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, devhttp.Redact(devhttp.TransportError(op, err), a.secrets())
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		drain(resp.Body)
		return nil, &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("HTTP %d", code), Status: code}
	case code != http.StatusOK:
		drain(resp.Body)
		return nil, devhttp.StatusError(op, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
			drain(resp.Body)
			return nil, &device.Error{Reason: device.ReasonDecode, Op: op,
				Err: fmt.Errorf("the answer's Content-Type %s is not rawman's text/plain (is the url the manager's /rawman?)", a.excerpt(ct))}
		}
	}
	return resp, nil
}

// drain reads what is left of a body, a few KiB at most, so its
// connection may be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

// readError is the device.Error of an answer that could not be read.
func (a *asterisk) readError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, ErrTooManyContacts), errors.Is(err, errAMITooLarge):
		return &device.Error{Reason: device.ReasonTooLarge, Op: op, Err: err}
	case ctx.Err() != nil:
		return &device.Error{Reason: device.ReasonTimeout, Op: op, Err: ctx.Err()}
	case errors.Is(err, errAMITruncated):
		return &device.Error{Reason: device.ReasonDecode, Op: op, Err: err}
	}
	var de *amiDecodeError
	if errors.As(err, &de) {
		return &device.Error{Reason: device.ReasonDecode, Op: op, Err: err}
	}
	return devhttp.Redact(devhttp.TransportError(op, err), a.secrets())
}

// secrets are the values no error may quote: the password in the forms it
// travels in, and the session.
func (a *asterisk) secrets() []string {
	s := devhttp.SecretForms(a.username, a.password.Reveal())
	if session := a.currentSession(); session != "" {
		s = append(s, session.Reveal())
	}
	return s
}

// excerpt is the manager's text s made safe to quote: secrets redacted,
// cut to amiExcerpt bytes, escaped, quoted.
func (a *asterisk) excerpt(s string) string {
	s = device.RedactValues(s, a.secrets())
	if len(s) > amiExcerpt {
		cut := amiExcerpt
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return `"` + safetext.Escape(s) + `"`
}

// amiRefusal is a Response: Error other than Permission denied and No
// Contacts found.
type amiRefusal struct{ message string }

func (e *amiRefusal) Error() string { return "the manager answered Error" }

// amiDecodeError is an answer that is not AMI. It quotes none of it.
type amiDecodeError struct{ msg string }

func (e *amiDecodeError) Error() string { return e.msg }

func decodeErrorf(format string, args ...any) error {
	return &amiDecodeError{msg: fmt.Sprintf(format, args...)}
}

// readContacts reads PJSIPShowContacts's answer from r, at most MaxBody
// bytes and MaxContacts contacts: the Response (an Error "No Contacts
// found" is an empty listing), then the ContactList events up to
// ContactListComplete, whose ListItems must count them. Other events are
// skipped. Nothing after ContactListComplete is read.
func readContacts(r io.Reader) ([]Contact, error) { return readContactsLimit(r, MaxBody) }

// readContactsLimit is readContacts with limit bytes in place of MaxBody.
func readContactsLimit(r io.Reader, limit int64) ([]Contact, error) {
	ar := newAMIReader(r, limit)
	var m amiMessage
	if err := ar.response(&m); err != nil {
		return nil, err
	}
	switch resp := m.value(keyResponse); {
	case strings.EqualFold(resp, "Success"):
	case strings.EqualFold(resp, "Error"):
		switch msg := m.value(keyMessage); {
		case strings.EqualFold(msg, "No Contacts found"):
			return []Contact{}, nil
		case strings.EqualFold(msg, "Permission denied"):
			return nil, errAMIDenied
		default:
			return nil, &amiRefusal{message: msg}
		}
	default:
		return nil, decodeErrorf("unexpected Response (want Success or Error)")
	}
	var contacts []Contact
	for {
		err := ar.next(&m)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w (%d ContactList events read)", errAMITruncated, len(contacts))
		}
		if err != nil {
			return nil, err
		}
		switch {
		case m.isEvent("ContactList"):
			if len(contacts) == MaxContacts {
				return nil, ErrTooManyContacts
			}
			c, err := contactOf(&m)
			if err != nil {
				return nil, fmt.Errorf("ContactList event %d: %w", len(contacts)+1, err)
			}
			if len(contacts) == cap(contacts) {
				// Doubling: append's growth of a large slice, by a quarter,
				// would allocate five times the final slice on the way.
				contacts = slices.Grow(contacts, max(len(contacts), 64))
			}
			contacts = append(contacts, c)
		case m.isEvent("ContactListComplete"):
			n, err := strconv.Atoi(m.value(keyListItems))
			if err != nil || n != len(contacts) {
				return nil, decodeErrorf("ContactListComplete's ListItems is not the %d ContactList events read", len(contacts))
			}
			if contacts == nil {
				contacts = []Contact{}
			}
			return contacts, nil
		case m.seen[keyResponse]:
			return nil, decodeErrorf("a second Response inside the listing")
		}
	}
}

// contactOf maps a ContactList event: the aor before ObjectName's ";@"
// (or "@@") gives User and Domain (split at the aor's @), Uri's host or
// else ViaAddr gives Source.
func contactOf(m *amiMessage) (Contact, error) {
	name := m.val[keyObjectName]
	if len(name) == 0 {
		return Contact{}, decodeErrorf("no ObjectName")
	}
	aor := name
	if i := bytes.Index(aor, []byte(";@")); i >= 0 {
		aor = aor[:i]
	} else if i := bytes.Index(aor, []byte("@@")); i >= 0 {
		aor = aor[:i]
	}
	switch {
	case len(aor) == 0:
		return Contact{}, decodeErrorf("ObjectName names no aor")
	case len(aor) > amiMaxAoR:
		return Contact{}, decodeErrorf("ObjectName's aor is longer than %d bytes", amiMaxAoR)
	case !printable(aor):
		return Contact{}, decodeErrorf("ObjectName's aor is not printable UTF-8")
	}
	var c Contact
	if i := bytes.LastIndexByte(aor, '@'); i >= 0 {
		c.User, c.Domain = string(aor[:i]), string(aor[i+1:])
	} else {
		c.User = string(aor)
	}
	if c.User == "" {
		return Contact{}, decodeErrorf("ObjectName's aor has no user")
	}
	c.Source = amiContactSource(m.val[keyUri], m.val[keyViaAddr])
	return c, nil
}

// printable reports whether b is UTF-8 of printable characters (no
// control, format or invisible ones).
func printable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n <= 1) || !unicode.IsPrint(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

// amiContactSource is the IP address of uri's host, else of via, in
// netip.Addr's text form (an IPv4-mapped IPv6 address as IPv4, no zone);
// "" when neither is an IP address.
func amiContactSource(uri, via []byte) string {
	if a, ok := parseIP(uriHost(uri)); ok {
		return a
	}
	via = bytes.TrimSpace(via)
	if len(via) > 1 && via[0] == '[' && via[len(via)-1] == ']' {
		via = via[1 : len(via)-1]
	}
	if a, ok := parseIP(via); ok {
		return a
	}
	return ""
}

// uriHost returns the host of a sip: or sips: URI, without brackets; nil
// for another scheme.
func uriHost(uri []byte) []byte {
	uri = bytes.TrimSpace(uri)
	uri = bytes.TrimPrefix(uri, []byte("<"))
	var rest []byte
	switch {
	case len(uri) >= 4 && bytes.EqualFold(uri[:4], []byte("sip:")):
		rest = uri[4:]
	case len(uri) >= 5 && bytes.EqualFold(uri[:5], []byte("sips:")):
		rest = uri[5:]
	default:
		return nil
	}
	// The user part may hold ';' and '?' but no unescaped '@'; the
	// parameters and headers after the host hold no '@'.
	if i := bytes.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '[' {
		if i := bytes.IndexByte(rest, ']'); i > 0 {
			return rest[1:i]
		}
		return nil
	}
	if i := bytes.IndexAny(rest, ":;?>"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// parseIP parses b as an IP address, in netip.Addr's text form without a
// zone, an IPv4-mapped address unmapped.
func parseIP(b []byte) (string, bool) {
	if len(b) == 0 || len(b) > len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") {
		return "", false
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return "", false
	}
	return a.WithZone("").Unmap().String(), true
}

// amiKey names a field the client reads; the others are skipped.
type amiKey int

const (
	keyResponse amiKey = iota
	keyEvent
	keyMessage
	keyObjectName
	keyUri
	keyViaAddr
	keyListItems
	numAMIKeys
)

var amiKeyNames = [numAMIKeys][]byte{
	[]byte("Response"), []byte("Event"), []byte("Message"), []byte("ObjectName"),
	[]byte("Uri"), []byte("ViaAddr"), []byte("ListItems"),
}

// amiMessage holds the fields read of one message; the buffers are reused
// from one message to the next.
type amiMessage struct {
	val  [numAMIKeys][]byte
	seen [numAMIKeys]bool
}

func (m *amiMessage) reset() {
	for k := range m.val {
		m.val[k] = m.val[k][:0]
		m.seen[k] = false
	}
}

func (m *amiMessage) value(k amiKey) string { return string(m.val[k]) }

func (m *amiMessage) isEvent(name string) bool {
	return m.seen[keyEvent] && strings.EqualFold(string(m.val[keyEvent]), name)
}

// amiReader reads an answer message by message: lines end in CRLF (or a
// bare LF), a message ends at an empty line. At most limit bytes are read
// in all; a line of a field the client reads is at most amiMaxLine bytes,
// a longer line of another field is skipped.
type amiReader struct {
	br   *bufio.Reader
	line int
}

func newAMIReader(r io.Reader, limit int64) *amiReader {
	return &amiReader{br: bufio.NewReaderSize(&limitReader{r: r, left: limit}, amiMaxLine)}
}

// response reads messages up to the first that has a Response field,
// skipping events before it.
func (r *amiReader) response(m *amiMessage) error {
	for {
		err := r.next(m)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no Response", errAMITruncated)
		}
		if err != nil {
			return err
		}
		if m.seen[keyResponse] {
			return nil
		}
		if !m.seen[keyEvent] {
			return decodeErrorf("a message that is neither a Response nor an Event")
		}
	}
}

// next reads the next message into m. At the end of the answer between
// messages it returns io.EOF; inside one, errAMITruncated.
func (r *amiReader) next(m *amiMessage) error {
	m.reset()
	lines := 0
	for {
		b, err := r.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			colon := bytes.IndexByte(b, ':')
			if colon < 0 {
				return decodeErrorf("line %d is not Key: Value", r.line+1)
			}
			if k := keyOf(b[:colon]); k >= 0 {
				return decodeErrorf("line %d (%s) is longer than %d bytes", r.line+1, amiKeyNames[k], amiMaxLine)
			}
			if err := r.skipLine(); err != nil {
				return err
			}
			r.line++
			lines++
			continue
		case errors.Is(err, io.EOF):
			if len(b) == 0 && lines == 0 {
				return io.EOF
			}
			return fmt.Errorf("%w (inside a message)", errAMITruncated)
		case err != nil:
			return err
		}
		r.line++
		b = bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))
		if len(b) == 0 {
			if lines == 0 {
				continue // an empty line between messages
			}
			return nil
		}
		lines++
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return decodeErrorf("line %d is not Key: Value", r.line)
		}
		if k := keyOf(b[:colon]); k >= 0 && !m.seen[k] {
			m.seen[k] = true
			m.val[k] = append(m.val[k], bytes.TrimSpace(b[colon+1:])...)
		}
	}
}

// skipLine discards the rest of a line longer than the buffer.
func (r *amiReader) skipLine() error {
	for {
		_, err := r.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w (inside a line)", errAMITruncated)
		}
		return err
	}
}

// keyOf returns the amiKey named by key, -1 for another.
func keyOf(key []byte) amiKey {
	key = bytes.TrimSpace(key)
	for k, name := range amiKeyNames {
		if bytes.EqualFold(key, name) {
			return amiKey(k)
		}
	}
	return -1
}

// limitReader reads from r up to left bytes; one more byte is
// errAMITooLarge.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errAMITooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
