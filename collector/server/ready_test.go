package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestExporterMetricsPollNoDevice: /metrics/exporter serves the exporter's
// own metrics (build and reload status, device count, HTTP handlers) and
// no device series, and no device sees a request for it; /metrics serves
// both.
func TestExporterMetricsPollNoDevice(t *testing.T) {
	f := startFleet(t)
	for range 3 {
		code, body, _ := get(t, f.srv.URL+"/metrics/exporter")
		if code != http.StatusOK {
			t.Fatalf("/metrics/exporter: %d\n%s", code, body)
		}
		for _, want := range []string{"basip_exporter_devices 5", "basip_exporter_config_last_reload_successful 1"} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("/metrics/exporter lacks %q", want)
			}
		}
		if strings.Contains(body, "basip_up") || strings.Contains(body, "device=") {
			t.Errorf("/metrics/exporter has device series:\n%s", body)
		}
	}
	for name, d := range f.devices {
		if n := d.Requests.Load(); n != 0 {
			t.Errorf("%s got %d requests from scrapes of /metrics/exporter", name, n)
		}
	}
	_, body, _ := get(t, f.srv.URL+"/metrics")
	for _, want := range []string{`basip_up{device="panel"} 1`, "basip_exporter_devices 5"} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_, body, _ = get(t, f.srv.URL+"/metrics/exporter")
	if !strings.Contains(body, `basip_exporter_http_requests_total{code="200",handler="metrics_exporter"} 3`) {
		t.Errorf("/metrics/exporter does not count its own requests:\n%s", body)
	}
}

// TestReadyOnlyOncePolling: /-/ready answers 503 while no scrape has made
// the exporter poll (a scrape of /metrics/exporter, the pages and /sd poll
// nothing), and 200 from the first scrape of /probe on; a fresh exporter
// becomes ready on its first /metrics as well. /-/healthy answers 200
// throughout.
func TestReadyOnlyOncePolling(t *testing.T) {
	f := startFleet(t)
	for _, path := range []string{"/-/ready", "/metrics/exporter", "/", "/sd", "/config", "/-/ready"} {
		get(t, f.srv.URL+path)
	}
	if code, body, _ := get(t, f.srv.URL+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Not ready") {
		t.Errorf("/-/ready before any poll: %d %q, want 503", code, body)
	}
	if code, _, _ := get(t, f.srv.URL+"/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy before any poll: %d", code)
	}
	if code, _, _ := get(t, f.srv.URL+"/probe?target=panel"); code != http.StatusOK {
		t.Fatalf("/probe: %d", code)
	}
	if code, body, _ := get(t, f.srv.URL+"/-/ready"); code != http.StatusOK || body != "Ready\n" {
		t.Errorf("/-/ready after a probe: %d %q, want 200", code, body)
	}

	g := startFleet(t)
	if code, _, _ := get(t, g.srv.URL+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready of a fresh exporter: %d, want 503", code)
	}
	get(t, g.srv.URL+"/metrics")
	if code, _, _ := get(t, g.srv.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready after /metrics: %d, want 200", code)
	}
}
