package device

import (
	"errors"
	"testing"
)

func TestEveryReasonHasADescriptionAndAnIndex(t *testing.T) {
	seen := map[int]bool{}
	for i, r := range Reasons {
		if r.Description() == string(r) {
			t.Errorf("reason %q has no description", r)
		}
		if r.Index() != i || seen[i] {
			t.Errorf("reason %q has index %d, want %d", r, r.Index(), i)
		}
		seen[i] = true
	}
	if Reason("nonsense").Index() != ReasonConnection.Index() {
		t.Error("an unknown reason does not count as connection, as ReasonOf does")
	}
	if ReasonOf(errors.New("x")) != ReasonConnection {
		t.Error("an error without a reason is not connection")
	}
}

func TestEndpointNames(t *testing.T) {
	for e := range NumEndpoints {
		if e.String() == "" || Endpoints[e] != e.String() {
			t.Errorf("endpoint %d: %q", e, e.String())
		}
	}
}
