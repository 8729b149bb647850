package schedule

import (
	"cmp"
	"container/heap"
	"slices"
	"time"
)

// core is the scheduler's state: which polls are in flight, which slots
// they hold, who waits for what and what each key answered last. It is a
// state machine without goroutines, timers or locks: every method is one
// event at the time now given, and returns what the caller must do (start
// polls, cancel one, release callers). The Scheduler drives it under a
// mutex with real goroutines and timers; the tests drive it with a fake
// clock and fake polls, one event at a time.
type core[R any] struct {
	pools   [numPools]pool[R]
	entries map[string]*entry[R]
	// slow holds the flights in the fast pool by the time they become
	// slow, earliest first.
	slow     slowHeap[R]
	inFlight int
	// lent counts the fast slots held by borrowed polls: polls of keys
	// placed in the slow pool (Slow) that took a fast slot. At most
	// lendable of them start.
	lent int
	seq  uint64 // orders callers' requests
	// stale counts, at most, the queued requests whose caller has left:
	// the queues are compacted when they are half stale.
	stale int
}

// The two pools of slots. Devices expected to answer quickly (they did
// last time, or were never polled) take fast slots; devices expected to be
// slow or silent take slow slots, so that however many there are they
// never hold a slot an answering device needs.
const (
	fastPool = iota
	slowPool
	numPools
)

type pool[R any] struct {
	size, used int
	// queues by rank (see placement).
	queues [3][]*request[R]
}

// entry is what the scheduler knows of one key.
type entry[R any] struct {
	key      string
	flight   *flight[R]
	last     landed[R] // valid when hasLast
	hasLast  bool
	class    Class
	tried    int64         // Unix ns when its last poll ended, for the silent's rotation
	answered int64         // Unix ns when it last answered, for the suspects' order
	took     time.Duration // how long its last answered poll took, for a borrower's patience
	blocked  []*request[R] // requests waiting for another session's flight to end
	queued   int           // requests in the pools' queues
}

type landed[R any] struct {
	session any
	at      time.Time
	result  R
}

// flight is a poll in progress.
type flight[R any] struct {
	entry   *entry[R]
	job     *Job[R]
	pool    int
	started time.Time
	slowAt  time.Time
	heapIdx int // in core.slow, -1 when not there
	class   Class
	cut     bool
	// borrowed: a poll of a key placed in the slow pool holding a fast
	// slot (counted in core.lent while it holds it).
	borrowed bool
	waiters  []*request[R]
	// cancel is the driver's: it cancels the poll's context.
	cancel func()
}

// request is one job of one caller.
type request[R any] struct {
	caller *caller[R]
	i      int
	job    *Job[R]
	seq    uint64
	done   bool
}

// caller is one call of Do: its jobs, its deadline and, once done, what
// each job was served.
type caller[R any] struct {
	deadline time.Time // zero: none
	out      []Served[R]
	pending  int
	done     bool
	release  chan struct{} // closed by the driver when done
}

// Effects are what an event asks of the driver.
type effects[R any] struct {
	start    []*flight[R]
	cancel   []*flight[R]
	released []*caller[R]
}

func newCore[R any](concurrency int) *core[R] {
	c := &core[R]{entries: map[string]*entry[R]{}}
	c.resize(concurrency)
	return c
}

// resize sets the pools' sizes for a concurrency of n: a quarter of the
// slots (at least one from 2 on) for the slow pool, the rest for the fast
// pool. With one slot there is a fast pool only, and slow polls wait for
// it. Polls in flight keep their slots; no new poll starts in a pool until
// it is below its new size.
func (c *core[R]) resize(n int) {
	n = max(1, n)
	slow := 0
	if n >= 2 {
		slow = max(1, n/4)
	}
	c.pools[fastPool].size = n - slow
	c.pools[slowPool].size = slow
}

// lendable is how many fast slots polls of Slow keys may hold at once:
// half the fast pool, rounded down, so that at least half of it (and at
// least one slot) always waits for the keys expected to answer quickly.
// Lending is what lets a key known to answer slowly go ahead of the silent
// keys that fill the slow pool; bounding it is what keeps slow keys that
// go silent from holding every fast slot at once. With no slow pool
// (concurrency 1) every key shares the one pool: nothing is lent.
func (c *core[R]) lendable() int {
	if c.pools[slowPool].size == 0 {
		return c.pools[fastPool].size
	}
	return c.pools[fastPool].size / 2
}

