package pbx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/basip/basip_exporter/collector/device"
)

const (
	testRPCUser     = "monitor"
	testRPCPassword = device.Secret("Kam-s3cret-7f2c")
)

// captured reads a body a real Kamailio sent (testdata/kamailio-client).
func captured(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kamailio-client", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rpcServer is a loopback JSON-RPC endpoint that checks each request is
// ul.dump as the client sends it, then answers with handle.
func rpcServer(t *testing.T, handle http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
		if r.Method != http.MethodPost || string(body) != ulDumpRequest || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s %q (Content-Type %q), want POST of %s", r.Method, r.URL.Path, body, r.Header.Get("Content-Type"), ulDumpRequest)
		}
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fixed answers status and body.
func fixed(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func contactsOf(t *testing.T, url string, handle http.HandlerFunc) ([]Contact, error) {
	t.Helper()
	srv := rpcServer(t, handle)
	if url == "" {
		url = srv.URL + "/RPC"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return NewKamailio(url, "", "", srv.Client()).Contacts(ctx)
}

func reasonOf(err error) device.Reason {
	var de *device.Error
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

func TestKamailioCapturedAnswers(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []Contact
	}{
		{"ul-dump-empty.json", []Contact{}},
		{"ul-dump.json", []Contact{
			{User: "1004", Source: ""},            // a host name
			{User: "1002", Source: "127.0.0.1"},   // Received, not the contact's 192.168.1.20
			{User: "1003", Source: "2001:db8::7"}, // a bracketed IPv6 contact
			{User: "1001", Source: "127.0.0.1"},   // Received [not set]: the contact's host
		}},
		{"ul-dump-use-domain.json", []Contact{
			{User: "1002", Domain: "example.org", Source: "127.0.0.1"}, // Received with ;transport=tcp
			{User: "1001", Domain: "example.org", Source: "127.0.0.1"},
			{User: "1001", Domain: "example.org", Source: "127.0.0.2"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := contactsOf(t, "", fixed(http.StatusOK, captured(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("contacts\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestKamailioBasicAuth: Basic authentication only with a user name, and
// 401 and 403 are auth errors.
func TestKamailioBasicAuth(t *testing.T) {
	srv := rpcServer(t, func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok:
			w.WriteHeader(http.StatusUnauthorized)
		case user != testRPCUser || pass != testRPCPassword.Reveal():
			w.WriteHeader(http.StatusForbidden)
		default:
			_, _ = w.Write(captured(t, "ul-dump-empty.json"))
		}
	})
	ctx := context.Background()
	if _, err := NewKamailio(srv.URL, testRPCUser, testRPCPassword, srv.Client()).Contacts(ctx); err != nil {
		t.Errorf("right credentials: %v", err)
	}
	for _, tc := range []struct {
		user   string
		pass   device.Secret
		status int
	}{{"", testRPCPassword, 401}, {testRPCUser, "wrong", 403}} {
		_, err := NewKamailio(srv.URL, tc.user, tc.pass, srv.Client()).Contacts(ctx)
		var de *device.Error
		if !errors.As(err, &de) || de.Reason != device.ReasonAuth || de.Status != tc.status {
			t.Errorf("user %q: got %v, want an auth error with status %d", tc.user, err, tc.status)
		}
	}
}

func TestKamailioStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle http.HandlerFunc
		want   []string // in the error's text
	}{
		// Kamailio's own answer to a method it lacks (usrloc not loaded).
		{"method not found", func(w http.ResponseWriter, _ *http.Request) {
			fixed(http.StatusInternalServerError, captured(t, "rpc-method-not-found.json"))(w, nil)
		}, []string{"HTTP status 500", "JSON-RPC error 500: Method Not Found"}},
		{"404 of a proxy", fixed(http.StatusNotFound, []byte("<html>not found</html>")), []string{"HTTP status 404"}},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		}, []string{"HTTP status 302"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := rpcServer(t, tc.handle)
			_, err := NewKamailio(srv.URL, "", "", nil).Contacts(context.Background())
			if reasonOf(err) != device.ReasonHTTPStatus {
				t.Fatalf("got %v, want an http_status error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// TestKamailioRPCError: an error object in a 200 answer is an error with
// its code and its message escaped and cut.
func TestKamailioRPCError(t *testing.T) {
	msg := "no \x1b[31mdump\u202e\r\n" + strings.Repeat("x", 10<<10)
	quoted, _ := json.Marshal(msg)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","error":{"code":-32601,"message":%s},"id":1}`, quoted)
	_, err := contactsOf(t, "", fixed(http.StatusOK, []byte(body)))
	if err == nil {
		t.Fatal("no error")
	}
	var rpc *ulRPCError
	if !errors.As(err, &rpc) || rpc.code != -32601 {
		t.Fatalf("got %v, want the JSON-RPC error -32601", err)
	}
	text := err.Error()
	if !strings.Contains(text, `JSON-RPC error -32601: no \x1b[31mdump\u202e\r\nxxx`) || !strings.HasSuffix(text, "...") {
		t.Errorf("error text %q: want the code and the escaped message, cut", text)
	}
	if len(text) > 200 {
		t.Errorf("error text of %d bytes: the message is not cut", len(text))
	}
}

// ulBody builds an answer around the AoRs array's elements.
func ulBody(aors string) string {
	return `{"jsonrpc":"2.0","result":{"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[` + aors + `],"Stats":{"Records":1,"Max-Slots":1}}}]},"id":1}`
}

func TestKamailioMalformedAnswers(t *testing.T) {
	long := strings.Repeat("u", ulMaxField+1)
	contact := `{"Contact":{"Address":"sip:1001@127.0.0.1:5070","Received":"[not set]"}}`
	for _, tc := range []struct {
		name, body string
		reason     device.Reason
		want       string // in the error's text
	}{
		{"empty body", ``, device.ReasonDecode, "ends before"},
		{"not JSON", `<html>Kamailio</html>`, device.ReasonDecode, "malformed JSON"},
		{"cut short", ulBody(`{"Info":{"AoR":"1001","Contacts":[` + contact)[:120], device.ReasonDecode, "ends before"},
		{"missing comma", `{"jsonrpc":"2.0" "result":{}}`, device.ReasonDecode, "malformed JSON"},
		{"an array", `[1,2,3]`, device.ReasonDecode, "the answer: got an array, want an object"},
		{"no result", `{"jsonrpc":"2.0","id":1}`, device.ReasonDecode, "no result"},
		{"result null", `{"jsonrpc":"2.0","result":null,"id":1}`, device.ReasonDecode, "result: got null, want an object"},
		{"no Domains", `{"result":{"Stats":{}}}`, device.ReasonDecode, "no Domains"},
		{"Domains an object", `{"result":{"Domains":{}}}`, device.ReasonDecode, "Domains: got an object, want an array"},
		{"AoRs a string", `{"result":{"Domains":[{"Domain":{"AoRs":"1001"}}]}}`, device.ReasonDecode, "AoRs: got a string, want an array"},
		{"Domain without AoRs", `{"result":{"Domains":[{"Domain":{"Domain":"location"}}]}}`, device.ReasonDecode, "no AoRs"},
		{"Contacts a number", ulBody(`{"Info":{"AoR":"1001","Contacts":7}}`), device.ReasonDecode, "Contacts: got a number, want an array"},
		{"Contact an array", ulBody(`{"Info":{"AoR":"1001","Contacts":[{"Contact":[]}]}}`), device.ReasonDecode, "Contact: got an array, want an object"},
		{"Address a number", ulBody(`{"Info":{"AoR":"1001","Contacts":[{"Contact":{"Address":5060}}]}}`), device.ReasonDecode, "Address: got a number, want a string"},
		{"AoR a boolean", ulBody(`{"Info":{"AoR":true,"Contacts":[]}}`), device.ReasonDecode, "AoR: got a boolean, want a string"},
		{"no AoR", ulBody(`{"Info":{"Contacts":[` + contact + `]}}`), device.ReasonDecode, "no AoR"},
		{"no Address", ulBody(`{"Info":{"AoR":"1001","Contacts":[{"Contact":{"Received":"[not set]"}}]}}`), device.ReasonDecode, "no Address"},
		{"AoR over 1 KiB", ulBody(`{"Info":{"AoR":"` + long + `","Contacts":[]}}`), device.ReasonDecode, "AoR is longer than 1024 bytes"},
		{"Received over 1 KiB", ulBody(`{"Info":{"AoR":"1001","Contacts":[{"Contact":{"Address":"sip:a@127.0.0.1","Received":"sip:` + long + `"}}]}}`), device.ReasonDecode, "Received is longer"},
		{"string over 64 KiB in an unknown field", ulBody(`{"Info":{"AoR":"1001","X":"` + strings.Repeat("a", ulMaxToken+1) + `"}}`), device.ReasonTooLarge, "longer than 65536"},
		{"number over 64 KiB", ulBody(`{"Info":{"AoR":"1001","X":` + strings.Repeat("1", ulMaxToken+1) + `}}`), device.ReasonTooLarge, "longer than 65536"},
		{"nested 33 deep", `{"result":{"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}}`, device.ReasonDecode, "deeper than 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := contactsOf(t, "", fixed(http.StatusOK, []byte(tc.body)))
			if err == nil {
				t.Fatalf("got %+v and no error", got)
			}
			if r := reasonOf(err); r != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v (reason %q), want reason %q and %q", err, r, tc.reason, tc.want)
			}
			if strings.Contains(err.Error(), "uuuuuuuu") || strings.Contains(err.Error(), "aaaaaaaa") {
				t.Errorf("the error quotes the answer: %.200s", err)
			}
		})
	}
}

// TestKamailioTolerates: what a registrar may send and is read alike.
func TestKamailioTolerates(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []Contact
	}{
		{"unknown fields of every kind", `{"x":[{"y":[1,2,{"z":null}]}],"result":{"w":{"v":[true,false]},"Domains":[{"u":1,"Domain":{"t":"s","AoRs":[{"r":[],"Info":{"q":{},"AoR":"1001@d","Contacts":[{"p":"o","Contact":{"n":[[[]]],"Address":"sip:1001@10.0.0.1"}}]}}]}}]},"id":1}`,
			[]Contact{{User: "1001", Domain: "d", Source: "10.0.0.1"}}},
		{"the AoR after the contacts", ulBody(`{"Info":{"Contacts":[{"Contact":{"Address":"sip:a@10.0.0.1"}},{"Contact":{"Address":"sip:b@10.0.0.2"}}],"AoR":"1001@example.org"}}`),
			[]Contact{{"1001", "example.org", "10.0.0.1"}, {"1001", "example.org", "10.0.0.2"}}},
		{"two tables", `{"result":{"Domains":[{"Domain":{"Domain":"location","AoRs":[{"Info":{"AoR":"1","Contacts":[{"Contact":{"Address":"sip:1@10.0.0.1"}}]}}]}},{"Domain":{"Domain":"location_b","AoRs":[{"Info":{"AoR":"2","Contacts":[{"Contact":{"Address":"sip:2@10.0.0.2"}}]}}]}}]}}`,
			[]Contact{{"1", "", "10.0.0.1"}, {"2", "", "10.0.0.2"}}},
		{"whitespace everywhere", " \n{\t\"result\" :\r\n{ \"Domains\" : [ ] } }  ", []Contact{}},
		{"trailing bytes after the answer", `{"result":{"Domains":[]}}` + strings.Repeat("[", 100), []Contact{}},
		{"an escaped AoR", ulBody(`{"Info":{"AoR":"10\u001b01","Contacts":[{"Contact":{"Address":"sip:x@1.2.3.4"}}]}}`),
			[]Contact{{"10\x1b01", "", "1.2.3.4"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := contactsOf(t, "", fixed(http.StatusOK, []byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSkipJSONSpace(t *testing.T) {
	naive := func(b []byte, i int) int {
		for i < len(b) && isJSONSpace(b[i]) {
			i++
		}
		return i
	}
	alphabet := []byte(" \t\n\r\x00\x80\xa0\x0b\x0c\x1f!\"\x89\x8a\x8d\xa9")
	var b []byte
	for n := range 4000 {
		b = b[:0]
		for range n % 40 {
			// Mostly whitespace, so runs are long enough for the eight-byte steps.
			c := alphabet[(n*7+len(b)*13)%len(alphabet)]
			if (n+len(b))%5 != 0 {
				c = " \t\n\r"[(n+len(b))%4]
			}
			b = append(b, c)
		}
		for i := 0; i <= len(b); i++ {
			if got, want := skipJSONSpace(b, i), naive(b, i); got != want {
				t.Fatalf("skipJSONSpace(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	}
}

func TestContactSource(t *testing.T) {
	for _, tc := range []struct{ address, received, want string }{
		{"sip:1001@127.0.0.1:5070", "[not set]", "127.0.0.1"},
		{"sip:1001@192.168.1.20:5060", "sip:203.0.113.7:35071", "203.0.113.7"},
		{"sip:1001@192.168.1.20", "sip:203.0.113.7:4711;transport=tcp", "203.0.113.7"},
		{"sip:1001@192.168.1.20", "sip:[2001:db8::1]:5060", "2001:db8::1"},
		{"sip:1001@192.168.1.20", "sip:pbx.example.com:5060", "192.168.1.20"}, // a name: the contact's
		{"sip:1001@192.168.1.20", "", "192.168.1.20"},
		{"SIPS:1001@[2001:DB8::7]:5061", "[not set]", "2001:db8::7"},
		{"sip:1001@[fe80::1%eth0]:5060", "[not set]", "fe80::1"},
		{"sip:1001@[::ffff:10.1.2.3]:5060", "[not set]", "10.1.2.3"},
		{"sip:1001@10.1.2.3;transport=tcp", "", "10.1.2.3"},
		{"sip:10.1.2.3", "", "10.1.2.3"},
		{"sip:1001;x=y@10.1.2.3?h=v", "", "10.1.2.3"},
		{"sip:1001@2001:db8::7", "", ""}, // IPv6 without brackets
		{"sip:1001@[10.1.2.3]", "", ""},  // IPv4 in brackets
		{"sip:1001@[2001:db8::7", "", ""},
		{"sip:1001@intercom.example.com:5060", "[not set]", ""},
		{"sip:1001@df7jal23ls0d.invalid;transport=ws", "", ""},
		{"tel:+4930123", "", ""},
		{"http://10.1.2.3/", "", ""},
		{"sip:1001@010.1.2.3", "", ""},
		{"", "", ""},
	} {
		if got := contactSource(tc.address, tc.received); got != tc.want {
			t.Errorf("contactSource(%q, %q) = %q, want %q", tc.address, tc.received, got, tc.want)
		}
	}
}

func TestSafeExcerpt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"Method Not Found", 64, "Method Not Found"},
		{"a\x1bb", 64, `a\x1bb`},
		{"abcdefghij", 10, "abcdefghij"},
		{"abcdefghijk", 10, "abcdefg..."},
		{"ab\x1bcdefghijk", 10, `ab\x1bc...`},
		{"abcde\x1bfghijk", 10, "abcde..."}, // \x1b does not fit whole
		{"ééééé", 8, "éé..."},
		{"a\xffb", 64, `a\xffb`},
	} {
		if got := safeExcerpt(tc.in, tc.max); got != tc.want || len(got) > tc.max {
			t.Errorf("safeExcerpt(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestKamailioTruncatedBody: an answer shorter than its Content-Length.
func TestKamailioTruncatedBody(t *testing.T) {
	body := captured(t, "ul-dump.json")
	_, err := contactsOf(t, "", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
	})
	if err == nil || reasonOf(err) != device.ReasonDecode || !strings.Contains(err.Error(), "ends before") {
		t.Errorf("got %v, want a decode error for an answer cut short", err)
	}
}

// streamServer serves prefix, then what next appends, again and again,
// until the client goes away or the body reaches limit bytes, then suffix.
// It counts the bytes written, and allocates next to nothing itself, so
// the allocations measured are the client's.
func streamServer(t *testing.T, prefix string, next func(b []byte, i int) []byte, limit int64, suffix string) (*httptest.Server, *atomic.Int64) {
	var served atomic.Int64
	srv := rpcServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		write := func(b []byte) bool {
			n, err := w.Write(b)
			served.Add(int64(n))
			return err == nil
		}
		if !write([]byte(prefix)) {
			return
		}
		chunk := make([]byte, 0, 72<<10)
		for i := 0; served.Load() < limit; {
			chunk = chunk[:0]
			for len(chunk) < 64<<10 {
				chunk = next(chunk, i)
				i++
			}
			if !write(chunk) {
				return
			}
		}
		write([]byte(suffix))
	})
	return srv, &served
}

// repeat is a next for streamServer that appends s, 64 KiB of it at a
// time.
func repeat(s string) func([]byte, int) []byte {
	block := bytes.Repeat([]byte(s), (64<<10)/len(s))
	return func(b []byte, _ int) []byte { return append(b, block...) }
}

// measure runs f and returns the bytes and objects allocated meanwhile (by
// the whole process: the test's server included) and the time it took.
func measure(f func()) (bytes, objects uint64, took time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs, took
}

// TestKamailioGiantBody: answers of 1 GiB fail after MaxBody bytes (or at
// the first token over its bound), with memory that does not grow with
// them.
func TestKamailioGiantBody(t *testing.T) {
	const giB = 1 << 30
	prefix := `{"jsonrpc":"2.0","result":{"Domains":[{"Domain":{"Domain":"location","AoRs":[],"Pad":`
	for _, tc := range []struct {
		name     string
		prefix   string // after prefix
		repeat   string
		reason   device.Reason
		err      error
		maxRead  int64  // bytes the client may have read
		maxAlloc uint64 // bytes it may have allocated
	}{
		// Whitespace is legal anywhere between tokens: only the byte
		// bound ends it.
		{"whitespace", "", " \t\r\n", device.ReasonTooLarge, errULTooLarge, MaxBody + 16<<20, 16 << 20},
		// One string that never ends: its token bound ends it.
		{"one endless string", `"`, "a", device.ReasonTooLarge, errULTokenTooLong, 16 << 20, 16 << 20},
		// Arrays opened and never closed: the depth bound ends it, with
		// no recursion to blow a stack.
		{"endless nesting", "", "[", device.ReasonDecode, errULTooDeep, 16 << 20, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, served := streamServer(t, prefix+tc.prefix, repeat(tc.repeat), giB, "")
			k := NewKamailio(srv.URL, "", "", srv.Client())
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			var err error
			bytes, objects, took := measure(func() { _, err = k.Contacts(ctx) })
			t.Logf("failed after %d bytes served in %v, %d bytes in %d objects allocated: %v", served.Load(), took, bytes, objects, err)
			if r := reasonOf(err); r != tc.reason || !errors.Is(err, tc.err) {
				t.Fatalf("got %v (reason %q), want reason %q and %v", err, r, tc.reason, tc.err)
			}
			if n := served.Load(); n > tc.maxRead {
				t.Errorf("the server wrote %d bytes before the client stopped, want at most %d", n, tc.maxRead)
			}
			if bytes > tc.maxAlloc {
				t.Errorf("%d bytes allocated, want at most %d", bytes, tc.maxAlloc)
			}
		})
	}
}

// TestKamailioMillionContacts: an answer listing a million contacts is
// ErrTooManyContacts, read no further than the contact after the
// MaxContacts-th.
func TestKamailioMillionContacts(t *testing.T) {
	const million = 1_000_000
	prefix := `{"jsonrpc":"2.0","result":{"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[`
	contact := func(b []byte, i int) []byte {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Info":{"AoR":"`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","Contacts":[{"Contact":{"Address":"sip:`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "@10."...)
		for _, octet := range []int{i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff} {
			b = strconv.AppendInt(b, int64(octet), 10)
			b = append(b, '.')
		}
		b = append(b[:len(b)-1], `:5060","Expires":3600,"Received":"[not set]"}}]}}`...)
		return b
	}
	size := int64(len(prefix))
	var buf []byte
	for i := range million {
		size += int64(len(contact(buf[:0], i)))
	}
	one := int64(len(contact(buf[:0], MaxContacts)))
	srv, served := streamServer(t, prefix, contact, size, `]}}]},"id":1}`)
	k := NewKamailio(srv.URL, "", "", srv.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var (
		got []Contact
		err error
	)
	bytes, objects, took := measure(func() { got, err = k.Contacts(ctx) })
	t.Logf("a body of %d bytes: failed after %d bytes served in %v, %d bytes in %d objects allocated: %v", size, served.Load(), took, bytes, objects, err)
	if !errors.Is(err, ErrTooManyContacts) || reasonOf(err) != device.ReasonTooLarge || got != nil {
		t.Fatalf("got %d contacts and %v, want ErrTooManyContacts", len(got), err)
	}
	// The client stops at contact MaxContacts+1; the server is ahead of
	// it by what the socket buffers hold.
	if n, max := served.Load(), one*(MaxContacts+1)+16<<20; n > max {
		t.Errorf("the server wrote %d bytes, want at most %d", n, max)
	}
	if bytes > 512<<20 {
		t.Errorf("%d bytes allocated, want at most 512 MiB", bytes)
	}
}

// TestKamailioSilentServer: a server that never answers, and one that
// trickles a byte a second, end with the context's deadline.
func TestKamailioSilentServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle http.HandlerFunc
	}{
		{"never answers", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"a byte a second", func(w http.ResponseWriter, r *http.Request) {
			body := captured(t, "ul-dump.json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := range body {
				if _, err := w.Write(body[i : i+1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := rpcServer(t, tc.handle)
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := NewKamailio(srv.URL, "", "", srv.Client()).Contacts(ctx)
			took := time.Since(start)
			if reasonOf(err) != device.ReasonTimeout {
				t.Errorf("got %v, want a timeout", err)
			}
			if took > 3*time.Second {
				t.Errorf("took %v with a deadline of 1.5 s", took)
			}
		})
	}
}

func TestKamailioConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/RPC"
	l.Close()
	_, err = NewKamailio(url, "", "", nil).Contacts(context.Background())
	if reasonOf(err) != device.ReasonConnection || !strings.Contains(err.Error(), "refused") {
		t.Errorf("got %v, want connection refused", err)
	}
}

// TestKamailioKeepsSecrets: no error and no way of printing the client
// shows the password, its Basic authorization, or the URL's credentials.
func TestKamailioKeepsSecrets(t *testing.T) {
	pw := testRPCPassword.Reveal()
	secrets := []string{
		pw,
		base64.StdEncoding.EncodeToString([]byte(testRPCUser + ":" + pw)),
		base64.StdEncoding.EncodeToString([]byte(pw)),
		"url-pass-9d1", "query-token-4e7",
	}
	check := func(what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows a secret: %s", what, s)
			}
		}
	}
	echo := func(status int) http.HandlerFunc { // a hostile endpoint quoting the request back
		return func(w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization")
			w.Header().Set("X-Echo", auth)
			w.WriteHeader(status)
			msg, _ := json.Marshal(auth + " " + r.URL.String())
			fmt.Fprintf(w, `{"error":{"code":1,"message":%s}}`, msg)
		}
	}
	handlers := map[string]http.HandlerFunc{
		"401":           fixed(401, []byte(`{"error":"`+pw+`"}`)),
		"403":           fixed(403, nil),
		"500 echo":      echo(500),
		"rpc echo":      echo(200),
		"malformed":     fixed(200, []byte(`{"result":`+pw)),
		"wrong type":    fixed(200, []byte(`{"result":{"Domains":"`+pw+`"}}`)),
		"token too big": fixed(200, []byte(`{"x":"`+pw+strings.Repeat("a", ulMaxToken)+`"}`)),
		"timeout":       func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	}
	for name, h := range handlers {
		srv := rpcServer(t, h)
		for _, url := range []string{srv.URL + "/RPC", strings.Replace(srv.URL, "http://", "http://"+testRPCUser+":url-pass-9d1@", 1) + "/RPC?token=query-token-4e7"} {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			k := NewKamailio(url, testRPCUser, testRPCPassword, srv.Client())
			_, err := k.Contacts(ctx)
			cancel()
			if err == nil {
				t.Errorf("%s: no error", name)
				continue
			}
			check(name+" error", err.Error())
			check(name+" error %+v", fmt.Sprintf("%+v %#v", err, err))
			check(name+" client", fmt.Sprintf("%v %+v %#v %s", k, k, k, k))
		}
	}
	// A URL that does not parse, and a refused connection.
	for _, url := range []string{"http://" + testRPCUser + ":url-pass-9d1@127.0.0.1:1/RPC?token=query-token-4e7", "ht\ttp://x:url-pass-9d1@h/?token=query-token-4e7"} {
		k := NewKamailio(url, testRPCUser, testRPCPassword, nil)
		_, err := k.Contacts(context.Background())
		if err == nil {
			t.Fatalf("%q: no error", url)
		}
		check("error", err.Error())
		check("client", fmt.Sprintf("%v %+v %#v", k, k, k))
	}
}

// FuzzKamailioDump feeds bytes as the body of a 200 answer to the decoder
// the client reads it with: no panic, no more than MaxContacts contacts,
// every text valid UTF-8 within its bound, every Source "" or an IP
// address in its canonical form, and errors that hold only printable text.
func FuzzKamailioDump(f *testing.F) {
	for _, name := range []string{"ul-dump.json", "ul-dump-use-domain.json", "ul-dump-empty.json", "rpc-method-not-found.json"} {
		f.Add(captured(f, name))
	}
	f.Add([]byte(ulBody(`{"Info":{"AoR":"1001@d","Contacts":[{"Contact":{"Address":"sip:1001@[::ffff:10.0.0.1]:5060","Received":"sip:[fe80::1%25eth0]:5060"}}]}}`)))
	f.Add([]byte(`{"error":{"code":1,"message":"\u001b[2J\ud800"}}`))
	f.Add([]byte(`{"result":{"Domains":[{"Domain":{"AoRs":[{"Info":{"Contacts":[],"AoR":"a@b@c"}}]}}]}} [[[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		contacts, err := decodeULDump(bytes.NewReader(body))
		if err != nil {
			if contacts != nil {
				t.Fatalf("contacts with the error %v", err)
			}
			text := ulError(err).Error()
			for _, r := range text {
				if !unicode.IsPrint(r) {
					t.Fatalf("error %q holds %U", text, r)
				}
			}
			return
		}
		if len(contacts) > MaxContacts {
			t.Fatalf("%d contacts", len(contacts))
		}
		for _, c := range contacts {
			if !utf8.ValidString(c.User) || !utf8.ValidString(c.Domain) || len(c.User)+len(c.Domain) > ulMaxField {
				t.Fatalf("contact %+v", c)
			}
			if c.Source != "" {
				a, err := netip.ParseAddr(c.Source)
				if err != nil || a.String() != c.Source || a.Zone() != "" || a.Is4In6() {
					t.Fatalf("Source %q is not a canonical IP address", c.Source)
				}
			}
		}
	})
}

// TestKamailioHarnessCaptures reads the answers the test harness captured
// from the real Kamailio (testdata/kamailio): each contact's AoR and
// source as Kamailio printed them, Received before the contact's host, and
// a contact usrloc lists as "expired" (not yet removed by its timer) left
// out: it is no live registration.
func TestKamailioHarnessCaptures(t *testing.T) {
	for file, want := range map[string][]Contact{
		"empty.json":        {},
		"one-contact.json":  {{User: "100", Source: "127.0.0.1"}},
		"two-contacts.json": {{User: "100", Source: "127.0.0.1"}, {User: "100", Source: "127.0.0.2"}},
		"received.json":     {{User: "100", Source: "127.0.0.2"}, {User: "101", Source: "127.0.0.3"}},
		"expired.json":      {{User: "101", Source: "127.0.0.2"}},
		"permanent.json":    {{User: "100", Source: "127.0.0.1"}, {User: "999", Source: "127.0.0.9"}},
	} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "kamailio", file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := contactsOf(t, "", fixed(http.StatusOK, b))
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b Contact) int { return strings.Compare(a.User+a.Source, b.User+b.Source) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("contacts\n got %+v\nwant %+v", got, want)
			}
		})
	}
}
