package schedule

import (
	"container/heap"
	"fmt"
	"testing"
	"time"
)

// sim drives a core with a fake clock and fake polls, one event at a time,
// and checks the package's invariants after every event.
type sim struct {
	t    testing.TB
	c    *core[int]
	now  time.Time
	q    eventQueue
	seq  int
	keys map[string]*simKey

	polls    []*simPoll          // every poll started; a result is its index+1
	inFlight map[string]*simPoll // by key
	callers  map[*caller[int]]*simCaller
	waiting  map[*simCaller]bool
	events   int
	// took is how long each key's last answered poll took: a borrowed
	// poll's patience is that plus a quarter of its timeout.
	took map[string]time.Duration
	// resized is when the concurrency last changed: polls in flight keep
	// their slots, so until they end more fast slots may be lent than a
	// pool of the new size lends.
	resized time.Time
}

// simKey is how a fake device behaves: it answers after took, or never
// when silent. Tests change it as time goes.
type simKey struct {
	silent  bool
	took    time.Duration
	session int
	// forgotAt: the last result was dropped by forget at this time.
	forgotAt time.Time
}

type simPoll struct {
	key        string
	session    any
	start, end time.Time
	landed     bool
	answered   bool
	cut        bool
	f          *flight[int]
	// patience: a poll that borrowed a fast slot holds it no later than
	// start+patience (zero: the timeout ends it first).
	patience time.Duration
}

type simCaller struct {
	name     string
	cl       *caller[int]
	jobs     []Job[int]
	arrived  time.Time
	deadline time.Time
	released time.Time
	done     bool
}

type event struct {
	at  time.Time
	seq int
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSim(t testing.TB, concurrency int) *sim {
	return &sim{t: t, c: newCore[int](concurrency), now: epoch, keys: map[string]*simKey{}, inFlight: map[string]*simPoll{},
		callers: map[*caller[int]]*simCaller{}, waiting: map[*simCaller]bool{}, took: map[string]time.Duration{}}
}

// resize changes the concurrency, as a reload does.
func (s *sim) resize(n int) {
	s.c.resize(n)
	s.resized = s.now
	var fx effects[int]
	s.c.dispatch(s.now, &fx)
	s.effects(&fx)
}

func (s *sim) key(name string) *simKey {
	k := s.keys[name]
	if k == nil {
		k = &simKey{took: 50 * time.Millisecond}
		s.keys[name] = k
	}
	return k
}

func (s *sim) at(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, &event{at: s.now.Add(d), seq: s.seq, fn: fn})
}

// run processes events until until (from the start), checking invariants.
func (s *sim) runUntil(until time.Time) {
	for s.q.Len() > 0 && !s.q[0].at.After(until) {
		e := heap.Pop(&s.q).(*event)
		s.now = e.at
		e.fn()
		s.events++
		s.check()
	}
	if until.After(s.now) {
		s.now = until
	}
}

func (s *sim) run(d time.Duration) { s.runUntil(s.now.Add(d)) }

