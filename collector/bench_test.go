package collector

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// benchFleet serves n simulated devices (half monitors, half panels) and an
// exporter over them, polled for collect.
func benchFleet(b *testing.B, n int, collect string) (*Exporter, *httptest.Server, []*simulator.Device) {
	b.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "global:\n  collect: %s\n  concurrency: 128\ncredentials:\n  default:\n    username: %s\n    password: %q\n%sdevices:\n", collect, testUser, testPassword, testPolicies)
	devs := make([]*simulator.Device, n)
	for i := range n {
		var d *simulator.Device
		if i%2 == 0 {
			d = monitor(fmt.Sprint(100+i), "tls")
		} else {
			d = panel(fmt.Sprint(100+i), "udp")
		}
		d.SetStatus(simulator.Status("OK", 1732600000))
		d.SetInfo(simulator.Info("dev", "AQ-07L", "monitor", "5.3.2", d.APIVersion))
		srv, err := simulator.Serve(d)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { srv.Close() })
		devs[i] = d
		fmt.Fprintf(&y, "  - name: dev-%05d\n    address: %s\n    api_version: %s\n    labels: {site: s%d}\n", i, srv.URL, d.APIVersion, i%10)
	}
	exp, srv := serveExporter(b, []byte(y.String()))
	return exp, srv, devs
}

func scrapeOnce(b *testing.B, url string) int64 {
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("scrape: %v %d", err, resp.StatusCode)
	}
	return n
}

// BenchmarkFleetScrape measures a steady-state /metrics scrape (tokens
// cached, connections kept alive) of a fleet of simulated devices that
// answer at once, in the same process: the figures include the simulated
// devices' own cost. ns/device and allocs/device are per device and scrape.
func BenchmarkFleetScrape(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, collect := range []string{"[settings]", "[settings, status, info]"} {
			b.Run(fmt.Sprintf("devices=%d/collect=%s", n, collect), func(b *testing.B) {
				_, srv, _ := benchFleet(b, n, collect)
				scrapeOnce(b, srv.URL) // warm: logins, connections
				b.ReportAllocs()
				b.ResetTimer()
				var bytes int64
				for b.Loop() {
					bytes = scrapeOnce(b, srv.URL)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/device")
				b.ReportMetric(float64(bytes)/float64(n), "gzipB/device")
			})
		}
	}
}

// BenchmarkProbe measures a steady-state /probe of one device, in the same
// process as the simulated device.
func BenchmarkProbe(b *testing.B) {
	exp, _, _ := benchFleet(b, 1, "[settings]")
	srv := httptest.NewServer(exp.ProbeHandler(HandlerOpts{}))
	b.Cleanup(srv.Close)
	url := srv.URL + "/probe?target=dev-00000"
	get := func() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	get()
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}

// BenchmarkWriteDevices measures the exposition alone: the series of 1000
// devices whose poll outcomes are at hand, written in the text format.
func BenchmarkWriteDevices(b *testing.B) {
	exp, srv, _ := benchFleet(b, 1000, "[settings, status, info]")
	scrapeOnce(b, srv.URL)
	f := exp.fleet.Load()
	outcomes := make([]pollOutcome, len(f.devices))
	for i, d := range f.devices {
		outcomes[i] = *d.state.last.Load()
	}
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeDevices(bw, f, f.devices, outcomes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/device")
}