func (c *core[R]) entry(key string) *entry[R] {
	e := c.entries[key]
	if e == nil {
		e = &entry[R]{key: key}
		c.entries[key] = e
	}
	return e
}

// arrive registers a caller and serves what can be served at once.
func (c *core[R]) arrive(now time.Time, cl *caller[R], jobs []Job[R], fx *effects[R]) {
	cl.out = make([]Served[R], len(jobs))
	cl.pending = len(jobs)
	var suspect, silent []*request[R]
	reqs := make([]request[R], len(jobs)) // one allocation for the caller's requests
	for i := range jobs {
		r := &reqs[i]
		*r = request[R]{caller: cl, i: i, job: &jobs[i]}
		if c.serveWithoutPoll(now, r, fx) {
			continue
		}
		e := c.entry(r.job.Key)
		switch e.class {
		case Suspect:
			suspect = append(suspect, r)
		case Silent:
			silent = append(silent, r)
		default:
			c.enqueue(r, e)
		}
	}
	// Suspects are tried most recently answered first: a device cut once
	// by bad luck goes before those of a building that went dark.
	slices.SortStableFunc(suspect, func(a, b *request[R]) int {
		return cmp.Compare(c.entries[b.job.Key].answered, c.entries[a.job.Key].answered)
	})
	// The silent are tried longest untried first, so that when there are
	// more than the slow pool can poll in a scrape, each gets its turn.
	slices.SortStableFunc(silent, func(a, b *request[R]) int {
		return cmp.Compare(c.entries[a.job.Key].tried, c.entries[b.job.Key].tried)
	})
	for _, r := range append(suspect, silent...) {
		c.enqueue(r, c.entries[r.job.Key])
	}
	if cl.pending == 0 {
		c.finish(cl, fx)
		return
	}
	c.dispatch(now, fx)
}

// serveWithoutPoll serves r from the key's last result, or makes it wait
// for the key's poll in flight, when either belongs to r's session.
func (c *core[R]) serveWithoutPoll(now time.Time, r *request[R], fx *effects[R]) bool {
	e := c.entries[r.job.Key]
	if e == nil {
		return false
	}
	if l := &e.last; e.hasLast && l.session == r.job.Session && now.Sub(l.at) < r.job.MinInterval {
		c.serve(r, Served[R]{Result: l.result, How: Reused, At: l.at}, fx)
		return true
	}
	if f := e.flight; f != nil && f.job.Session == r.job.Session {
		r.caller.out[r.i].How = Shared
		f.waiters = append(f.waiters, r)
		return true
	}
	return false
}

func (c *core[R]) enqueue(r *request[R], e *entry[R]) {
	c.seq++
	r.seq = c.seq
	p, rank := placement(e.class)
	c.pools[p].queues[rank] = append(c.pools[p].queues[rank], r)
	e.queued++
}

// placement is the pool and the rank in it of a key of class cl.
func placement(cl Class) (pool, rank int) {
	switch cl {
	case Fast:
		return fastPool, 0
	case Unknown:
		return fastPool, 1
	case Slow:
		return slowPool, 0
	case Suspect:
		return slowPool, 1
	}
	return slowPool, 2
}

// dispatch starts queued polls while their pool has free slots. The slow
// pool serves its own queues (Slow, Suspect, Silent); the fast pool serves
// Fast and Unknown, then Slow: a device known to answer, slowly, borrows a
// fast slot rather than wait behind a silent one, while fewer than
// lendable fast slots are lent. With no slow pool (concurrency 1) the fast
// pool serves every queue.
func (c *core[R]) dispatch(now time.Time, fx *effects[R]) {
	type source struct{ pool, queue, rank int }
	order := []source{
		{slowPool, slowPool, 0}, {slowPool, slowPool, 1}, {slowPool, slowPool, 2},
		{fastPool, fastPool, 0}, {fastPool, fastPool, 1}, {fastPool, slowPool, 0},
	}
	if c.pools[slowPool].size == 0 {
		order = append(order, source{fastPool, slowPool, 1}, source{fastPool, slowPool, 2})
	}
	for _, src := range order {
		p, q := &c.pools[src.pool], &c.pools[src.queue].queues[src.rank]
		lending := src.pool == fastPool && src.queue == slowPool
		for p.used < p.size && len(*q) > 0 && (!lending || c.lent < c.lendable()) {
			r := (*q)[0]
			(*q)[0] = nil
			*q = (*q)[1:]
			c.take(now, src.pool, r, fx)
		}
	}
}