// effects applies what the core asked: polls start (their landing is
// scheduled by how their key behaves), cuts land the poll at once, callers
// are released.
func (s *sim) effects(fx *effects[int]) {
	for _, f := range fx.start {
		k := s.key(f.entry.key)
		if p := s.inFlight[f.entry.key]; p != nil {
			s.t.Fatalf("%v: two polls of %s at once", s.now, f.entry.key)
		}
		// invariant 5: MinInterval within a session.
		for i := len(s.polls) - 1; i >= 0; i-- {
			p := s.polls[i]
			if p.key != f.entry.key || p.session != f.job.Session || !p.landed {
				continue
			}
			if s.now.Sub(p.end) < f.job.MinInterval && p.end.After(k.forgotAt) {
				s.t.Fatalf("%v: poll of %s %v after the last one of its session ended (min interval %v)", s.now, p.key, s.now.Sub(p.end), f.job.MinInterval)
			}
			break
		}
		if pl := s.c.pools[f.pool]; pl.used > pl.size {
			s.t.Fatalf("%v: a poll started in a pool of %d slots with %d held", s.now, pl.size, pl.used)
		}
		p := &simPoll{key: f.entry.key, session: f.job.Session, start: s.now, f: f}
		if f.borrowed {
			// Lending is bounded: at most half the fast slots.
			if lendable := s.c.pools[fastPool].size / 2; s.c.lent > lendable {
				s.t.Fatalf("%v: a poll of %s borrowed a fast slot with %d lent, at most %d (pools of %d fast, %d slow slots)", s.now, p.key, s.c.lent, lendable, s.c.pools[fastPool].size, s.c.pools[slowPool].size)
			}
			if pt := s.took[p.key] + f.job.Timeout/4; f.job.Timeout > 0 && pt < f.job.Timeout {
				p.patience = pt
			}
		}
		s.polls = append(s.polls, p)
		s.inFlight[p.key] = p
		id := len(s.polls)
		took, answered := k.took, !k.silent
		if !answered || (f.job.Timeout > 0 && took > f.job.Timeout) {
			took, answered = f.job.Timeout, false
		}
		s.at(took, func() { s.land(p, id, answered) })
	}
	for _, f := range fx.cancel {
		for _, p := range s.inFlight {
			if p.f == f {
				p.cut = true
				s.at(0, func() { s.land(p, s.indexOf(p), false) })
			}
		}
	}
	for _, cl := range fx.released {
		sc := s.callers[cl]
		if sc.done {
			s.t.Fatalf("%v: caller %s released twice", s.now, sc.name)
		}
		sc.done, sc.released = true, s.now
		delete(s.waiting, sc)
		if !sc.deadline.IsZero() && s.now.After(sc.deadline) {
			s.t.Fatalf("%v: caller %s released after its deadline %v", s.now, sc.name, sc.deadline)
		}
		for i, o := range sc.cl.out {
			s.checkServed(sc, i, o)
		}
	}
	if t := s.c.nextTick(); !t.IsZero() {
		s.seq++
		heap.Push(&s.q, &event{at: t, seq: s.seq, fn: func() {
			var fx effects[int]
			s.c.tick(s.now, &fx)
			s.effects(&fx)
		}})
	}
}

func (s *sim) indexOf(p *simPoll) int {
	for i, q := range s.polls {
		if q == p {
			return i + 1
		}
	}
	return 0
}

func (s *sim) land(p *simPoll, id int, answered bool) {
	if p.landed {
		return // cut, then its timer came
	}
	p.landed, p.end, p.answered = true, s.now, answered
	delete(s.inFlight, p.key)
	if answered {
		s.took[p.key] = s.now.Sub(p.start)
	}
	var fx effects[int]
	s.c.land(s.now, p.f, id, answered, &fx)
	s.effects(&fx)
}

// scrape arrives now with a job per key and waits budget at most (zero:
// no deadline); the caller leaves after leave when leave > 0.
func (s *sim) scrape(name string, keys []string, budget, leave time.Duration, job Job[int]) *simCaller {
	jobs := make([]Job[int], len(keys))
	for i, k := range keys {
		j := job
		j.Key, j.Session = k, s.key(k).session
		jobs[i] = j
	}
	sc := &simCaller{name: name, cl: &caller[int]{}, jobs: jobs, arrived: s.now}
	if budget > 0 {
		sc.deadline = s.now.Add(budget)
		sc.cl.deadline = sc.deadline
	}
	s.callers[sc.cl] = sc
	s.waiting[sc] = true
	var fx effects[int]
	s.c.arrive(s.now, sc.cl, jobs, &fx)
	s.effects(&fx)
	gone := func() {
		var fx effects[int]
		s.c.expire(sc.cl, &fx)
		s.effects(&fx)
	}
	if budget > 0 {
		s.at(budget, gone)
	}
	if leave > 0 {
		s.at(leave, gone)
	}
	s.check()
	return sc
}

