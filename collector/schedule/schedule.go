// Package schedule runs polls of keyed resources for callers that each
// wait until a deadline of their own. It knows nothing of what is polled:
// a key names a resource (for the exporter, a device's address), a job
// says how to poll it, and a poll returns a result of any type.
//
// # Invariants
//
// Each holds whatever the callers, their deadlines and cancellations, and
// the order in which polls end; the package's tests check every one after
// every event of thousands of generated timelines.
//
//  1. One poll per key at a time, whatever the session: a caller whose
//     key has a poll of another session in flight waits for it to end
//     before its own starts.
//  2. Slots held equal polls in flight, and no poll starts in a pool
//     that has no free slot. The slots belong to the Scheduler, not to a
//     caller or a configuration: SetConcurrency changes their number.
//  3. A poll runs under its job's Timeout and the Scheduler's context,
//     never under a caller's deadline: a caller that stops waiting leaves
//     the poll running for the others.
//  4. No caller is kept past its deadline. What it did not get is
//     Skipped (its poll never started) or WaitedOut (it did); such an
//     outcome is the caller's alone, never stored, shared or reused, and
//     changes nothing the Scheduler knows of the key.
//  5. A result is served to another caller (Shared) or again (Reused)
//     only within the session that polled it, and Reused only while it is
//     younger than the job's MinInterval: a new poll of a key never starts
//     within MinInterval of the end of the last one of the same session.
//  6. Keys that answer are never starved by keys that do not, however
//     many and wherever in the order: each key is placed by how its last
//     poll went (Class) in one of two pools of slots, fast (Fast, then
//     Unknown) and slow (Slow, then Silent, longest untried first), a
//     quarter of the slots. A poll in the fast pool that passes a quarter
//     of its Timeout (a tenth for a key never polled) moves to the slow
//     pool; when that pool is full, the poll is cut, for its key was
//     expected to answer quickly (Fast or Unknown), and the key becomes a
//     Suspect, whose next poll waits in the slow pool with its whole
//     Timeout, ahead of the Silent. A Slow key borrows a free fast slot
//     rather than wait behind the silent, but at most half the fast slots
//     (rounded down) are lent at once, so at least half of them always
//     wait for the keys expected to answer quickly, however many slow keys
//     go silent; and a borrowed poll has a patience too, what its key's
//     last answer took plus a quarter of its Timeout: past it, it moves to
//     the slow pool, or is cut when that is full, as a fast key's poll is.
//     So an answering key never waits for a fast slot held past its
//     patience. Polls in the slow pool are never cut. A key that answers
//     within its Timeout is therefore cut at most once in a row, and never
//     while it answers as quickly as it did last time plus a quarter of
//     its Timeout. A key is placed again only when one of its polls ends:
//     skips and callers that leave change no class.
//
// # Bounds
//
// Finding which keys are silent costs slot time that nothing can avoid: a
// fast slot finds one silent key per patience (a quarter of the Timeout,
// a tenth for keys never polled), so U silent keys ahead of the answering
// ones take about U / (fast slots x budget / patience) callers to find,
// after which they never delay the answering ones again. A key that
// answers only slowly is told from a silent one only by a poll given its
// whole Timeout in the slow pool, which serves about slow slots x budget /
// Timeout such polls per caller. Keys known to be slow that go silent hold
// at most half the fast slots, each for at most its patience (at most the
// Timeout). The package's tests give the figures for the exporter's
// defaults.
//
// The Scheduler is driven by real goroutines and timers around a state
// machine (core) that takes one event at a time, with the time given; the
// tests drive that state machine with a fake clock and fake polls.
package schedule

import (
	"context"
	"sync"
	"time"
)

// How says how a caller was served a job.
type How uint8

const (
	pending   How = iota
	Fresh         // a poll started for this caller
	Shared        // a poll another caller had in flight
	Reused        // the last result, younger than MinInterval
	Skipped       // no poll: the caller's deadline came before a slot
	WaitedOut     // the poll in flight did not end by the caller's deadline
	NumHow
)

var howNames = [NumHow]string{"pending", "fresh", "shared", "reused", "skipped", "waited_out"}

func (h How) String() string { return howNames[h] }

// Polled is whether the caller got a poll's result.
func (h How) Polled() bool { return h == Fresh || h == Shared || h == Reused }

// Class is how a key's last poll went, which decides where its next one
// waits for a slot.
type Class uint8

const (
	Unknown Class = iota // never polled
	Fast                 // answered within a quarter of its Timeout
	Slow                 // answered, later than that
	Suspect              // cut for being slow: not given its whole Timeout yet
	Silent               // did not answer within its Timeout
)

// Job is one key to poll for one caller.
type Job[R any] struct {
	// Key names the resource: never two polls of one key at once.
	Key string
	// Session scopes results: they are shared and reused only between
	// jobs with an equal Session (comparable; for the exporter, the
	// device's session, which a change of address or credentials
	// replaces).
	Session any
	// Timeout bounds the poll; a quarter of it is when a poll counts as
	// slow. Zero: no bound but the Scheduler's context, never slow.
	Timeout time.Duration
	// MinInterval is how long a result is served again instead of polling.
	MinInterval time.Duration
	// StartMargin: no poll starts for a caller with less than this left
	// before its deadline; the job is Skipped.
	StartMargin time.Duration
	// Poll polls the key. answered is false when the key gave no answer
	// (it timed out, or ctx was cancelled because the poll was cut).
	Poll func(ctx context.Context) (result R, answered bool)
}

