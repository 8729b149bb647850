package basip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/device"
	"github.com/basip/basip_exporter/collector/simulator"
)

// The MD5 of testPassword, as the client sends it and in lower case.
const (
	testPassword = "123456"
	testMD5      = "E10ADC3949BA59ABBE56E057F20F883E"
)

// tokenDevice answers the login with token and every other request with
// answer; an empty answer closes the connection.
func tokenDevice(t *testing.T, token string, answer func(conn, req int, r *http.Request) string) string {
	url, _ := rawHTTP(t, func(_ net.Conn, conn, req int, r *http.Request) string {
		if r.URL.Path == "/api/v1/login" {
			b := `{"token":"` + token + `"}`
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
		return answer(conn, req, r)
	})
	return url
}

func jsonAnswer(code int, body string) string {
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", code, http.StatusText(code), len(body), body)
}

// assertNoSecret fails when s holds the password, its MD5 in either case,
// or one of the tokens.
func assertNoSecret(t *testing.T, what, s string, tokens ...string) {
	t.Helper()
	for _, secret := range append([]string{testPassword, testMD5, strings.ToLower(testMD5)}, tokens...) {
		if strings.Contains(s, secret) {
			t.Errorf("%s quotes %q: %s", what, secret, s)
		}
	}
}

// TestEchoedRequestLeavesNoSecretInErrors: a device that sends the request
// back (an echo service, or a broken web server) has net/http's parser
// complain about the request line or a header, login query and token
// included. Neither may reach the error, or the trace of the call.
func TestEchoedRequestLeavesNoSecretInErrors(t *testing.T) {
	echo, err := simulator.ServeRaw(simulator.Echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	check := func(t *testing.T, c *Client, tokens ...string) {
		t.Helper()
		tr := &device.Trace{}
		ctx, cancel := context.WithTimeout(device.WithTrace(context.Background(), tr), 2*time.Second)
		defer cancel()
		_, _, err := c.SIPSettings(ctx)
		if err == nil {
			t.Fatal("no error")
		}
		if device.ReasonOf(err) != device.ReasonConnection || !errors.Is(err, errMalformedResponse) {
			t.Errorf("err %v (reason %s), want a malformed response", err, device.ReasonOf(err))
		}
		assertNoSecret(t, "the error", err.Error(), tokens...)
		assertNoSecret(t, "%v", fmt.Sprintf("%v %+v", err, err), tokens...)
		for _, r := range tr.Requests() {
			assertNoSecret(t, "the trace", fmt.Sprintf("%+v", r), tokens...)
		}
	}
	t.Run("echo of the login", func(t *testing.T) {
		check(t, newClient(t, echo.URL, "v1", testPassword, nil))
		if !bytes.Contains(echo.Received(), []byte(testMD5)) {
			t.Fatal("the echo service did not receive the login: the test proves nothing")
		}
	})
	// Tokens of no recognisable shape: only the fixed description keeps
	// them out.
	for name, echoAs := range map[string]func(r *http.Request) string{
		"echo as the status line": func(r *http.Request) string {
			var b bytes.Buffer
			_ = r.Write(&b)
			return b.String()
		},
		"echo as a header line": func(r *http.Request) string {
			var b bytes.Buffer
			_ = r.Write(&b)
			return "HTTP/1.1 200 OK\r\n" + b.String()
		},
		"echo as the status code": func(r *http.Request) string {
			return "HTTP/1.1 " + r.Header.Get("Authorization") + "\r\n\r\n"
		},
		"echo as the content length": func(r *http.Request) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: " + r.Header.Get("Authorization") + "\r\n\r\n"
		},
	} {
		t.Run(name, func(t *testing.T) {
			const token = "Short-Tok-7"
			url := tokenDevice(t, token, func(_, _ int, r *http.Request) string { return echoAs(r) })
			check(t, newClient(t, url, "v1", testPassword, nil), token)
		})
	}
}

// TestRefusalsNameTheDevicesReason: the status decides, the device's short
// reason makes the error readable.
func TestRefusalsNameTheDevicesReason(t *testing.T) {
	cases := map[string]struct {
		login, settings string // answers; "" is the default
		want            string
		status          int
	}{
		"401 of a panel": {
			settings: jsonAnswer(401, `{"error":"Log In"}`),
			want:     "GET /api/v1/device/sip/settings: token from a fresh login refused: HTTP 401: Log In",
			status:   401,
		},
		"401 of a Camdroid monitor": {
			settings: jsonAnswer(401, `{"error":{"code":"invalid_authentication","message":"Token `+testMD5+` expired"}}`),
			want:     "GET /api/v1/device/sip/settings: token from a fresh login refused: HTTP 401: invalid_authentication",
			status:   401,
		},
		"401 without a body": {
			settings: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
			want:     "GET /api/v1/device/sip/settings: token from a fresh login refused: HTTP 401",
			status:   401,
		},
		"rejected login": {
			login:  jsonAnswer(400, `{"error":"Wrong login or password"}`),
			want:   "GET /api/v1/login: device rejected the credentials: HTTP 400: Wrong login or password",
			status: 400,
		},
		"rejected login that echoes the query": {
			login:  jsonAnswer(400, `{"error":"Wrong password=`+testMD5+` for admin"}`),
			want:   "GET /api/v1/login: device rejected the credentials: HTTP 400: Wrong password=<secret> for admin",
			status: 400,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			url, _ := rawHTTP(t, func(_ net.Conn, _, _ int, r *http.Request) string {
				switch {
				case r.URL.Path == "/api/v1/login" && c.login != "":
					return c.login
				case r.URL.Path == "/api/v1/login":
					return jsonAnswer(200, `{"token":"t-1"}`)
				}
				return c.settings
			})
			_, _, err := newClient(t, url, "v1", testPassword, nil).SIPSettings(context.Background())
			var de *device.Error
			if !errors.As(err, &de) || de.Reason != device.ReasonAuth || de.Status != c.status || err.Error() != c.want {
				t.Errorf("err %q (%+v)\nwant %q, status %d", err, de, c.want, c.status)
			}
		})
	}
}