// take is r at the head of a queue with a slot free in pool p.
func (c *core[R]) take(now time.Time, p int, r *request[R], fx *effects[R]) {
	e := c.entries[r.job.Key]
	e.queued--
	if r.isDone() {
		return
	}
	if c.serveWithoutPoll(now, r, fx) {
		return
	}
	if e.flight != nil { // another session's poll: never two at once
		e.blocked = append(e.blocked, r)
		return
	}
	if d := r.caller.deadline; !d.IsZero() && !d.After(now.Add(r.job.StartMargin)) {
		c.serve(r, Served[R]{How: Skipped}, fx)
		return
	}
	borrow := p == fastPool && c.pools[slowPool].size > 0 && e.class != Fast && e.class != Unknown
	if borrow && (e.class != Slow || c.lent >= c.lendable()) {
		// Its key was placed again since it queued (a poll of another
		// caller ended): it waits where it is placed now, for the fast
		// pool lends only to Slow keys, and only lendable slots.
		c.enqueue(r, e)
		return
	}
	f := &flight[R]{entry: e, job: r.job, pool: p, started: now, class: e.class, heapIdx: -1}
	e.flight = f
	c.pools[p].used++
	c.inFlight++
	r.caller.out[r.i].How = Fresh
	f.waiters = append(f.waiters, r)
	if p == fastPool && c.pools[slowPool].size > 0 {
		if borrow {
			f.borrowed = true
			c.lent++
		}
		if pt := patience(e.class, r.job.Timeout, e.took); pt > 0 && pt < r.job.Timeout {
			f.slowAt = now.Add(pt)
			heap.Push(&c.slow, f)
		}
	}
	fx.start = append(fx.start, f)
}

// patience is how long a poll in the fast pool may go without an answer
// before it counts as slow: a quarter of its timeout for a key that
// answered quickly last time, a tenth for a key never polled (one that
// answers at all usually does in a fraction of that), and for a key known
// to answer slowly that borrowed the slot, what its last answer took plus
// a quarter of its timeout (the fast keys' patience, as room for its
// answers to vary). A patience that reaches the timeout is none: the
// timeout ends the poll first. Zero with no timeout: never slow.
func patience(cl Class, timeout, took time.Duration) time.Duration {
	switch cl {
	case Unknown:
		return timeout / 10
	case Fast:
		return timeout / 4
	}
	return took + timeout/4
}

// tick moves the flights of the fast pool that have become slow (see
// patience) to the slow pool. When the slow pool is full, the poll is cut:
// its key did not answer within its patience while the slow pool is busy
// with others, and holding a fast slot for the rest of the timeout would
// let a dark building (or slow devices that went dark) starve the devices
// that answer. A borrowed poll is cut the same way, at the patience its key
// earned by answering slowly: a Slow key that answers as slowly as it did
// last time is never cut.
func (c *core[R]) tick(now time.Time, fx *effects[R]) {
	for c.slow.Len() > 0 && !c.slow[0].slowAt.After(now) {
		f := heap.Pop(&c.slow).(*flight[R])
		if c.pools[slowPool].used < c.pools[slowPool].size {
			c.pools[fastPool].used--
			c.pools[slowPool].used++
			f.pool = slowPool
			if f.borrowed {
				f.borrowed = false
				c.lent--
			}
			continue
		}
		f.cut = true
		fx.cancel = append(fx.cancel, f)
	}
	c.dispatch(now, fx)
}

// nextTick is when tick has work next, zero when never.
func (c *core[R]) nextTick() time.Time {
	if c.slow.Len() == 0 {
		return time.Time{}
	}
	return c.slow[0].slowAt
}

