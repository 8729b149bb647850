package schedule

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var (
	defaultTimelines = 500
	timelines        = flag.Int("timelines", 0, "random timelines TestRandomTimelines runs (0: 500, 100 under the race detector)")
)

// TestRandomTimelines runs generated timelines: devices that answer
// quickly, slowly, never, or change their mind, devices known to answer
// slowly that go silent (one at a time, or a whole slow building at a
// random instant); a Prometheus scraping the
// fleet with a random budget; probes and debug views of single devices with
// short deadlines, some of which give up; reloads that change sessions and
// the concurrency; results forgotten. After every event the simulator
// checks the invariants (see sim.check and sim.effects): slots held equal
// polls in flight and no poll starts in a full pool; never two polls of
// one key at once, across sessions; no caller waits past its deadline;
// min_poll_interval within a session; a result served is a poll's of the
// same key and session that ended before the caller left, and a skipped or
// waited-out caller gets no result; at most half the fast slots lent to
// keys known to be slow, and no borrowed fast slot held past its patience
// (so an answering key never waits for one that is), nor a key expected to
// answer skipped while more are lent. At the end, every key that answered
// quickly throughout is up in every fleet scrape from the third on, when
// the fleet's silent and slow keys fit what one scrape can find.
func TestRandomTimelines(t *testing.T) {
	n := *timelines
	if n == 0 {
		n = defaultTimelines
	}
	events, scrapes, slowSilent := 0, 0, 0
	for seed := range uint64(n) {
		n, sc, ss := randomTimeline(t, seed)
		events += n
		scrapes += sc
		slowSilent += ss
	}
	t.Logf("%d timelines, %d events checked, %d fleet scrapes checked for liveness, %d keys known to be slow went silent", n, events, scrapes, slowSilent)
}

