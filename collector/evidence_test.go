package collector

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fieldDir holds the answers of the other vendors' devices as public
// sources show them (see its README.md): each decoder is tested against
// every file of its vendor, through the exporter, over HTTP.
const fieldDir = "vendors/testdata/field"

// fieldCase is one file of fieldDir.
type fieldCase struct {
	sources  []string
	proxy    *string // the "# proxy:" line
	answers  []fieldAnswer
	expect   []string
	absent   []string
	vendor   string
	fileName string
}

// fieldAnswer is one "== METHOD PATH [options]" section.
type fieldAnswer struct {
	method, target, contentType, contains string
	status                                int
	statusPort                            bool
	body                                  string
	hits                                  int
}

func readFieldCase(t testing.TB, path string) *fieldCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &fieldCase{vendor: filepath.Base(filepath.Dir(path)), fileName: filepath.Base(path)}
	var cur *fieldAnswer
	var body []string
	inExpect := false
	flush := func() {
		if cur != nil {
			cur.body = strings.TrimRight(strings.Join(body, "\n"), "\n")
			c.answers = append(c.answers, *cur)
		}
		cur, body = nil, nil
	}
	for n, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "== "):
			flush()
			head := strings.TrimPrefix(line, "== ")
			if head == "expect" {
				inExpect = true
				continue
			}
			if inExpect {
				t.Fatalf("%s:%d: a request after the expect section", path, n+1)
			}
			cur = parseFieldHead(t, fmt.Sprintf("%s:%d", path, n+1), head)
		case inExpect:
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "absent "):
				c.absent = append(c.absent, strings.TrimPrefix(line, "absent "))
			default:
				c.expect = append(c.expect, line)
			}
		case cur != nil:
			body = append(body, line)
		case strings.HasPrefix(line, "# source:"):
			c.sources = append(c.sources, strings.TrimSpace(strings.TrimPrefix(line, "# source:")))
		case strings.HasPrefix(line, "# proxy:"):
			p := strings.TrimSpace(strings.TrimPrefix(line, "# proxy:"))
			c.proxy = &p
		}
	}
	flush()
	if len(c.sources) == 0 || len(c.answers) == 0 || len(c.expect) == 0 {
		t.Fatalf("%s: a case needs a source, answers and expectations", path)
	}
	return c
}

func parseFieldHead(t testing.TB, where, head string) *fieldAnswer {
	t.Helper()
	a := &fieldAnswer{status: 200}
	if i := strings.Index(head, " contains:"); i >= 0 {
		a.contains, head = head[i+len(" contains:"):], head[:i]
	}
	f := strings.Fields(head)
	if len(f) < 2 {
		t.Fatalf("%s: want METHOD PATH", where)
	}
	a.method, a.target = f[0], f[1]
	for _, o := range f[2:] {
		k, v, _ := strings.Cut(o, ":")
		switch k {
		case "status":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %s", where, o)
			}
			a.status = n
		case "type":
			a.contentType = v
		case "port":
			a.statusPort = v == "status"
		default:
			t.Fatalf("%s: unknown option %s", where, o)
		}
	}
	return a
}

// serve answers as the case's device: the first section of the request's
// method and target (and, with contains, body) on the port's side.
func (c *fieldCase) serve(statusPort bool) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		mu.Lock()
		defer mu.Unlock()
		for i := range c.answers {
			a := &c.answers[i]
			if a.statusPort != statusPort || a.method != r.Method || a.target != r.URL.RequestURI() ||
				(a.contains != "" && !strings.Contains(string(body), a.contains)) {
				continue
			}
			a.hits++
			ct := a.contentType
			switch {
			case ct != "":
			case strings.HasPrefix(a.body, "{"):
				ct = "application/json"
			case strings.HasPrefix(a.body, "<"):
				ct = "application/xml"
			default:
				ct = "text/plain"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(a.status)
			_, _ = io.WriteString(w, a.body)
			return
		}
		http.NotFound(w, r)
	})
}