// land ends f with result; answered is false when the key gave no answer
// within the poll's deadline.
func (c *core[R]) land(now time.Time, f *flight[R], result R, answered bool, fx *effects[R]) {
	e := f.entry
	e.flight = nil
	c.pools[f.pool].used--
	c.inFlight--
	if f.borrowed {
		c.lent--
	}
	if f.heapIdx >= 0 {
		heap.Remove(&c.slow, f.heapIdx)
	}
	switch took := now.Sub(f.started); {
	case !answered && f.cut:
		e.class = Suspect
	case !answered:
		e.class = Silent
	case f.job.Timeout > 0 && took > f.job.Timeout/4:
		e.class = Slow
	default:
		e.class = Fast
	}
	e.tried = now.UnixNano()
	if answered {
		e.answered = e.tried
		e.took = now.Sub(f.started)
	}
	e.last, e.hasLast = landed[R]{session: f.job.Session, at: now, result: result}, true
	for _, r := range f.waiters {
		if !r.isDone() {
			how := r.caller.out[r.i].How
			c.serve(r, Served[R]{Result: result, How: how, At: now, Cut: f.cut}, fx)
		}
	}
	blocked := e.blocked
	e.blocked = nil
	for _, r := range blocked {
		if r.isDone() || c.serveWithoutPoll(now, r, fx) {
			continue
		}
		c.enqueue(r, e)
	}
	c.dispatch(now, fx)
}

// expire ends cl's wait at its deadline (or when it gave up): what is not
// served yet is Skipped when its poll never started, WaitedOut when it
// did. Polls in flight go on for the other callers and the next ones.
func (c *core[R]) expire(cl *caller[R], fx *effects[R]) {
	if cl.done {
		return
	}
	for i := range cl.out {
		if cl.out[i].How == pending {
			cl.out[i].How = Skipped
			c.stale++
		} else if !cl.out[i].served {
			cl.out[i].How = WaitedOut
		}
	}
	cl.pending = 0
	c.finish(cl, fx)
	queued := 0
	for p := range c.pools {
		for _, q := range c.pools[p].queues {
			queued += len(q)
		}
	}
	if 2*c.stale > queued {
		c.compact()
	}
}

// compact drops from the queues the requests whose caller has left, so
// that callers who give up while a dark building holds every slot leave
// nothing behind. It runs when half the queued requests are stale, so a
// flood of callers who give up costs each a constant share of it.
func (c *core[R]) compact() {
	c.stale = 0
	for p := range c.pools {
		for rank, q := range c.pools[p].queues {
			kept := q[:0]
			for _, r := range q {
				if r.isDone() {
					c.entries[r.job.Key].queued--
					continue
				}
				kept = append(kept, r)
			}
			clear(q[len(kept):])
			c.pools[p].queues[rank] = kept
		}
	}
}

func (c *core[R]) serve(r *request[R], s Served[R], fx *effects[R]) {
	r.done = true
	s.served = true
	r.caller.out[r.i] = s
	r.caller.pending--
	if r.caller.pending == 0 {
		c.finish(r.caller, fx)
	}
}

// finish releases a caller; its requests still queued or waiting are
// marked done lazily through the caller.
func (c *core[R]) finish(cl *caller[R], fx *effects[R]) {
	if cl.done {
		return
	}
	cl.done = true
	fx.released = append(fx.released, cl)
}

// isDone is whether r no longer matters: served, or its caller left.
func (r *request[R]) isDone() bool { return r.done || r.caller.done }

// forget drops key's last result, so that the next caller polls.
func (c *core[R]) forget(key string) {
	if e := c.entries[key]; e != nil {
		e.last, e.hasLast = landed[R]{}, false
	}
}

// prune drops what is known of the keys keep refuses, except those with
// a poll in flight or requests waiting.
func (c *core[R]) prune(keep func(string) bool) {
	for k, e := range c.entries {
		if !keep(k) && e.flight == nil && e.queued == 0 && len(e.blocked) == 0 {
			delete(c.entries, k)
		}
	}
}

// slowHeap orders flights by when they become slow.
type slowHeap[R any] []*flight[R]

func (h slowHeap[R]) Len() int           { return len(h) }
func (h slowHeap[R]) Less(i, j int) bool { return h[i].slowAt.Before(h[j].slowAt) }
func (h slowHeap[R]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *slowHeap[R]) Push(x any) {
	f := x.(*flight[R])
	f.heapIdx = len(*h)
	*h = append(*h, f)
}
func (h *slowHeap[R]) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	f.heapIdx = -1
	*h = old[:len(old)-1]
	return f
}
