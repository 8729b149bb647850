package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// do sends a request with method to u and returns the status code, the
// body and the headers.
func do(t *testing.T, method, u string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestMethodsThatChangeNothingOnly: every endpoint that changes nothing
// answers GET and HEAD and refuses any other method with 405 and
// "Allow: GET, HEAD" before doing anything: a DELETE /metrics or a POST
// /probe polls no device and does not make the exporter ready.
// /-/reload takes POST only (405 with "Allow: POST" otherwise).
func TestMethodsThatChangeNothingOnly(t *testing.T) {
	f := startFleet(t)
	paths := []string{"/metrics", "/probe?target=panel", "/metrics/exporter", "/sd", "/", "/debug?device=panel", "/config", "/-/healthy", "/-/ready"}
	for _, path := range paths {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			code, _, hdr := do(t, method, f.srv.URL+path)
			if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d, Allow %q; want 405, Allow \"GET, HEAD\"", method, path, code, hdr.Get("Allow"))
			}
		}
	}
	for name, d := range f.devices {
		if n := d.Requests.Load(); n != 0 {
			t.Errorf("%s got %d requests from refused methods", name, n)
		}
	}
	if code, _, _ := get(t, f.srv.URL+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready after refused scrapes only: %d, want 503", code)
	}
	if code, _, _ := do(t, http.MethodDelete, f.srv.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("DELETE /nope = %d, want 404", code)
	}

	for _, path := range paths {
		if code, body, _ := do(t, http.MethodHead, f.srv.URL+path); code != http.StatusOK && !(path == "/-/ready" && code == http.StatusServiceUnavailable) {
			t.Errorf("HEAD %s = %d\n%s", path, code, body)
		}
	}

	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		if code, _, hdr := do(t, method, f.srv.URL+"/-/reload"); code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "POST" {
			t.Errorf("%s /-/reload = %d, Allow %q; want 405, Allow \"POST\"", method, code, hdr.Get("Allow"))
		}
	}
	if code, body, _ := do(t, http.MethodPost, f.srv.URL+"/-/reload"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("POST /-/reload = %d %q, want 200 ok", code, body)
	}
	_, body, _ := get(t, f.srv.URL+"/metrics/exporter")
	if !strings.Contains(body, `basip_exporter_http_requests_total{code="405",handler="metrics"} 5`+"\n") {
		t.Errorf("refused methods are not counted under their handler:\n%s", body)
	}
}

// TestReadyNotOnRejectedProbe: a /probe of a target that is not configured
// (400) polls nothing and leaves /-/ready at 503; a probe of a configured
// device makes it 200.
func TestReadyNotOnRejectedProbe(t *testing.T) {
	f := startFleet(t)
	for _, target := range []string{"nope", "", "192.0.2.1"} {
		if code, _, _ := get(t, f.srv.URL+"/probe?target="+target); code != http.StatusBadRequest {
			t.Fatalf("/probe?target=%s: %d, want 400", target, code)
		}
	}
	if code, body, _ := get(t, f.srv.URL+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready after rejected probes only: %d %q, want 503", code, body)
	}
	if code, _, _ := get(t, f.srv.URL+"/probe?target=panel"); code != http.StatusOK {
		t.Fatalf("/probe?target=panel: %d", code)
	}
	if code, body, _ := get(t, f.srv.URL+"/-/ready"); code != http.StatusOK || body != "Ready\n" {
		t.Errorf("/-/ready after a probe of a configured device: %d %q, want 200", code, body)
	}
}