// Served is what a caller got for one job.
type Served[R any] struct {
	Result R
	How    How
	// At is when the poll served ended; zero for Skipped and WaitedOut.
	At time.Time
	// Cut is set when the poll was cut for going past its patience in a
	// fast slot while the slow pool was full (see invariant 6).
	Cut    bool
	served bool
}

// Options configure a Scheduler.
type Options struct {
	// Concurrency is the number of polls in flight at once (at least 1).
	Concurrency int
	// Context bounds every poll: cancelling it cancels them all.
	Context context.Context
	// Clock is the time source; nil for the real one.
	Clock Clock
}

// Clock is what the Scheduler needs of time.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a Clock's timer.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Scheduler runs polls for callers. It is safe for concurrent use.
type Scheduler[R any] struct {
	ctx   context.Context
	clock Clock

	mu     sync.Mutex
	core   *core[R]
	timer  Timer     // fires at the core's next tick
	timeAt time.Time // when timer fires, zero when none
	gen    uint64    // the timer's generation: a stopped timer's tick that ran anyway does nothing
}

// New returns a Scheduler.
func New[R any](o Options) *Scheduler[R] {
	s := &Scheduler[R]{ctx: o.Context, clock: o.Clock, core: newCore[R](o.Concurrency)}
	if s.ctx == nil {
		s.ctx = context.Background()
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	return s
}

// SetConcurrency changes the number of slots. Polls in flight keep theirs.
func (s *Scheduler[R]) SetConcurrency(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.resize(n)
	var fx effects[R]
	s.core.dispatch(s.clock.Now(), &fx)
	s.apply(&fx)
}

// Do serves every job and returns, in the jobs' order, what each caller
// got, by ctx's deadline at the latest (or when ctx is cancelled).
func (s *Scheduler[R]) Do(ctx context.Context, jobs []Job[R]) []Served[R] {
	cl := &caller[R]{release: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok {
		cl.deadline = d
	}
	if ctx.Err() != nil { // gone already: nothing is started for it
		cl.deadline = s.clock.Now()
	}
	s.mu.Lock()
	var fx effects[R]
	s.core.arrive(s.clock.Now(), cl, jobs, &fx)
	s.apply(&fx)
	s.mu.Unlock()
	select {
	case <-cl.release:
	case <-ctx.Done():
		s.mu.Lock()
		var fx effects[R]
		s.core.expire(cl, &fx)
		s.apply(&fx)
		s.mu.Unlock()
	}
	return cl.out
}

// Forget drops key's last result: its next caller polls, whatever the
// MinInterval.
func (s *Scheduler[R]) Forget(key string) {
	s.mu.Lock()
	s.core.forget(key)
	s.mu.Unlock()
}

// Prune forgets the keys keep refuses, but those with a poll in flight.
func (s *Scheduler[R]) Prune(keep func(key string) bool) {
	s.mu.Lock()
	s.core.prune(keep)
	s.mu.Unlock()
}

// Class returns how key's last poll went.
func (s *Scheduler[R]) Class(key string) Class {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.core.entries[key]; e != nil {
		return e.class
	}
	return Unknown
}

// InFlight returns the polls in flight and the slots held.
func (s *Scheduler[R]) InFlight() (polls, slots int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.inFlight, s.core.pools[fastPool].used + s.core.pools[slowPool].used
}

// apply does what an event asked, under s.mu: start polls, cut one,
// release callers, and set the timer for the next tick.
func (s *Scheduler[R]) apply(fx *effects[R]) {
	for _, f := range fx.start {
		var ctx context.Context
		var cancel context.CancelFunc
		if f.job.Timeout > 0 {
			ctx, cancel = context.WithTimeout(s.ctx, f.job.Timeout)
		} else {
			ctx, cancel = context.WithCancel(s.ctx)
		}
		f.cancel = cancel
		go s.run(ctx, f)
	}
	for _, f := range fx.cancel {
		f.cancel()
	}
	for _, cl := range fx.released {
		close(cl.release)
	}
	next := s.core.nextTick()
	if next.Equal(s.timeAt) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.gen++
	s.timeAt = next
	if !next.IsZero() {
		gen := s.gen
		s.timer = s.clock.AfterFunc(max(0, next.Sub(s.clock.Now())), func() { s.tick(gen) })
	}
}

func (s *Scheduler[R]) tick(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.timeAt, s.timer = time.Time{}, nil
	var fx effects[R]
	s.core.tick(s.clock.Now(), &fx)
	s.apply(&fx)
}

func (s *Scheduler[R]) run(ctx context.Context, f *flight[R]) {
	result, answered := f.job.Poll(ctx)
	f.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	var fx effects[R]
	s.core.land(s.clock.Now(), f, result, answered, &fx)
	s.apply(&fx)
}
