// Package textformat writes metric families in the Prometheus text
// exposition format (version 0.0.4) straight to a buffer, sample by sample.
//
// Why not client_golang: the official exporters build each sample as a
// const metric and pass it through a registry. At ten thousand devices that
// is hundreds of thousands of short-lived objects per scrape, a sort and a
// consistency check of each, and most of the exporter's CPU. This writer
// renders a device's constant labels once per configuration and appends
// each sample to a reused buffer: no allocation per sample.
//
// BenchmarkExposition in package collector compares the two on the same
// poll results. TestWriterMatchesClientGolang (this package) renders
// families with hostile label values and help texts through this writer
// and through client_golang's const metrics and registry, and finds the
// two texts identical, byte for byte.
//
// The caller must give valid UTF-8 label values (collector cleans what
// devices send); the writer only escapes.
package textformat

import (
	"bufio"
	"math"
	"slices"
	"sort"
	"strconv"
)

// Family is the fixed part of one metric family: its name, help, type and
// label names, and the order in which a sample's own labels are written so
// that, merged with the constant labels, they come out sorted by name, as
// client_golang writes them.
type Family struct {
	Name, Help, Type string
	// Extra are the family's own label names, in the order Sample takes
	// their values; the constant labels (see Labels) come before them.
	Extra []string
	order []int // indexes into Extra, sorted by name
}

// NewFamily returns a family whose samples carry the target's constant
// labels (see Labels) and the labels extra. A constant label and an extra
// one of the same name are both written, the constant one first.
func NewFamily(name, help, typ string, extra []string) *Family {
	f := &Family{Name: name, Help: help, Type: typ, Extra: extra, order: make([]int, len(extra))}
	for i := range extra {
		f.order[i] = i
	}
	sort.SliceStable(f.order, func(a, b int) bool { return extra[f.order[a]] < extra[f.order[b]] })
	return f
}

// Labels are one target's constant label values, with each rendered once
// as a name="value" pair. An empty value, which Prometheus treats as an
// absent label, is left out of the exposition, and is not stored: a target
// holds its own labels only, whatever the label names of the others (3,000
// devices with one label name each of their own held a slot for each of
// the 3,000 names, 337 MB; TestLabelsAreStoredSparsely in package
// collector measures it).
type Labels struct {
	set []labelPair // the labels with a value, sorted by name
}

type labelPair struct {
	name string
	text string // name="value", escaped
}

// LabelValue is one constant label of a target: its name and its value.
type LabelValue struct {
	Name, Value string
}

// RenderLabels renders constant label values; values[i] belongs to names[i].
func RenderLabels(names, values []string) Labels {
	set := make([]LabelValue, len(names))
	for i, n := range names {
		set[i] = LabelValue{Name: n, Value: values[i]}
	}
	return RenderLabelSet(set)
}

// RenderLabelSet renders a target's constant labels: those in set, which
// may come in any order. A constant label name of the fleet that the
// target does not have needs no entry: it is empty.
func RenderLabelSet(set []LabelValue) Labels {
	var l Labels
	for _, lv := range set {
		if lv.Value == "" {
			continue
		}
		b := append([]byte(lv.Name), '=', '"')
		b = appendEscaped(b, lv.Value, true)
		l.set = append(l.set, labelPair{name: lv.Name, text: string(append(b, '"'))})
	}
	sort.SliceStable(l.set, func(a, b int) bool { return l.set[a].name < l.set[b].name })
	l.set = slices.Clip(l.set)
	return l
}

// Writer appends samples to a buffered writer. The HELP and TYPE lines of a
// family go out with its first sample, so a family without samples is left
// out. The first write error is kept and returned by Err; later writes are
// skipped.
type Writer struct {
	w          *bufio.Writer
	family     *Family
	labels     Labels
	headerDone bool
	buf        []byte
	err        error
}

// NewWriter returns a Writer on w.
func NewWriter(w *bufio.Writer) *Writer { return &Writer{w: w} }

// Family starts the samples of f.
func (w *Writer) Family(f *Family) {
	w.family, w.headerDone = f, false
}

// Target sets the constant labels of the samples that follow.
func (w *Writer) Target(l Labels) { w.labels = l }

// Err is the first error the underlying writer returned.
func (w *Writer) Err() error { return w.err }

// Bool writes a sample of 1 or 0.
func (w *Writer) Bool(b bool, extra ...string) {
	if b {
		w.Sample(1, extra...)
	} else {
		w.Sample(0, extra...)
	}
}

// Sample writes one sample of the current family with the current
// constant labels; extra are the values of the family's Extra labels.
func (w *Writer) Sample(v float64, extra ...string) {
	if w.err != nil {
		return
	}
	f := w.family
	b := w.buf[:0]
	if !w.headerDone {
		w.headerDone = true
		b = append(b, "# HELP "...)
		b = append(b, f.Name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.Help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.Name...)
		b = append(b, ' ')
		b = append(b, f.Type...)
		b = append(b, '\n')
	}
	b = append(b, f.Name...)
	b = append(b, '{')
	// The target's labels and the family's, each sorted by name, merged.
	set, order := w.labels.set, f.order
	for i, j := 0, 0; i < len(set) || j < len(order); {
		if i+j > 0 {
			b = append(b, ',')
		}
		if j == len(order) || (i < len(set) && set[i].name <= f.Extra[order[j]]) {
			b = append(b, set[i].text...)
			i++
			continue
		}
		k := order[j]
		b = append(b, f.Extra[k]...)
		b = append(b, '=', '"')
		b = appendEscaped(b, extra[k], true)
		b = append(b, '"')
		j++
	}
	b = append(b, '}', ' ')
	b = appendFloat(b, v)
	b = append(b, '\n')
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		w.err = err
	}
}

// appendEscaped appends s escaped for the text format: backslash and line
// feed, and the double quote too in a label value (quote), not in HELP.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		case c == '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends a sample value as the text format writes it.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
