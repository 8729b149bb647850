package simulator

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// rawGet sends a GET for path on a new connection to s and returns the
// connection and a reader on it.
func rawGet(t *testing.T, s *Server, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: device\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestFaultEarlyHintsRaw(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultEarlyHints)
	s := start(t, d)
	_, br := rawGet(t, s, "/api/info")
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil || line != "HTTP/1.1 103 Early Hints" {
		t.Fatalf("first line %q, %v", line, err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil || h.Get("Link") != EarlyHintsLink {
		t.Fatalf("103 headers %v, %v", h, err)
	}
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Link") != "" || !strings.Contains(body, `"device_model":"AV-08FB"`) {
		t.Errorf("final answer: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

func TestFaultEarlyHintsClient(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultEarlyHints)
	s := start(t, d)
	c, _ := newClient(t)
	var got []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		link = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, loginURL(s, "v1", testUser, md5Hex(testPassword)), nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"token"`) {
		t.Errorf("login: %d %s", resp.StatusCode, b)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints || link != EarlyHintsLink {
		t.Errorf("1xx answers %v, link %q", got, link)
	}
}

func TestFaultUnsolicitedRaw(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultUnsolicited)
	s := start(t, d)
	conn, br := rawGet(t, s, "/api/v1/login?username="+testUser+"&password="+md5Hex(testPassword))
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"token"`) {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	resp, body = readResponse(t, br)
	if resp.StatusCode != http.StatusOK || body != DefaultUnsolicitedBody {
		t.Errorf("unsolicited: %d %s", resp.StatusCode, body)
	}
	// The answer is out: the request is no longer in flight, the
	// connection still open.
	eventually(t, "no request in flight", func() bool { return d.InFlight() == 0 })
	if d.OpenConnections() != 1 || d.Logins.Load() != 1 {
		t.Errorf("open connections %d, logins %d", d.OpenConnections(), d.Logins.Load())
	}
	conn.Close()
	eventually(t, "the connection closed", func() bool { return d.OpenConnections() == 0 })
}

func TestFaultUnsolicitedDelayed(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultUnsolicited)
	d.SetUnsolicited([]byte(`{"sip_status":"OK"}`), 100*time.Millisecond)
	s := start(t, d)
	_, br := rawGet(t, s, "/api/info")
	start := time.Now()
	if resp, body := readResponse(t, br); resp.StatusCode != http.StatusOK || !strings.Contains(body, "device_model") {
		t.Fatalf("info: %d %s", resp.StatusCode, body)
	}
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusOK || body != `{"sip_status":"OK"}` {
		t.Errorf("unsolicited: %d %s", resp.StatusCode, body)
	}
	if since := time.Since(start); since < 80*time.Millisecond {
		t.Errorf("unsolicited answer after %v, want about 100ms", since)
	}
}

// A client that sends its next request on the connection reads the
// unsolicited answer as the reply.
func TestFaultUnsolicitedTakenForTheReply(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultUnsolicited)
	d.SetUnsolicited(nil, 200*time.Millisecond)
	s := start(t, d)
	conn, br := rawGet(t, s, "/api/info")
	readResponse(t, br)
	if _, err := io.WriteString(conn, "GET /api/info HTTP/1.1\r\nHost: device\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, body := readResponse(t, br); body != DefaultUnsolicitedBody {
		t.Errorf("second reply %s", body)
	}
	if d.InfoRequests() != 1 {
		t.Errorf("InfoRequests = %d: the second request was answered", d.InfoRequests())
	}
}

func TestFaultCloseAfterResponseRaw(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultCloseAfterResponse)
	s := start(t, d)
	conn, br := rawGet(t, s, "/api/info")
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusOK || !resp.Close || !strings.Contains(body, "device_model") {
		t.Fatalf("answer: %d close=%v %s", resp.StatusCode, resp.Close, body)
	}
	trailing := make([]byte, len(DefaultTrailing))
	if _, err := io.ReadFull(br, trailing); err != nil || string(trailing) != DefaultTrailing {
		t.Fatalf("trailing %q, %v", trailing, err)
	}
	// Still open: a read times out instead of meeting the end.
	_ = conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	var ne net.Error
	if _, err := br.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read after the answer: %v, want a timeout", err)
	}
	if d.OpenConnections() != 1 {
		t.Errorf("OpenConnections = %d", d.OpenConnections())
	}
	// The linger ends with a close.
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("read after the linger: %v, want EOF", err)
	}
	eventually(t, "the connection closed", func() bool { return d.OpenConnections() == 0 })
}

func TestFaultCloseAfterResponseNoLinger(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultCloseAfterResponse)
	d.SetLinger(-1)
	d.SetTrailing([]byte{})
	s := start(t, d)
	_, br := rawGet(t, s, "/api/info")
	readResponse(t, br)
	if b, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %q %v, want EOF", b, err)
	}
}

func TestFaultCloseAfterResponseClient(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultCloseAfterResponse)
	d.SetLinger(2 * time.Second)
	s := start(t, d)
	c, _ := newClient(t)
	tok := login(t, c, s, "v1")
	code, body := do(t, c, s.URL+"/api/v1/device/sip/settings", "Authorization", "Bearer "+tok)
	if code != http.StatusOK || !strings.Contains(body, `"user":"100"`) {
		t.Errorf("settings: %d %s", code, body)
	}
	// The client honours "Connection: close": one connection per request,
	// and it hangs up itself, well before the linger ends.
	if d.Connections.Load() != 2 {
		t.Errorf("Connections = %d, want 2", d.Connections.Load())
	}
	eventually(t, "the client hanging up", func() bool { return d.OpenConnections() == 0 })
}

func TestFaultUnsolicitedTLS(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultUnsolicited)
	s, err := ServeTLS(d)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", s.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /api/info HTTP/1.1\r\nHost: device\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	readResponse(t, br)
	if _, body := readResponse(t, br); body != DefaultUnsolicitedBody {
		t.Errorf("unsolicited over TLS: %s", body)
	}
}

// Closing the server ends a linger at once.
func TestLingerEndsWithClose(t *testing.T) {
	d := newDevice()
	d.SetFault(FaultCloseAfterResponse)
	d.SetLinger(time.Minute)
	s, err := Serve(d)
	if err != nil {
		t.Fatal(err)
	}
	conn, br := rawGet(t, s, "/api/info")
	readResponse(t, br)
	eventually(t, "the answer out", func() bool { return d.InFlight() == 0 })
	began := time.Now()
	_ = s.Close()
	if took := time.Since(began); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("reading to the close: %v", err)
	}
	eventually(t, "the connection closed", func() bool { return d.OpenConnections() == 0 })
}
