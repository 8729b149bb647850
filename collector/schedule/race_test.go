//go:build race

package schedule

// Under the race detector the generated timelines run ten times slower:
// fewer by default (-timelines sets any number).
func init() { defaultTimelines = 100 }
