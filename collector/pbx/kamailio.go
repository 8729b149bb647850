package pbx

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/basip/basip_exporter/collector/devhttp"
	"github.com/basip/basip_exporter/collector/device"
)

// Kamailio's usrloc, read with one JSON-RPC call over jsonrpcs's HTTP
// transport (xhttp). Kamailio 5.6.3 answers ul.dump like this (pretty
// printed with tabs; abridged):
//
//	{"jsonrpc": "2.0",
//	 "result": {"Domains": [{"Domain": {
//	   "Domain": "location", "Size": 1024,
//	   "AoRs": [{"Info": {
//	     "AoR": "1001" (with use_domain: "1001@example.org"), "HashID": 924766748,
//	     "Contacts": [{"Contact": {
//	       "Address": "sip:1001@127.0.0.1:5070", "Expires": 3600, "Q": -1,
//	       "Call-ID": "...", "CSeq": 1, "User-Agent": "...",
//	       "Received": "[not set]" (behind NAT: "sip:127.0.0.1:45186;transport=tcp"),
//	       "Path": "[not set]", "State": "CS_NEW", "Socket": "udp:127.0.0.1:25060",
//	       ... (15 more)}}]}}],
//	   "Stats": {"Records": 4, "Max-Slots": 1}}}]},
//	 "id": 1}
//
// A method it does not know is HTTP 500 "Method Not Found" with the body
// {"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":1}.
// Kamailio itself has no authentication on this endpoint; operators put a
// proxy with HTTP Basic authentication in front of it.
//
// The answer is read as a stream of JSON tokens (encoding/json's
// Decoder.Token), never whole: only AoR, Address and Received are kept,
// every other value is skipped token by token. Below the decoder, jsonGuard
// bounds the bytes (MaxBody), the nesting and the length of any one string
// or literal, and collapses runs of whitespace, so the decoder's buffer
// stays near one token's size whatever the registrar sends.

// kamailioOp names the call in errors.
const kamailioOp = "kamailio ul.dump"

// ulDumpRequest is the JSON-RPC request: all contacts of all usrloc tables.
const ulDumpRequest = `{"jsonrpc":"2.0","method":"ul.dump","id":1}`

// Bounds on one ul.dump answer, besides MaxBody and MaxContacts.
const (
	// ulMaxField is the longest AoR, Address or Received kept. Kamailio
	// 5.6.3 refused to save an AoR of 212 bytes ("Address Of Record too
	// long") and contact URIs of 600 bytes or more ("contact uri is too
	// long"), so a longer one is not from a registrar: the whole answer is
	// an error rather than a contact skipped in silence.
	ulMaxField = 1024
	// ulMaxToken is the longest string or literal the decoder is given,
	// in any field (an unknown field's too): the decoder holds one token
	// whole.
	ulMaxToken = 64 << 10
	// ulMaxDepth is the deepest nesting of arrays and objects read; the
	// answer itself nests eleven deep.
	ulMaxDepth = 32
	// ulMaxErrorBody is how much of a non-200 answer is read, for the
	// JSON-RPC error Kamailio sends with it.
	ulMaxErrorBody = 4 << 10
	// ulMaxMessage is how much of a JSON-RPC error message an error quotes.
	ulMaxMessage = 64
	// ulNotSet is what Kamailio prints for a Received it has not set.
	ulNotSet = "[not set]"
)

// kamailio is the Registrar of a Kamailio.
type kamailio struct {
	url      string
	shown    string // the URL without user, password or query, for printing
	username string
	password device.Secret
	client   *http.Client
}

var _ Registrar = (*kamailio)(nil)

// NewKamailio returns the registrar of the Kamailio whose JSON-RPC endpoint
// (jsonrpcs over xhttp, e.g. http://127.0.0.1:5071/RPC) is rpcURL. With a
// username, each request carries HTTP Basic authentication, for the proxy
// an operator puts in front of Kamailio. client sends the requests; nil is
// a client that follows no redirect. Errors are *device.Error values whose
// text holds neither the password nor the URL.
func NewKamailio(rpcURL, username string, password device.Secret, client *http.Client) Registrar {
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &kamailio{url: rpcURL, shown: shownURL(rpcURL), username: username, password: password, client: client}
}

// String implements fmt.Stringer: the endpoint without credentials.
func (k *kamailio) String() string { return "kamailio registrar " + k.shown }

