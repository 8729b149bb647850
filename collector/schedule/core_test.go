package schedule

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The defaults of the exporter: a 5 s device timeout, Prometheus' 10 s
// scrape timeout less the 0.5 s offset, 1 s min_poll_interval.
var defaultJob = Job[int]{Timeout: 5 * time.Second, MinInterval: time.Second, StartMargin: 100 * time.Millisecond}

const (
	defaultBudget   = 9500 * time.Millisecond
	defaultInterval = 15 * time.Second
)

// A deadline that comes at any instant of dispatching, including exactly
// when a slot frees or at the start margin, gives every slot back: after
// 1,500 such scrapes nothing is held and a normal scrape polls every key.
func TestDeadlineAtDispatchLosesNoSlot(t *testing.T) {
	s := newSim(t, 4)
	keys := names("d", 40)
	for i := range keys {
		s.key(keys[i]).took = time.Duration(10+i) * time.Millisecond
	}
	job := defaultJob
	job.MinInterval = 0
	for i := range 1500 {
		// Budgets sweep the instants at which polls end and slots free:
		// 100 ms (the start margin) to 250 ms in 100 µs steps.
		budget := job.StartMargin + time.Duration(i)*100*time.Microsecond
		s.scrape("short", keys, budget, 0, job)
		s.run(budget + 6*time.Second)
		if s.c.inFlight != 0 || s.c.pools[fastPool].used+s.c.pools[slowPool].used != 0 {
			t.Fatalf("scrape %d (budget %v): %d slots still held after every poll ended", i, budget, s.c.pools[fastPool].used+s.c.pools[slowPool].used)
		}
	}
	sc := s.scrape("normal", keys, defaultBudget, 0, job)
	s.run(defaultInterval)
	if up := s.upIn(sc, keys); up != len(keys) {
		t.Fatalf("after 1,500 short scrapes a normal one got %d of %d keys", up, len(keys))
	}
}

// darkBuilding scrapes silent keys listed ahead of healthy ones and
// returns, per scrape, how many healthy keys were up.
func darkBuilding(t *testing.T, concurrency, silent, healthy, scrapes int) []int {
	s := newSim(t, concurrency)
	dark, lit := names("dark", silent), names("lit", healthy)
	for _, k := range dark {
		s.key(k).silent = true
	}
	keys := append(append([]string{}, dark...), lit...)
	var up []int
	for range scrapes {
		sc := s.scrape("prometheus", keys, defaultBudget, 0, defaultJob)
		s.run(defaultInterval)
		up = append(up, s.upIn(sc, lit))
	}
	return up
}

// A dark building ahead of healthy devices in the configuration does not
// blind them: they are up from the second scrape on (from the first with
// the default concurrency), and in every scrape after.
func TestDarkBuildingAheadOfHealthyDevices(t *testing.T) {
	for _, tc := range []struct {
		concurrency, silent, healthy int
		upFrom                       int // the first scrape (1-based) from which all are up
	}{
		{16, 300, 20, 2},
		{256, 2000, 20, 1},
		{256, 5000, 20, 2},
		{4, 100, 20, 3},
	} {
		up := darkBuilding(t, tc.concurrency, tc.silent, tc.healthy, 8)
		t.Logf("concurrency %d, %d silent ahead of %d healthy: healthy up per scrape %v", tc.concurrency, tc.silent, tc.healthy, up)
		for i, n := range up[tc.upFrom-1:] {
			if n != tc.healthy {
				t.Errorf("concurrency %d, %d silent: scrape %d has %d of %d healthy up", tc.concurrency, tc.silent, tc.upFrom+i, n, tc.healthy)
			}
		}
	}
}