func TestDeviceReason(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"panel":               {`{"error":"Log In"}`, "Log In"},
		"Camdroid":            {`{"error":{"code":"invalid_authentication","message":"no"}}`, "invalid_authentication"},
		"login":               {`{"error":"Wrong login or password"}`, "Wrong login or password"},
		"no error field":      {`{"token":"x"}`, ""},
		"not JSON":            {`<html>Log In</html>`, ""},
		"error of no shape":   {`{"error":42}`, ""},
		"object without code": {`{"error":{"message":"Log In"}}`, ""},
		"control characters":  {`{"error":"a\u0000b\nc\u00e9"}`, "a?b?c??"},
		"long":                {`{"error":"` + strings.Repeat("x", 300) + `"}`, strings.Repeat("x", 61) + "..."},
		"hex token":           {`{"error":"token 93144b0c1d2e3f4a5b6c7d8e9f001122 expired"}`, "token <secret> expired"},
		"Bearer":              {`{"error":"bad Authorization: Bearer abc"}`, "bad Authorization: <secret>"},
		"a secret cut short":  {`{"error":"` + strings.Repeat("y", 60) + testMD5 + `"}`, strings.Repeat("y", 60) + "<..."},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := deviceReason([]byte(c.body), nil); got != c.want {
				t.Errorf("deviceReason(%s) = %q, want %q", c.body, got, c.want)
			}
		})
	}
}

// TestRetriesEndWithTheDevicesStatus: when the retries are used up on 5xx
// answers, the error is the device's status, not the retry library's.
func TestRetriesEndWithTheDevicesStatus(t *testing.T) {
	dev := &simulator.Device{Username: "admin", Password: testPassword, APIVersion: "v1"}
	dev.SetFault(simulator.FaultServerError)
	srv, err := simulator.Serve(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, res, err := newClient(t, srv.URL, "v1", testPassword, nil).SIPSettings(ctx)
	var de *device.Error
	if !errors.As(err, &de) || de.Reason != device.ReasonHTTPStatus || de.Status != 500 {
		t.Errorf("err %v, want HTTP status 500", err)
	}
	if res.Requests != 1+retryMax || dev.Requests.Load() != 1+retryMax {
		t.Errorf("%d requests counted, %d received; want %d", res.Requests, dev.Requests.Load(), 1+retryMax)
	}
}

// TestConnectionClosedUnderTheRequestIsRetried: the device closes a kept
// connection just as the next request arrives (after the check before
// reuse passed). The retry layer sends it again on a new connection.
func TestConnectionClosedUnderTheRequestIsRetried(t *testing.T) {
	url := tokenDevice(t, "t-1", func(conn, req int, _ *http.Request) string {
		if conn == 1 && req == 2 { // the second settings request on the first connection
			return ""
		}
		return jsonAnswer(200, `{"user":"101"}`)
	})
	c := newClient(t, url, "v1", testPassword, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, want := range []int{2, 2, 1} { // login and settings; settings twice; settings
		if _, res, err := c.SIPSettings(ctx); err != nil || res.Requests != want {
			t.Fatalf("call %d: %d requests, err %v; want %d", i, res.Requests, err, want)
		}
	}
}
