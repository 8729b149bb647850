package collector

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// BenchmarkExposition measures the exposition alone: the series of 1000
// devices whose poll outcomes are at hand, written in the text format by
// package textformat ("writer") and, for comparison, built as const metrics
// and encoded through a client_golang registry as the official exporters
// do ("registry"). ns/device is per device and scrape.
//
//	go test -run '^$' -bench 'Exposition' -benchmem ./collector/
func BenchmarkExposition(b *testing.B) {
	y, _ := testutil.SimulatedFleet(b, 1000, "[settings, status, info]", 128, testPolicies)
	exp := newExporter(b, y)
	scrapeExporter(b, exp, 0)
	f := exp.fleet.Load()
	poll := &Poll{fleet: f, members: f.members, outcomes: make([]*pollOutcome, len(f.members))}
	for i, m := range f.members {
		poll.outcomes[i] = m.rec.last.Load()
	}
	perDevice := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(f.members)), "ns/device")
	}
	b.Run("writer", func(b *testing.B) {
		bw := bufio.NewWriterSize(io.Discard, 32<<10)
		b.ReportAllocs()
		for b.Loop() {
			if err := poll.WriteTo(bw); err != nil {
				b.Fatal(err)
			}
		}
		perDevice(b)
	})
	b.Run("registry", func(b *testing.B) {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := parser.TextToMetricFamilies(strings.NewReader(exposition(b, poll)))
		if err != nil {
			b.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(parsedCollector(parsed))
		bw := bufio.NewWriterSize(io.Discard, 32<<10)
		b.ReportAllocs()
		for b.Loop() {
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
		perDevice(b)
	})
}