// Devices that answered go dark under a short budget (1.5 s: a 2 s scrape
// timeout): they become Suspect or Silent when their polls end, even after
// the caller has left, never come back ahead of the healthy ones, and the
// healthy are up again once the fast slots have had the time to find the
// dark: each fast slot finds one per quarter of the timeout.
func TestDevicesGoingDarkUnderAShortBudget(t *testing.T) {
	for _, tc := range []struct {
		concurrency, within int
	}{{16, 20}, {256, 2}} {
		s := newSim(t, tc.concurrency)
		dark, lit := names("dark", 300), names("lit", 20)
		keys := append(append([]string{}, dark...), lit...)
		budget := 1500 * time.Millisecond
		for range 3 {
			sc := s.scrape("prometheus", keys, budget, 0, defaultJob)
			s.run(defaultInterval)
			if up := s.upIn(sc, keys); up != len(keys) {
				t.Fatalf("all answering: %d of %d up", up, len(keys))
			}
		}
		for _, k := range dark {
			s.key(k).silent = true
		}
		var ups []int
		for range tc.within + 5 {
			sc := s.scrape("prometheus", keys, budget, 0, defaultJob)
			s.run(defaultInterval)
			ups = append(ups, s.upIn(sc, lit))
		}
		t.Logf("concurrency %d, 300 of 320 go dark, budget 1.5 s: healthy up per scrape %v", tc.concurrency, ups)
		for i, n := range ups[tc.within-1:] {
			if n != len(lit) {
				t.Errorf("concurrency %d: scrape %d after the building went dark: %d of %d healthy up", tc.concurrency, tc.within+i, n, len(lit))
			}
		}
	}
}