// TestFieldAnswers runs the exporter over a device that answers as each
// file of fieldDir says, and checks the series the file expects, on the
// first scrape and on the next (with what the client kept: a path, a
// family, a Digest nonce).
func TestFieldAnswers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fieldDir, "*", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no field answers: %v", err)
	}
	vendorsSeen := map[string]int{}
	for _, path := range files {
		c := readFieldCase(t, path)
		vendorsSeen[c.vendor]++
		t.Run(c.vendor+"/"+strings.TrimSuffix(c.fileName, ".txt"), func(t *testing.T) {
			web := httptest.NewServer(c.serve(false))
			t.Cleanup(web.Close)
			y := fmt.Sprintf("credentials:\n  default: {username: admin, password: Field-Pass-1}\nglobal:\n  collect: [settings, status, info]\ndevices:\n  - name: d\n    address: %s\n    vendor: %s\n", web.URL, c.vendor)
			if c.vendor == "ufanet" {
				st := httptest.NewServer(c.serve(true))
				t.Cleanup(st.Close)
				_, port, _ := net.SplitHostPort(strings.TrimPrefix(st.URL, "http://"))
				y += "    status_port: " + port + "\n"
			}
			exp := newExporter(t, []byte(y))
			for scrape := 1; scrape <= 2; scrape++ {
				c.check(t, scrape, scrapeExporter(t, exp, 0))
			}
			for _, a := range c.answers {
				if a.hits == 0 {
					t.Errorf("%s %s was never asked for: the case does not describe what the client reads", a.method, a.target)
				}
			}
		})
	}
	for _, v := range config.Vendors[1:] { // every vendor but BAS-IP, whose answers the basip package tests
		if vendorsSeen[v] == 0 {
			t.Errorf("no field answer of vendor %s", v)
		}
	}
}

// check compares the exposition with the case's expectations.
func (c *fieldCase) check(t *testing.T, scrape int, out string) {
	t.Helper()
	got := parseExposition(t, out)
	for _, line := range c.expect {
		want := parseExpected(t, line)
		m := findSeries(got[want.name], want.labels, true)
		switch {
		case m == nil:
			t.Errorf("scrape %d: no series %s; the device's series:\n%s", scrape, line, out)
		case value(m) != want.value:
			t.Errorf("scrape %d: %s is %v", scrape, line, value(m))
		}
	}
	for _, a := range c.absent {
		want := parseExpected(t, a+" 0")
		if m := findSeries(got[want.name], want.labels, false); m != nil {
			t.Errorf("scrape %d: %s should be absent, got %v", scrape, a, m)
		}
	}
	if c.proxy != nil {
		info := findSeries(got["basip_sip_info"], map[string]string{"device": "d"}, false)
		if info == nil {
			t.Errorf("scrape %d: no basip_sip_info", scrape)
		} else if p := labelOf(info, "proxy"); p != *c.proxy {
			t.Errorf("scrape %d: proxy %q, want %q", scrape, p, *c.proxy)
		}
	}
}

type expectedSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExpected reads "name{labels} value", the device label added.
func parseExpected(t *testing.T, line string) expectedSeries {
	t.Helper()
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		t.Fatalf("expectation %q: no value", line)
	}
	series := line[:i]
	if !strings.Contains(series, "{") {
		series += "{}"
	}
	series = strings.Replace(series, "{", `{device="d",`, 1)
	series = strings.Replace(series, ",}", "}", 1)
	mfs := parseExposition(t, series+line[i:]+"\n")
	for name, mf := range mfs {
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		return expectedSeries{name: name, labels: labels, value: value(m)}
	}
	t.Fatalf("expectation %q does not parse", line)
	return expectedSeries{}
}

func parseExposition(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, text)
	}
	return mfs
}

// findSeries is the series of mf with labels (all of them when exact,
// a subset otherwise).
func findSeries(mf *dto.MetricFamily, labels map[string]string, exact bool) *dto.Metric {
	for _, m := range mf.GetMetric() {
		match := !exact || len(m.GetLabel()) == len(labels)
		for k, v := range labels {
			if labelOf(m, k) != v || !hasLabel(m, k) {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func hasLabel(m *dto.Metric, name string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return true
		}
	}
	return false
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