// GoString implements fmt.GoStringer, so %#v prints no field either.
func (k *kamailio) GoString() string { return k.String() }

// shownURL is rpcURL's scheme, host and path: a user, password, query or
// fragment in it may be a credential.
func shownURL(rpcURL string) string {
	u, err := url.Parse(rpcURL)
	if err != nil {
		return "<invalid URL>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Contacts implements Registrar with one ul.dump.
func (k *kamailio) Contacts(ctx context.Context) ([]Contact, error) {
	contacts, err := k.contacts(ctx)
	if err != nil {
		// The second line after the errors' own care: nothing in them
		// quotes the request, but a hostile endpoint may echo it.
		return nil, devhttp.Redact(err, k.secrets())
	}
	return contacts, nil
}

func (k *kamailio) contacts(ctx context.Context) ([]Contact, *device.Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, strings.NewReader(ulDumpRequest))
	if err != nil { // its text quotes the URL
		return nil, &device.Error{Reason: device.ReasonConnection, Op: kamailioOp, Err: errors.New("the RPC URL is not a valid URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if k.username != "" {
		req.SetBasicAuth(k.username, k.password.Reveal())
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, devhttp.TransportError(kamailioOp, err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, &device.Error{Reason: device.ReasonAuth, Op: kamailioOp, Err: fmt.Errorf("HTTP %d: credentials refused", code), Status: code}
	case code != http.StatusOK:
		msg := fmt.Sprintf("unexpected HTTP status %d", code)
		if r := rpcErrorText(resp.Body, k.secrets()); r != "" {
			msg += " (" + r + ")"
		}
		return nil, &device.Error{Reason: device.ReasonHTTPStatus, Op: kamailioOp, Err: errors.New(msg), Status: code}
	}
	contacts, err := decodeULDump(resp.Body)
	if err != nil {
		var rpc *ulRPCError
		if errors.As(err, &rpc) {
			rpc.secrets = k.secrets()
		}
		return nil, ulError(err)
	}
	return contacts, nil
}

// secrets are the forms the password travels in: itself and the Basic
// authorization's base64.
func (k *kamailio) secrets() []string {
	pw := k.password.Reveal()
	if pw == "" {
		return nil
	}
	return []string{pw, base64.StdEncoding.EncodeToString([]byte(k.username + ":" + pw))}
}

// ulError classifies an error of decodeULDump.
func ulError(err error) *device.Error {
	var (
		re  *ulReadError
		rpc *ulRPCError
	)
	switch {
	case errors.Is(err, ErrTooManyContacts), errors.Is(err, errULTooLarge), errors.Is(err, errULTokenTooLong):
		return &device.Error{Reason: device.ReasonTooLarge, Op: kamailioOp, Err: err}
	case errors.As(err, &rpc):
		return &device.Error{Reason: device.ReasonDecode, Op: kamailioOp, Err: err}
	case errors.As(err, &re) && !errors.Is(err, io.ErrUnexpectedEOF):
		return devhttp.TransportError(kamailioOp, re.err)
	}
	return &device.Error{Reason: device.ReasonDecode, Op: kamailioOp, Err: err}
}

// rpcErrorText reads at most ulMaxErrorBody bytes of a non-200 answer and
// returns its JSON-RPC error as "JSON-RPC error 500: Method Not Found"
// (the message redacted, escaped and cut), or "" when it has none.
func rpcErrorText(body io.Reader, secrets []string) string {
	b := make([]byte, ulMaxErrorBody)
	n, _ := io.ReadFull(body, b)
	b = b[:n]
	var v struct {
		Error *struct {
			Code    json.Number `json:"code"`
			Message string      `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &v) != nil || v.Error == nil {
		return ""
	}
	code, err := strconv.ParseInt(string(v.Error.Code), 10, 64)
	return (&ulRPCError{code: code, hasCode: err == nil, message: v.Error.Message, secrets: secrets}).Error()
}

// ulRPCError is the JSON-RPC error object of an answer.
type ulRPCError struct {
	code    int64
	hasCode bool
	message string   // as sent; Error redacts, escapes and cuts it
	secrets []string // the values Error redacts, besides credential shapes
}

func (e *ulRPCError) Error() string {
	s := "JSON-RPC error"
	if e.hasCode {
		s += " " + strconv.FormatInt(e.code, 10)
	}
	if e.message != "" {
		// Redacted before the cut, so no cut leaves a piece of a secret.
		s += ": " + safeExcerpt(device.RedactValues(e.message, e.secrets), ulMaxMessage)
	}
	return s
}

// decodeULDump reads one ul.dump answer from r (the HTTP body) and returns
// its contacts. It reads no further than the end of the answer's JSON
// object, nor past MaxBody bytes, and stops at the contact after the
// MaxContacts-th.
func decodeULDump(r io.Reader) ([]Contact, error) {
	d := &ulDecoder{dec: json.NewDecoder(&jsonGuard{r: r, left: MaxBody}), max: MaxContacts}
	d.dec.UseNumber() // numbers are skipped; no float parsing
	if err := d.answer(); err != nil {
		return nil, err
	}
	if d.contacts == nil {
		d.contacts = []Contact{}
	}
	return d.contacts, nil
}

// ulDecoder walks the answer's tokens.
type ulDecoder struct {
	dec      *json.Decoder
	contacts []Contact
	max      int // MaxContacts, smaller in tests
}

// answer reads {"jsonrpc":..,"result":{..},"id":..} or an error object.
func (d *ulDecoder) answer() error {
	if err := d.open('{', "the answer"); err != nil {
		return err
	}
	var result bool
	err := d.object(func(key string) error {
		switch key {
		case "result":
			result = true
			return d.result()
		case "error":
			return d.rpcError()
		}
		return d.skip()
	})
	if err == nil && !result {
		err = errors.New("the answer has no result")
	}
	return err
}

func (d *ulDecoder) rpcError() error {
	if err := d.open('{', "error"); err != nil {
		return err
	}
	e := &ulRPCError{}
	err := d.object(func(key string) error {
		switch key {
		case "code":
			tok, err := d.token()
			if err != nil {
				return err
			}
			if n, ok := tok.(json.Number); ok {
				e.code, err = strconv.ParseInt(string(n), 10, 64)
				e.hasCode = err == nil
				return nil
			}
			return typeError("error.code", tok, "a number")
		case "message":
			var err error
			e.message, err = d.text("error.message")
			return err
		}
		return d.skip()
	})
	if err != nil {
		return err
	}
	return e
}

func (d *ulDecoder) result() error {
	if err := d.open('{', "result"); err != nil {
		return err
	}
	var domains bool
	err := d.object(func(key string) error {
		if key != "Domains" {
			return d.skip()
		}
		domains = true
		return d.array("Domains", d.domain)
	})
	if err == nil && !domains {
		err = errors.New("result has no Domains")
	}
	return err
}

// domain reads {"Domain":{"Domain":"location",...,"AoRs":[...]}}.
func (d *ulDecoder) domain() error {
	if err := d.open('{', "a Domains element"); err != nil {
		return err
	}
	var inner bool
	err := d.object(func(key string) error {
		if key != "Domain" {
			return d.skip()
		}
		inner = true
		if err := d.open('{', "Domain"); err != nil {
			return err
		}
		var aors bool
		err := d.object(func(key string) error {
			if key != "AoRs" {
				return d.skip()
			}
			aors = true
			return d.array("AoRs", d.aor)
		})
		if err == nil && !aors {
			err = errors.New("a Domain has no AoRs")
		}
		return err
	})
	if err == nil && !inner {
		err = errors.New("a Domains element has no Domain")
	}
	return err
}

// aor reads {"Info":{"AoR":"1001@example.org",...,"Contacts":[...]}}. The
// AoR may come after the contacts: they get its user and domain when the
// Info object ends.
func (d *ulDecoder) aor() error {
	if err := d.open('{', "an AoRs element"); err != nil {
		return err
	}
	var info bool
	err := d.object(func(key string) error {
		if key != "Info" {
			return d.skip()
		}
		info = true
		if err := d.open('{', "Info"); err != nil {
			return err
		}
		first := len(d.contacts)
		var aor string
		var haveAoR bool
		err := d.object(func(key string) error {
			switch key {
			case "AoR":
				var err error
				aor, err = d.str("AoR")
				haveAoR = true
				return err
			case "Contacts":
				return d.array("Contacts", d.contact)
			}
			return d.skip()
		})
		if err != nil {
			return err
		}
		if !haveAoR {
			return errors.New("an Info has no AoR")
		}
		user, domain := aor, ""
		if i := strings.LastIndexByte(aor, '@'); i >= 0 {
			user, domain = aor[:i], aor[i+1:]
		}
		for i := first; i < len(d.contacts); i++ {
			d.contacts[i].User, d.contacts[i].Domain = user, domain
		}
		return nil
	})
	if err == nil && !info {
		err = errors.New("an AoRs element has no Info")
	}
	return err
}

// contact reads {"Contact":{"Address":"sip:...",...,"Received":"..."}}.
func (d *ulDecoder) contact() error {
	if err := d.open('{', "a Contacts element"); err != nil {
		return err
	}
	var inner bool
	err := d.object(func(key string) error {
		if key != "Contact" {
			return d.skip()
		}
		inner = true
		if len(d.contacts) >= d.max {
			return ErrTooManyContacts
		}
		// One Decode per contact: encoding/json skips the fields not
		// asked for without making a token of each, which the contact's
		// twenty-odd fields would cost (jsonGuard bounds the value).
		var c ulContact
		if err := d.decode(&c); err != nil {
			return err
		}
		switch {
		case c.Address == nil:
			return errors.New("a Contact has no Address")
		case len(*c.Address) > ulMaxField:
			return fmt.Errorf("a contact's Address is longer than %d bytes", ulMaxField)
		case len(c.Received) > ulMaxField:
			return fmt.Errorf("a contact's Received is longer than %d bytes", ulMaxField)
		}
		// Expires: seconds left, "permanent", or "expired" for a contact
		// usrloc's timer has not removed yet: no longer live.
		if string(c.Expires) != `"expired"` {
			d.contacts = append(d.contacts, Contact{Source: contactSource(*c.Address, c.Received)})
		}
		return nil
	})
	if err == nil && !inner {
		err = errors.New("a Contacts element has no Contact")
	}
	return err
}

// ulContact is what is read of a usrloc contact.
type ulContact struct {
	Address  *string         `json:"Address"`
	Received string          `json:"Received"`
	Expires  json.RawMessage `json:"Expires"`
}

// decode decodes the next value into v, its error made one of ours (see
// token).
func (d *ulDecoder) decode(v any) error {
	err := d.dec.Decode(v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the answer ends before its JSON does: %w", io.ErrUnexpectedEOF)
	case errors.As(err, &se):
		return errors.New("malformed JSON")
	case errors.As(err, &te):
		// Value is the JSON kind ("number"), never the answer's text.
		got := "a " + te.Value
		if te.Value == "array" || te.Value == "object" {
			got = "an " + te.Value
		}
		if te.Field == "" {
			return fmt.Errorf("Contact: got %s, want an object", got)
		}
		return fmt.Errorf("%s: got %s, want a string", te.Field, got)
	}
	return err
}

// token is the decoder's next token, its error made one of ours. A
// SyntaxError's text quotes a character of the answer, and its offset
// counts the bytes jsonGuard let through, not those received: neither is
// kept.
func (d *ulDecoder) token() (json.Token, error) {
	tok, err := d.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("the answer ends before its JSON does: %w", io.ErrUnexpectedEOF)
	case errors.As(err, &se):
		return nil, errors.New("malformed JSON")
	}
	return nil, err
}

// open reads the delimiter that opens what.
func (d *ulDecoder) open(want json.Delim, what string) error {
	tok, err := d.token()
	if err != nil {
		return err
	}
	if tok != want {
		return typeError(what, tok, kindOf(want))
	}
	return nil
}

// object reads an object's members after its '{', calling field with each
// key; field must read the value.
func (d *ulDecoder) object(field func(key string) error) error {
	for {
		tok, err := d.token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			return nil
		}
		key, ok := tok.(string)
		if !ok { // the decoder allows only strings here
			return errors.New("malformed JSON: an object key that is not a string")
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array reads an array: its '[', each element with elem, its ']'.
func (d *ulDecoder) array(what string, elem func() error) error {
	if err := d.open('[', what); err != nil {
		return err
	}
	for d.dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := d.token() // ']', or the error More saw
	return err
}

// str reads a string of at most ulMaxField bytes.
func (d *ulDecoder) str(what string) (string, error) {
	s, err := d.text(what)
	if err == nil && len(s) > ulMaxField {
		return "", fmt.Errorf("%s is longer than %d bytes", what, ulMaxField)
	}
	return s, err
}

// text reads a string of any length (jsonGuard bounds it).
func (d *ulDecoder) text(what string) (string, error) {
	tok, err := d.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", typeError(what, tok, "a string")
	}
	return s, nil
}

// skip reads one value of any kind, token by token: nothing of it is kept
// (jsonGuard bounds its nesting).
func (d *ulDecoder) skip() error {
	depth := 0
	for {
		tok, err := d.token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// typeError says that what is of another kind than want, quoting nothing
// of its value.
func typeError(what string, got json.Token, want string) error {
	return fmt.Errorf("%s: got %s, want %s", what, kindOf(got), want)
}

func kindOf(tok json.Token) string {
	switch tok {
	case json.Delim('{'), json.Delim('}'):
		return "an object"
	case json.Delim('['), json.Delim(']'):
		return "an array"
	case nil:
		return "null"
	}
	switch tok.(type) {
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "another value"
}

// contactSource is Contact.Source: the host of Received when Kamailio set
// one and it is an IP address, else the host of the contact's Address when
// that is one, else "".
func contactSource(address, received string) string {
	if received != "" && received != ulNotSet {
		if ip := uriHostIP(received); ip != "" {
			return ip
		}
	}
	return uriHostIP(address)
}

// uriHostIP returns the host of a sip: or sips: URI in netip.Addr's text
// form: an IPv4-mapped IPv6 address as IPv4, without an IPv6 zone. It is ""
// when the URI is of another scheme or its host is not an IP address (a
// name, or the .invalid of a WebSocket client).
func uriHostIP(uri string) string {
	var rest string
	switch {
	case len(uri) >= 4 && strings.EqualFold(uri[:4], "sip:"):
		rest = uri[4:]
	case len(uri) >= 5 && strings.EqualFold(uri[:5], "sips:"):
		rest = uri[5:]
	default:
		return ""
	}
	// '@' is never unescaped in the user part, so the first one ends it.
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	var host string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return ""
		}
		host = rest[1:end]
	} else {
		host = rest
		if end := strings.IndexAny(rest, ":;?>"); end >= 0 {
			host = rest[:end]
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || (a.Is6() != strings.HasPrefix(rest, "[")) {
		return "" // IPv6 only in brackets, IPv4 never
	}
	return a.WithZone("").Unmap().String()
}

// Errors of jsonGuard.
var (
	errULTooLarge     = fmt.Errorf("the answer is larger than %d bytes", MaxBody)
	errULTokenTooLong = fmt.Errorf("the answer has a string or literal longer than %d bytes", ulMaxToken)
	errULTooDeep      = fmt.Errorf("the answer nests arrays and objects deeper than %d", ulMaxDepth)
)

// ulReadError is an error reading the body (a timeout, a reset), as
// opposed to one in what it holds.
type ulReadError struct{ err error }

func (e *ulReadError) Error() string { return "reading the answer: " + e.err.Error() }

func (e *ulReadError) Unwrap() error { return e.err }

// jsonGuard is the reader under the JSON decoder. It lets at most left
// bytes through (one more is errULTooLarge), and looks at them as JSON's
// lexer does: a string or literal over ulMaxToken bytes, or nesting deeper
// than ulMaxDepth, is an error before the decoder buffers it. It ends the
// stream after the first value, so bytes after the answer are neither read
// nor judged. Between tokens it changes only whitespace, which JSON
// ignores there:
//
//   - it collapses each run of whitespace to one space: the decoder keeps
//     whitespace it has not yet passed in its buffer, so a body of spaces
//     would otherwise be held whole;
//   - it puts a space between a string or literal and the ',', ':', ']'
//     or '}' after it. Decoder.Token decodes each of them as a top-level
//     value, and encoding/json's scanner allocates a SyntaxError (that
//     Token then drops) for any byte but a space after a top-level value:
//     without the space, that error was half of what reading a contact
//     allocated.
type jsonGuard struct {
	r    io.Reader
	left int64  // bytes r may still give
	in   []byte // read from r
	off  int    // in[off:] is not yet filtered
	err  error  // once in is used up: io.EOF, a read error, or one of the bounds

	inStr  bool // inside a string
	esc    bool // after a backslash in a string
	space  bool // the last byte let through is whitespace outside a string
	scalar bool // the last byte let through ends or is part of a string or literal
	run    int  // bytes of the current string or literal
	depth  int
	empty  int // reads in a row that gave nothing, not even an error
}

// jsonGuardBuffer is the size of jsonGuard's read buffer.
const jsonGuardBuffer = 32 << 10

func (g *jsonGuard) Read(p []byte) (int, error) {
	for len(p) > 0 {
		if g.off == len(g.in) {
			if g.err != nil {
				return 0, g.err
			}
			g.fill()
			continue
		}
		n, err := g.filter(p)
		if err != nil {
			g.err, g.in, g.off = err, nil, 0 // what is not returned is dropped: the answer is refused
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, nil
}

// filter moves what it lets through of in[off:] to p and returns how many
// bytes it put there. The state is in local variables for the loop, which
// runs once for each byte of the answer.
func (g *jsonGuard) filter(p []byte) (int, error) {
	in, off, n := g.in, g.off, 0
	inStr, esc, space, scalar, run, depth := g.inStr, g.esc, g.space, g.scalar, g.run, g.depth
	var err error
loop:
	for off < len(in) && n < len(p) {
		c := in[off]
		if inStr {
			if run++; run > ulMaxToken {
				err = errULTokenTooLong
				break
			}
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr, scalar = false, true
			}
			p[n] = c
			n++
			off++
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			off++
			if space {
				off = skipJSONSpace(in, off) // dropped
				continue
			}
			space, scalar, run = true, false, 0
		case ',', ':', ']', '}':
			if scalar { // a space first, then c
				p[n] = ' '
				n++
				space, scalar, run = true, false, 0
				continue
			}
			off++
			space, run = false, 0
			if c == ']' || c == '}' {
				if depth > 0 {
					depth--
				}
				if depth == 0 { // the answer's last byte
					p[n] = c
					n++
					g.err, in, off = io.EOF, nil, 0
					break loop
				}
			}
		case '[', '{':
			if depth++; depth > ulMaxDepth {
				err = errULTooDeep
				break loop
			}
			off++
			space, scalar, run = false, false, 0
		case '"':
			off++
			inStr, space, scalar, run = true, false, false, 1
		default: // a literal's byte, or one the decoder refuses
			if run++; run > ulMaxToken {
				err = errULTokenTooLong
				break loop
			}
			off++
			space, scalar = false, true
		}
		p[n] = c
		n++
	}
	g.in, g.off = in, off
	g.inStr, g.esc, g.space, g.scalar, g.run, g.depth = inStr, esc, space, scalar, run, depth
	return n, err
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipJSONSpace returns the index of the first byte of b from i on that
// is not JSON whitespace, or len(b). It tests eight bytes at a time: a
// body of padding is the longest run the guard reads.
func skipJSONSpace(b []byte, i int) int {
	const all = 0x8080808080808080 // the high bit of each byte
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		if zeroBytes(v^0x2020202020202020)|zeroBytes(v^0x0909090909090909)|
			zeroBytes(v^0x0a0a0a0a0a0a0a0a)|zeroBytes(v^0x0d0d0d0d0d0d0d0d) != all {
			break
		}
	}
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// zeroBytes has the high bit of each byte set where that byte of x is 0,
// and no other bit (adding 0x7f to the low seven bits never carries into
// the next byte).
func zeroBytes(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^(((x & low7) + low7) | x | low7)
}

// fill reads the next bytes from r into in.
func (g *jsonGuard) fill() {
	if g.left <= 0 {
		g.err = g.overflow()
		return
	}
	if g.in == nil {
		g.in = make([]byte, jsonGuardBuffer)
	}
	buf := g.in[:cap(g.in)]
	if int64(len(buf)) > g.left {
		buf = buf[:g.left]
	}
	n, err := g.r.Read(buf)
	g.in, g.off = buf[:n], 0
	g.left -= int64(n)
	if n == 0 && err == nil {
		if g.empty++; g.empty >= 100 {
			err = io.ErrNoProgress
		}
	} else {
		g.empty = 0
	}
	switch {
	case err == io.EOF:
		g.err = io.EOF
	case err != nil:
		g.err = &ulReadError{err}
	}
}

// overflow is the error once MaxBody bytes are read and more are asked
// for: one byte more is an answer over the bound.
func (g *jsonGuard) overflow() error {
	var one [1]byte
	n, err := io.ReadAtLeast(g.r, one[:], 1)
	switch {
	case n > 0:
		return errULTooLarge
	case errors.Is(err, io.EOF):
		return io.EOF
	}
	return &ulReadError{err}
}