// A caller that leaves early (a /probe with a short header) does not cut
// the poll it started; a caller coming 20 ms later gets its result, and the
// first caller's WaitedOut is stored nowhere.
func TestShortCallerDoesNotPoisonTheNext(t *testing.T) {
	s := newSim(t, 4)
	s.key("panel").took = 300 * time.Millisecond
	short := s.scrape("probe", []string{"panel"}, 120*time.Millisecond, 0, defaultJob)
	s.run(20 * time.Millisecond)
	normal := s.scrape("scrape", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(time.Second)
	if got := short.cl.out[0].How; got != WaitedOut {
		t.Fatalf("the short caller got %v, want waited_out", got)
	}
	o := normal.cl.out[0]
	if o.How != Shared || !s.polls[o.Result-1].answered {
		t.Fatalf("the next caller got %v (answered %v), want the shared answer", o.How, o.Result > 0 && s.polls[o.Result-1].answered)
	}
	if len(s.polls) != 1 {
		t.Fatalf("%d polls, want 1", len(s.polls))
	}
	// A caller that gives up (the client went away) the same.
	s.run(2 * time.Second)
	gone := s.scrape("gone", []string{"panel"}, 0, 10*time.Millisecond, defaultJob)
	s.run(20 * time.Millisecond)
	next := s.scrape("next", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(time.Second)
	if gone.cl.out[0].How != WaitedOut || next.cl.out[0].How != Shared || !s.polls[next.cl.out[0].Result-1].answered {
		t.Fatalf("after a caller gave up: it got %v, the next %v", gone.cl.out[0].How, next.cl.out[0].How)
	}
	if c := s.c.entries["panel"].class; c != Fast && c != Slow {
		t.Fatalf("class %v after answering polls", c)
	}
}

// Skips leave a key's class alone: a silent key skipped for lack of time
// stays Silent, a fast one Fast.
func TestSkipsChangeNoClass(t *testing.T) {
	s := newSim(t, 1)
	s.key("silent").silent = true
	s.scrape("first", []string{"silent", "fast"}, 0, 0, defaultJob)
	s.run(defaultInterval)
	if s.c.entries["silent"].class != Silent || s.c.entries["fast"].class != Fast {
		t.Fatalf("classes %v %v", s.c.entries["silent"].class, s.c.entries["fast"].class)
	}
	// The one slot busy with another key until after the deadline.
	s.key("hog").took = 4 * time.Second
	s.scrape("hog", []string{"hog"}, 0, 0, Job[int]{Timeout: 20 * time.Second})
	sc := s.scrape("skipped", []string{"silent", "fast"}, time.Second, 0, defaultJob)
	s.run(defaultInterval)
	if sc.cl.out[0].How != Skipped || sc.cl.out[1].How != Skipped {
		t.Fatalf("got %v %v, want both skipped", sc.cl.out[0].How, sc.cl.out[1].How)
	}
	if s.c.entries["silent"].class != Silent || s.c.entries["fast"].class != Fast {
		t.Fatalf("classes after skips %v %v", s.c.entries["silent"].class, s.c.entries["fast"].class)
	}
}

// A reload that changes a device's session (a corrected password) while
// its poll is in flight: the new session waits for that poll to end, is
// not served its result, and polls at once after.
func TestNewSessionWaitsForTheOldSessionsPoll(t *testing.T) {
	s := newSim(t, 8)
	s.key("panel").took = 400 * time.Millisecond
	old := s.scrape("old", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(100 * time.Millisecond)
	s.key("panel").session = 1
	s.key("panel").took = 50 * time.Millisecond
	renewed := s.scrape("new", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(time.Second)
	if len(s.polls) != 2 {
		t.Fatalf("%d polls, want 2", len(s.polls))
	}
	first, second := s.polls[0], s.polls[1]
	if second.start.Before(first.end) {
		t.Fatalf("the new session's poll started at %v, before the old one ended at %v", second.start.Sub(epoch), first.end.Sub(epoch))
	}
	if old.cl.out[0].Result != 1 || renewed.cl.out[0].Result != 2 {
		t.Fatalf("old caller got poll %d, new caller poll %d", old.cl.out[0].Result, renewed.cl.out[0].Result)
	}
}

// Slots belong to the scheduler: callers of several configurations (a
// reload at every scrape, each changing the concurrency back to 4) never
// have more than 4 polls in flight.
func TestConcurrencyAcrossReloads(t *testing.T) {
	s := newSim(t, 4)
	keys := names("d", 40)
	for i, k := range keys {
		s.key(k).took = time.Duration(100+i*10) * time.Millisecond
	}
	most := 0
	for i := range 20 {
		s.c.resize(4 + i%2*12) // a reload to 16 and back to 4
		s.c.resize(4)
		s.scrape("scrape", keys, 2*time.Second, 0, defaultJob)
		for range 100 {
			s.run(5 * time.Millisecond)
			most = max(most, s.c.inFlight)
		}
	}
	if most > 4 {
		t.Fatalf("%d polls in flight with concurrency 4", most)
	}
	if most < 3 { // the fast pool's 3 slots: these polls are never slow
		t.Fatalf("at most %d polls in flight: the test did not fill the slots", most)
	}
}

// A device that answers within its timeout but slowly (4.8 s of 5) is never
// cut while it is known to be slow, whatever the silent devices beside it:
// up in every scrape after a building goes dark, even while probes of the
// dark devices keep every slot for slow devices busy. Met for the first time
// beside silent devices that fill the slow pool, it is cut at most once,
// and up in every scrape from its first answer on.
func TestSlowHealthyDeviceIsNotCutAgain(t *testing.T) {
	for _, known := range []bool{true, false} {
		s := newSim(t, 16)
		dark := names("dark", 40)
		s.key("slow").took = 4800 * time.Millisecond
		keys := append(append([]string{}, dark...), "slow")
		if known {
			for range 3 {
				s.scrape("prometheus", keys, defaultBudget, 0, defaultJob)
				s.run(defaultInterval)
			}
		}
		for _, k := range dark {
			s.key(k).silent = true
		}
		var ups []int
		for i := range 10 {
			// Probes of the dark devices keep the slow pool busy when the
			// fleet's scrape comes.
			s.scrape("probes", dark, defaultBudget, 0, defaultJob)
			s.run(100 * time.Millisecond)
			if known && i >= 2 && s.c.pools[slowPool].used < s.c.pools[slowPool].size {
				t.Fatalf("the slow pool is not full: %d of %d", s.c.pools[slowPool].used, s.c.pools[slowPool].size)
			}
			sc := s.scrape("prometheus", keys, defaultBudget, 0, defaultJob)
			s.run(defaultInterval)
			ups = append(ups, s.upIn(sc, []string{"slow"}))
		}
		cuts := 0
		for _, p := range s.polls {
			if p.key == "slow" && p.cut {
				cuts++
			}
		}
		t.Logf("slow device (known %v) beside 40 silent, concurrency 16: up per scrape %v, cut %d time(s)", known, ups, cuts)
		first := slices.Index(ups, 1)
		switch {
		case known && (cuts > 0 || first != 0):
			t.Fatalf("known slow device: cut %d times, first up in scrape %d", cuts, first+1)
		case cuts > 1 || first < 0:
			t.Fatalf("cut %d times, never up", cuts)
		}
		for i, n := range ups[first:] {
			if n != 1 {
				t.Fatalf("scrape %d: the slow device is down again after it answered", first+i+1)
			}
		}
	}
}

// Within min_poll_interval a result is reused; after it, polled again; a
// result is never reused across sessions.
func TestMinPollInterval(t *testing.T) {
	s := newSim(t, 4)
	a := s.scrape("a", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(500 * time.Millisecond)
	b := s.scrape("b", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(time.Second)
	c := s.scrape("c", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(100 * time.Millisecond)
	s.key("panel").session = 7
	d := s.scrape("d", []string{"panel"}, defaultBudget, 0, defaultJob)
	s.run(time.Second)
	got := []How{a.cl.out[0].How, b.cl.out[0].How, c.cl.out[0].How, d.cl.out[0].How}
	want := []How{Fresh, Reused, Fresh, Fresh}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("served %v, want %v", got, want)
		}
	}
}

// Devices known to answer slowly that go silent do not starve the healthy
// ones (the case of 12 such devices at concurrency 8): a fleet scrape lends
// them at most half the fast slots, and polls them there only until their
// patience (what their last answer took plus a quarter of the timeout), so
// probes of healthy devices with a 1.5 s budget are served while the silent
// polls the scrape started are still in flight.
func TestSlowDevicesGoingSilentDoNotStarveProbes(t *testing.T) {
	s := newSim(t, 8) // 6 fast slots, 2 slow
	slow, healthy := names("slow", 12), names("ok", 5)
	for _, k := range slow {
		s.key(k).took = 2 * time.Second // of a 5 s timeout: Slow
	}
	keys := append(append([]string{}, slow...), healthy...)
	for range 4 {
		s.scrape("prometheus", keys, defaultBudget, 0, defaultJob)
		s.run(defaultInterval)
	}
	for _, k := range slow {
		if c := s.c.entries[k].class; c != Slow {
			t.Fatalf("%s is %v after answering in 2 s, want slow", k, c)
		}
		s.key(k).silent = true
	}
	start := len(s.polls)
	s.scrape("prometheus", keys, defaultBudget, 0, defaultJob)
	s.run(1100 * time.Millisecond) // past the healthy keys' min interval
	lent := s.c.pools[fastPool].used
	var probes []*simCaller
	for _, k := range healthy {
		probes = append(probes, s.scrape("probe", []string{k}, 1500*time.Millisecond, 0, defaultJob))
	}
	s.run(defaultInterval)
	var ups []int
	for _, p := range probes {
		ups = append(ups, s.upIn(p, []string{p.jobs[0].Key}))
	}
	// How long the slow keys' polls held the fast slots they borrowed
	// (those that moved to the slow pool no longer hold one).
	held := time.Duration(0)
	for _, p := range s.polls[start:] {
		if strings.HasPrefix(p.key, "slow") && p.f.pool == fastPool {
			held = max(held, p.end.Sub(p.start))
		}
	}
	t.Logf("12 slow devices gone silent, concurrency 8: %d fast slots held when the probes came; healthy up per probe %v; borrowed slots held at most %v", lent, ups, held)
	for i, n := range ups {
		if n != 1 {
			t.Errorf("probe of %s: %v, want up", healthy[i], probes[i].cl.out[0].How)
		}
	}
	if lent > 3 {
		t.Errorf("%d of 6 fast slots lent to slow devices, want at most half", lent)
	}
	if patience := 2*time.Second + defaultJob.Timeout/4; held > patience {
		t.Errorf("a borrowed fast slot was held %v, past its patience %v", held, patience)
	}
}
