package textformat

import (
	"bufio"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// hostile is a label value with everything the text format must escape or
// a parser could trip on.
const hostile = "q\"uote \\back\\slash\nnew line, {brace} =eq \u00e9\u4e2d #hash"

type sample struct {
	constValues, extra []string
	v                  float64
}

type testFamily struct {
	name, help, typ string
	extra           []string
	samples         []sample
}

var constNames = []string{"device", "site"}

var testFamilies = []testFamily{
	{"basip_test_gauge", "A gauge; help with a back\\slash and a\nline feed \"quoted\".", "gauge", []string{"transport"}, []sample{
		{[]string{"a", "s1"}, []string{"udp"}, 1},
		{[]string{"b", hostile}, []string{hostile}, 0},
		{[]string{"c", "s2"}, []string{"tls"}, 0.5},
		{[]string{"d", "s3"}, []string{"tcp"}, -1},
		{[]string{"e", "s4"}, []string{"x"}, 1.7326e9},
		{[]string{"f", "s5"}, []string{"y"}, 1e-9},
		{[]string{"g", "s6"}, []string{"z"}, math.NaN()},
		{[]string{"h", "s7"}, []string{"p"}, math.Inf(1)},
		{[]string{"i", "s8"}, []string{"q"}, math.Inf(-1)},
		{[]string{"j", "s9"}, []string{"r"}, 9007199254740993},
	}},
	{"basip_test_total", "A counter.", "counter", nil, []sample{
		{[]string{"a", "s1"}, nil, 3},
		{[]string{"z\\", "\"s\""}, nil, 12345678},
	}},
	// Extra label names that sort before and between the constant ones.
	{"basip_test_info", "Labels in every order.", "gauge", []string{"aaa", "model", "zzz"}, []sample{
		{[]string{"a", "s1"}, []string{"1", "m\n", "z"}, 1},
	}},
}

func render(t *testing.T, fams []testFamily) string {
	t.Helper()
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	w := NewWriter(bw)
	for _, tf := range fams {
		w.Family(NewFamily(tf.name, tf.help, tf.typ, tf.extra))
		for _, s := range tf.samples {
			w.Target(RenderLabels(constNames, s.constValues))
			w.Sample(s.v, s.extra...)
		}
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type constCollector []testFamily

func (c constCollector) Describe(chan<- *prometheus.Desc) {}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, tf := range c {
		d := prometheus.NewDesc(tf.name, tf.help, append(slices.Clone(constNames), tf.extra...), nil)
		typ := prometheus.GaugeValue
		if tf.typ == "counter" {
			typ = prometheus.CounterValue
		}
		for _, s := range tf.samples {
			ch <- prometheus.MustNewConstMetric(d, typ, s.v, append(slices.Clone(s.constValues), s.extra...)...)
		}
	}
}

// sortedLines is text's lines, sorted: client_golang sorts samples by
// label values, the writer keeps the order it is given.
func sortedLines(text string) []string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// TestWriterMatchesClientGolang: the same families through the writer and
// through client_golang's const metrics, pedantic registry and text
// encoder give the same lines, byte for byte: escaping in label values and
// help, label order, every kind of value.
func TestWriterMatchesClientGolang(t *testing.T) {
	ours := render(t, testFamilies)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector(testFamilies))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var theirs strings.Builder
	enc := expfmt.NewEncoder(&theirs, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	a, b := sortedLines(ours), sortedLines(theirs.String())
	if !slices.Equal(a, b) {
		t.Errorf("the writer and client_golang differ:\nwriter:\n%s\nclient_golang:\n%s", ours, theirs.String())
	}
	if !strings.Contains(ours, `\"uote \\back\\slash\nnew line`) {
		t.Errorf("the hostile value is not escaped as expected:\n%s", ours)
	}
}

// An empty constant label value is left out, as Prometheus treats it as
// absent; HELP and TYPE come once, with the family's first sample, and a
// family without samples writes nothing.
func TestEmptyLabelsAndHeaders(t *testing.T) {
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	w := NewWriter(bw)
	w.Family(NewFamily("basip_none", "No samples.", "gauge", nil))
	f := NewFamily("basip_x", "X.", "gauge", []string{"e"})
	w.Family(f)
	w.Target(RenderLabels(constNames, []string{"dev", ""}))
	w.Sample(1, "v")
	w.Bool(false, "")
	_ = bw.Flush()
	want := "# HELP basip_x X.\n# TYPE basip_x gauge\nbasip_x{device=\"dev\",e=\"v\"} 1\nbasip_x{device=\"dev\",e=\"\"} 0\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

type failingWriter struct{ writes int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.writes++
	return 0, errors.New("the client went away")
}

// The first write error is kept; nothing more is written after it.
func TestWriterKeepsTheFirstError(t *testing.T) {
	fw := &failingWriter{}
	bw := bufio.NewWriterSize(fw, 16)
	w := NewWriter(bw)
	w.Family(NewFamily("basip_x", "X.", "gauge", nil))
	w.Target(RenderLabels(constNames, []string{"dev", "site"}))
	for range 100 {
		w.Sample(1)
	}
	if w.Err() == nil {
		t.Fatal("no error from a writer that fails")
	}
	if fw.writes != 1 {
		t.Errorf("%d writes after the first failure, want none", fw.writes-1)
	}
}
