package collector

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/textformat"
)

// manyLabelNames is a configuration of n devices, each with one label
// name of its own.
func manyLabelNames(tb testing.TB, n int) *config.Config {
	tb.Helper()
	var b strings.Builder
	b.WriteString("credentials:\n  default: {username: u, password: p}\ndevices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: d%04d\n    address: http://127.0.0.%d:%d\n    labels: {label_%04d: v%d}\n", i, 1+i/60000, 1+i, i, i)
	}
	cfg, err := config.Parse([]byte(b.String()), "test.yaml", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// BenchmarkManyLabelNames writes the series of 3,000 devices with one
// label name each of their own: a sample's cost is its own labels, not
// the fleet's 3,000 label names. Run it with
// go test -run '^$' -bench ManyLabelNames -benchtime 10x ./collector/
func BenchmarkManyLabelNames(b *testing.B) {
	exp, err := New(manyLabelNames(b, 3000), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer exp.Close()
	f := exp.fleet.Load()
	outcomes := make([]*pollOutcome, len(f.members))
	for i := range outcomes {
		outcomes[i] = &pollOutcome{}
	}
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	for b.Loop() {
		writeDevices(textformat.NewWriter(bw), f, f.members, outcomes)
	}
}

// TestLabelsAreStoredSparsely: 3,000 devices with one label name each of
// their own (3,000 label names in the fleet) cost memory in proportion to
// the labels they have, not to the fleet's label names times its devices:
// each device held a slot per label name of the fleet, twice (337 MB).
// The figure is logged; the bound is far above the sparse cost and far
// below the dense one.
func TestLabelsAreStoredSparsely(t *testing.T) {
	const n = 3000
	cfg := manyLabelNames(t, n)
	if len(cfg.LabelNames) != n {
		t.Fatalf("%d label names", len(cfg.LabelNames))
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	exp, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	held := heap() - before
	t.Logf("%d devices, each with its own label name: the exporter holds %.1f MB", n, float64(held)/(1<<20))
	if held > 64<<20 {
		t.Errorf("the exporter holds %d MB for %d devices", held>>20, n)
	}
	// Every device's series carry its own label, and no other.
	f := exp.fleet.Load()
	var out strings.Builder
	bw := bufio.NewWriter(&out)
	writeDevices(textformat.NewWriter(bw), f, f.members[:2], []*pollOutcome{{}, {}})
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{`basip_auth_failures_total{device="d0000",label_0000="v0"} 0`, `basip_auth_failures_total{device="d0001",label_0001="v1"} 0`} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
}
