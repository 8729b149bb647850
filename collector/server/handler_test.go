package server

import (
	"testing"
	"time"
)

func TestScrapeBudget(t *testing.T) {
	cases := []struct {
		header string
		offset time.Duration
		want   time.Duration
		ok     bool
	}{
		{"", 500 * time.Millisecond, 0, false},
		{"10", 500 * time.Millisecond, 9500 * time.Millisecond, true},
		{"2.5", 0, 2500 * time.Millisecond, true},
		{"0.3", 500 * time.Millisecond, 300 * time.Millisecond, true}, // offset larger than the timeout is ignored
		{"abc", 500 * time.Millisecond, 0, false},
		{"-1", 0, 0, false},
		{"0", 0, 0, false},
	}
	for _, c := range cases {
		got, ok := scrapeBudget(c.header, c.offset)
		if got != c.want || ok != c.ok {
			t.Errorf("scrapeBudget(%q, %v) = %v, %v; want %v, %v", c.header, c.offset, got, ok, c.want, c.ok)
		}
	}
}