func randomTimeline(t *testing.T, seed uint64) (events, scrapes, slowSilent int) {
	defer func() {
		if t.Failed() {
			t.Logf("in the timeline of seed %d", seed)
		}
	}()
	r := rand.New(rand.NewPCG(seed, 0x5c4ed))
	concurrency := []int{1, 2, 3, 4, 8, 16, 64}[r.IntN(7)]
	s := newSim(t, concurrency)
	goSilent := func(k string) {
		if e := s.c.entries[k]; e != nil && e.class == Slow {
			slowSilent++
		}
		s.key(k).silent = true
	}
	timeout := time.Duration(1+r.IntN(5)) * time.Second
	job := Job[int]{Timeout: timeout, MinInterval: time.Duration(r.IntN(3)) * 500 * time.Millisecond, StartMargin: min(timeout/10, 100*time.Millisecond)}
	budget := time.Duration(500+r.IntN(9500)) * time.Millisecond
	interval := budget + timeout + time.Duration(r.IntN(10))*time.Second

	nKeys := 3 + r.IntN(60)
	// A slow building: in a quarter of the timelines, up to twice as many
	// keys as slots answer slowly, and all of them go silent together at a
	// random instant (the keys come after the others: nKeys-slowBuilding on).
	slowBuilding := 0
	if r.IntN(4) == 0 {
		slowBuilding = 1 + r.IntN(2*concurrency)
		nKeys += slowBuilding
	}
	keys := names("k", nKeys)
	stable := map[string]bool{} // answers quickly throughout
	slowCount, unstable := 0, 0
	for i, k := range keys {
		sk := s.key(k)
		if i >= nKeys-slowBuilding {
			sk.took = timeout/4 + 1 + time.Duration(r.Int64N(int64(timeout*3/4)))
			unstable++
			continue
		}
		switch x := r.IntN(10); {
		case x < 5:
			sk.took = time.Duration(1+r.IntN(int(timeout.Milliseconds()/20))) * time.Millisecond
			stable[k] = true
		case x < 7:
			sk.silent = true
			unstable++
		case x < 8:
			sk.took = timeout/4 + time.Duration(r.Int64N(int64(timeout*3/4)))
			slowCount++
		default: // changes its mind as time goes
			sk.took = time.Duration(1+r.IntN(int(timeout.Milliseconds()))) * time.Millisecond
			unstable++
		}
	}
	// Liveness is owed when a scrape can find every key that is not
	// stable: each fast slot finds one per quarter of the timeout, and the
	// slow ones fit the slow pool.
	fast := concurrency - max(1, concurrency/4)
	slowSlots := max(1, concurrency/4)
	live := concurrency >= 4 &&
		unstable+slowCount <= fast*int(budget/(timeout/4)) &&
		time.Duration(slowCount)*timeout*2 <= time.Duration(slowSlots)*budget &&
		time.Duration(len(stable))*timeout/20 <= time.Duration(fast)*budget/4

	var fleet []*simCaller
	end := s.now.Add(12 * interval)
	dark := s.now.Add(time.Duration(r.Int64N(int64(12 * interval))))
	for s.now.Before(end) {
		// the fleet scrape
		fleet = append(fleet, s.scrape(fmt.Sprint("scrape", len(fleet)), keys, budget, 0, job))
		next := s.now.Add(interval)
		for s.now.Before(next) {
			step := time.Duration(r.IntN(int(interval/time.Millisecond/8)+1)) * time.Millisecond
			s.run(step)
			if slowBuilding > 0 && !s.now.Before(dark) {
				for _, k := range keys[nKeys-slowBuilding:] {
					goSilent(k)
				}
				slowBuilding = 0
			}
			switch x := r.IntN(20); {
			case x < 6: // a probe or a debug view: one key, a short deadline
				k := keys[r.IntN(nKeys)]
				s.scrape("probe", []string{k}, time.Duration(1+r.IntN(2000))*time.Millisecond, 0, job)
			case x < 8: // a caller that gives up
				k := keys[r.IntN(nKeys)]
				s.scrape("gone", []string{k}, 0, time.Duration(1+r.IntN(500))*time.Millisecond, job)
			case x < 9: // a reload that changes a key's session
				if !live {
					s.key(keys[r.IntN(nKeys)]).session++
				}
			case x < 10: // a reload that changes the concurrency
				if !live {
					s.resize(1 + r.IntN(16))
				}
			case x < 11:
				k := keys[r.IntN(nKeys)]
				s.c.forget(k)
				s.key(k).forgotAt = s.now
			case x < 13: // an unstable key changes its mind
				k := keys[r.IntN(nKeys)]
				if !stable[k] && s.key(k).took < timeout/4 || !stable[k] && r.IntN(2) == 0 {
					sk := s.key(k)
					sk.silent = !sk.silent && r.IntN(2) == 0
					sk.took = time.Duration(1+r.IntN(int(timeout.Milliseconds()))) * time.Millisecond
				}
			case x < 14: // a key that answers slowly goes silent
				k := keys[r.IntN(nKeys)]
				if sk := s.key(k); !stable[k] && !sk.silent && sk.took > timeout/4 {
					goSilent(k)
				}
			}
		}
	}
	s.run(2 * interval) // every poll ends, every caller is released
	if len(s.waiting) != 0 || s.c.inFlight != 0 {
		t.Fatalf("seed %d: %d callers still waiting, %d polls in flight at the end", seed, len(s.waiting), s.c.inFlight)
	}
	for p := range s.c.pools {
		for rank, q := range s.c.pools[p].queues {
			if len(q) != 0 {
				t.Fatalf("seed %d: %d requests left in queue %d/%d with every caller gone", seed, len(q), p, rank)
			}
		}
	}
	for k, e := range s.c.entries {
		if e.queued != 0 || len(e.blocked) != 0 {
			t.Fatalf("seed %d: key %s still counts %d queued, %d blocked requests", seed, k, e.queued, len(e.blocked))
		}
	}
	if !live {
		return s.events, 0, slowSilent
	}
	for i, sc := range fleet[2:] {
		for j, o := range sc.cl.out {
			k := sc.jobs[j].Key
			if stable[k] && (!o.How.Polled() || !s.polls[o.Result-1].answered) {
				t.Fatalf("seed %d (concurrency %d, %d keys, timeout %v, budget %v): scrape %d: stable key %s got %v",
					seed, concurrency, nKeys, timeout, budget, i+3, k, o.How)
			}
		}
	}
	return s.events, len(fleet) - 2, slowSilent
}
