package collector

import (
	"testing"
	"time"
)

func TestParseBudget(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		header          string
		offset, reserve time.Duration
		timeout, wait   time.Duration
		ok              bool
	}{
		{"", 500 * ms, 0, 0, 0, false},
		{"abc", 500 * ms, 0, 0, 0, false},
		{"-1", 0, 0, 0, 0, false},
		{"0", 0, 0, 0, 0, false},
		{"NaN", 0, 0, 0, 0, false},
		{"86401", 0, 0, 0, 0, false},
		{"10", 500 * ms, 0, 10 * time.Second, 9495 * ms, true},           // the reserve's floor, 5 ms
		{"10", 500 * ms, 200 * ms, 10 * time.Second, 9300 * ms, true},    // a learned reserve
		{"10", 500 * ms, time.Minute, 10 * time.Second, 7000 * ms, true}, // the reserve's cap, T/4
		{"2.5", 0, 0, 2500 * ms, 2495 * ms, true},
		{"0.61", 500 * ms, 0, time.Second, 495 * ms, true}, // the floor: 1 s; the offset at most T/2
		{"0.001", 0, 0, time.Second, 995 * ms, true},
		{"3", 5 * time.Second, 0, 3 * time.Second, 1495 * ms, true}, // an offset over T/2 is cut to T/2
	}
	for _, c := range cases {
		got, ok := ParseBudget(c.header, c.offset, c.reserve)
		if ok != c.ok || got.Timeout != c.timeout || got.Wait != c.wait {
			t.Errorf("ParseBudget(%q, %v, %v) = %+v, %v; want timeout %v wait %v, %v", c.header, c.offset, c.reserve, got, ok, c.timeout, c.wait, c.ok)
		}
	}
}