// check verifies the invariants that hold between events.
func (s *sim) check() {
	c := s.c
	used := c.pools[fastPool].used + c.pools[slowPool].used
	if used != c.inFlight || c.inFlight != len(s.inFlight) {
		s.t.Fatalf("%v: %d slots held, core counts %d polls in flight, %d really in flight", s.now, used, c.inFlight, len(s.inFlight))
	}
	for sc := range s.waiting {
		if !sc.deadline.IsZero() && s.now.After(sc.deadline) {
			s.t.Fatalf("%v: caller %s still waiting past its deadline %v", s.now, sc.name, sc.deadline)
		}
	}
	s.checkLent()
}

// checkLent: the fast slots lent to keys known to be slow are the polls
// that borrowed them and still hold them, and none holds its slot past its
// patience without being cut. An answering key waiting for a fast slot
// therefore never waits (nor is skipped) because borrowed slots are held
// past their patience.
func (s *sim) checkLent() {
	lent := 0
	for _, p := range s.inFlight {
		if !p.f.borrowed {
			continue
		}
		lent++
		if p.f.pool != fastPool {
			s.t.Fatalf("%v: a poll of %s counts as borrowed outside the fast pool", s.now, p.key)
		}
		if p.patience > 0 && !p.cut && s.now.After(p.start.Add(p.patience)) {
			s.t.Fatalf("%v: a poll of %s holds a borrowed fast slot %v, past its patience %v", s.now, p.key, s.now.Sub(p.start), p.patience)
		}
	}
	if lent != s.c.lent {
		s.t.Fatalf("%v: %d polls hold borrowed fast slots, the core counts %d", s.now, lent, s.c.lent)
	}
}

// checkServed: a result served is one of a poll of the job's key and
// session that ended; Reused within MinInterval; nothing for Skipped and
// WaitedOut.
func (s *sim) checkServed(sc *simCaller, i int, o Served[int]) {
	j := sc.jobs[i]
	switch o.How {
	case Fresh, Shared, Reused:
		if o.Result < 1 || o.Result > len(s.polls) {
			s.t.Fatalf("%s job %s: result %d is no poll's", sc.name, j.Key, o.Result)
		}
		p := s.polls[o.Result-1]
		if p.key != j.Key || p.session != j.Session || !p.landed || !p.end.Equal(o.At) {
			s.t.Fatalf("%s job %s session %v: served poll of %s session %v", sc.name, j.Key, j.Session, p.key, p.session)
		}
		if p.end.After(sc.released) {
			s.t.Fatalf("%s job %s: served a poll that ended after the caller left", sc.name, j.Key)
		}
		if o.How == Reused && sc.arrived.Sub(p.end) >= j.MinInterval {
			s.t.Fatalf("%s job %s: reused a result %v old (min interval %v)", sc.name, j.Key, sc.arrived.Sub(p.end), j.MinInterval)
		}
		if o.How != Reused && p.start.Before(sc.arrived) && o.How == Fresh {
			s.t.Fatalf("%s job %s: fresh result of a poll started before it came", sc.name, j.Key)
		}
	case Skipped, WaitedOut:
		if o.Result != 0 || !o.At.IsZero() {
			s.t.Fatalf("%s job %s: %v with a result", sc.name, j.Key, o.How)
		}
		// A key expected to answer is skipped only while at least half
		// the fast slots are not lent (unless a reload shrank the pool
		// under polls that keep their slots).
		if e := s.c.entries[j.Key]; e != nil && o.How == Skipped && (e.class == Fast || e.class == Unknown) && s.c.pools[slowPool].size > 0 {
			if lendable := s.c.pools[fastPool].size / 2; s.c.lent > lendable && s.now.Sub(s.resized) > j.Timeout {
				s.t.Fatalf("%v: %s job %s skipped with %d fast slots lent, at most %d", s.now, sc.name, j.Key, s.c.lent, lendable)
			}
		}
	default:
		s.t.Fatalf("%s job %s: released with how %v", sc.name, j.Key, o.How)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// upIn is how many of keys the caller got a result of an answering poll for.
func (s *sim) upIn(sc *simCaller, keys []string) int {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	n := 0
	for i, o := range sc.cl.out {
		if want[sc.jobs[i].Key] && o.How.Polled() && s.polls[o.Result-1].answered {
			n++
		}
	}
	return n
}
