package collector

import (
	"slices"
	"testing"

	"github.com/basip/basip_exporter/collector/config"
)

// TestReservedLabelsAreTheFamiliesLabels ties the label names the
// configuration refuses as constant labels to the labels the families set:
// a family gaining a label without the configuration refusing it would let
// an operator's label collide with it.
func TestReservedLabelsAreTheFamiliesLabels(t *testing.T) {
	want := []string{"device", "instance", "job"} // and Prometheus' own
	for _, f := range families {
		want = append(want, f.extra...)
	}
	for _, f := range newPBXDeviceFamilies() {
		want = append(want, f.Extra...)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	got := slices.Sorted(slices.Values(config.ReservedLabels))
	if !slices.Equal(got, want) {
		t.Errorf("config.ReservedLabels = %v\nthe families' labels  = %v", got, want)
	}
}
