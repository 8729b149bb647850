package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/testutil"
)

// bigFleet is a landing page source of n devices, each with a label, an
// address and, for one in three, an error.
func bigFleet(n int) *fakeSource {
	src := &fakeSource{cfg: &config.Config{LabelNames: []string{"site"}}}
	now := time.Now()
	for i := range n {
		s := collector.DeviceStatus{DeviceView: collector.DeviceView{Name: fmt.Sprintf("lobby-%05d", i), Address: fmt.Sprintf("http://10.%d.%d.%d:80", i>>16, (i>>8)&255, i&255),
			Labels: map[string]string{"site": fmt.Sprintf("site-%03d", i%60)}}, Polled: true, Up: i%3 != 0}
		if !s.Up {
			s.Reason, s.LastError, s.DownSince = "timeout", "GET /api/v1/device/sip/settings: no answer within 2s", now.Add(-time.Hour)
		}
		src.statuses = append(src.statuses, s)
	}
	return src
}

func TestQueryParametersAreBounded(t *testing.T) {
	p := newPages(bigFleet(3), PageOptions{})
	long := strings.Repeat("A", maxParam+1)
	for _, c := range []struct {
		h     http.Handler
		query string
		code  int
		body  string
	}{
		{p.landingHandler(), "/?q=" + strings.Repeat("A", 900<<10), http.StatusBadRequest, "query parameter q is longer than 1024 bytes"},
		{p.landingHandler(), "/?q=" + long, http.StatusBadRequest, "query parameter q is longer than 1024 bytes"},
		{p.landingHandler(), "/?q=" + long[1:], http.StatusOK, "3 devices"},
		{p.landingHandler(), "/?label=" + long, http.StatusBadRequest, "query parameter label is longer"},
		{p.landingHandler(), "/?sort=" + long, http.StatusBadRequest, "query parameter sort is longer"},
		{p.landingHandler(), "/?q=a&q=" + long, http.StatusBadRequest, "query parameter q is longer"}, // every value, not only the first
		{p.landingHandler(), "/?" + long + "=1", http.StatusBadRequest, "query parameter name " + long[:32] + "... is longer"},
		{p.landingHandler(), "/?%1b%5b2J" + long + "=1", http.StatusBadRequest, `query parameter name \x1b[2J`},
		{p.debugHandler(), "/debug?device=" + long, http.StatusBadRequest, "query parameter device is longer"},
	} {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.query, nil))
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("GET %.40s...: %d %.200q, want %d with %q", c.query, rec.Code, rec.Body.String(), c.code, c.body)
		}
		if rec.Code == http.StatusBadRequest && rec.Body.Len() > 200 {
			t.Errorf("GET %.40s...: the refusal quotes %d bytes", c.query, rec.Body.Len())
		}
	}
}

// TestTextFilterCostsLittle: the longest text filter accepted, upper case,
// over 10,000 devices, allocates what the page costs, not the needle's
// length times the fleet's size (the needle was lower-cased once per
// device: 10,000 copies of it); the 900 KB filter that cost 18.8 s of CPU
// is refused before any device is looked at.
func TestTextFilterCostsLittle(t *testing.T) {
	h := newPages(bigFleet(10_000), PageOptions{}).landingHandler()
	needle := strings.Repeat("X", maxParam)
	measure := func(q string) (int, uint64, time.Duration) {
		var before, after runtime.MemStats
		req := httptest.NewRequest(http.MethodGet, "/?q="+url.QueryEscape(q), nil)
		rec := httptest.NewRecorder()
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		return rec.Code, after.TotalAlloc - before.TotalAlloc, d
	}
	measure("") // templates and first allocations
	code, empty, d0 := measure("nothing-matches")
	if code != http.StatusOK {
		t.Fatalf("short filter: %d", code)
	}
	code, full, d1 := measure(needle)
	if code != http.StatusOK {
		t.Fatalf("filter of %d bytes: %d", maxParam, code)
	}
	code, huge, d2 := measure(strings.Repeat("X", 900<<10))
	if code != http.StatusBadRequest {
		t.Fatalf("filter of 900 KB: %d", code)
	}
	t.Logf("10,000 devices: a short filter %d KB in %v; a %d-byte upper-case filter %d KB in %v; a 900 KB filter (refused) %d KB in %v",
		empty>>10, d0, maxParam, full>>10, d1, huge>>10, d2)
	// Lowering the needle per device allocates maxParam bytes 10,000
	// times, 10 MB; once per request it is 1 KB.
	if full > empty+2<<20 {
		t.Errorf("a %d-byte filter allocates %d KB, a short one %d KB: the needle's cost grows with the fleet", maxParam, full>>10, empty>>10)
	}
	if huge > 2<<20 { // the query itself is 900 KB, parsed once
		t.Errorf("a refused 900 KB filter allocates %d KB", huge>>10)
	}
}

// BenchmarkLandingTextFilter is the landing page over 10,000 devices with
// a text filter that matches nothing, upper case, of 16 bytes, of the
// longest length accepted and of 900 KB (refused), with the CPU time of
// the process per request (cpu-ms/op). Run it with
// go test -run '^$' -bench LandingTextFilter -benchtime 20x ./collector/server/
func BenchmarkLandingTextFilter(b *testing.B) {
	h := newPages(bigFleet(10_000), PageOptions{}).landingHandler()
	for _, n := range []int{16, maxParam, 900 << 10} {
		path := "/?q=" + strings.Repeat("X", n)
		b.Run(fmt.Sprintf("q=%dB", n), func(b *testing.B) {
			b.ReportAllocs()
			start := testutil.CPUTime()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			}
			b.ReportMetric((testutil.CPUTime()-start).Seconds()*1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// TestManyLabelNamesShareOneColumn: a fleet with more label names than
// maxLabelColumns shows one column of each device's labels, so the page
// costs a few cells per device, not one per device and label name.
func TestManyLabelNamesShareOneColumn(t *testing.T) {
	const n = 3000
	src := &fakeSource{cfg: &config.Config{}}
	for i := range n {
		name := fmt.Sprintf("label_%04d", i)
		src.cfg.LabelNames = append(src.cfg.LabelNames, name)
		src.statuses = append(src.statuses, collector.DeviceStatus{DeviceView: collector.DeviceView{Name: fmt.Sprint("d", i),
			Labels: map[string]string{name: "v", "zone": ""}}, Polled: true, Up: true})
	}
	h := newPages(src, PageOptions{}).landingHandler()
	var before, after runtime.MemStats
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	h.ServeHTTP(rec, req)
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d devices with a label name each: %v, %d MB allocated, a page of %d KB", n, d, alloc>>20, rec.Body.Len()>>10)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d", rec.Code)
	}
	tab := table(t, parse(t, rec.Body.String()), "devices")
	if got := strings.Join(tab.header, ","); got != "device,labels,state,last_poll" {
		t.Errorf("columns %s", got)
	}
	if got := tab.rows[7].text["labels"]; got != "label_0007=v" {
		t.Errorf("row 7's labels %q", got)
	}
	if alloc > 200<<20 {
		t.Errorf("the page allocated %d MB", alloc>>20)
	}
}
