package schedule

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The Scheduler's goroutines and timers around the state machine, with the
// real clock and polls that sleep: short tests of what only the driver can
// get wrong (a caller released at its deadline, a poll cut through its
// context, a timer for the next tick, concurrent callers).

func TestCallerReturnsAtItsDeadlineAndThePollGoesOn(t *testing.T) {
	s := New[int](Options{Concurrency: 4})
	ended := make(chan struct{})
	job := Job[int]{Key: "hang", Timeout: 150 * time.Millisecond, Poll: func(ctx context.Context) (int, bool) {
		<-ctx.Done()
		close(ended)
		return 1, false
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := s.Do(ctx, []Job[int]{job})
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the caller waited %v for a 50 ms deadline", took)
	}
	if out[0].How != WaitedOut {
		t.Errorf("served %v, want waited_out", out[0].How)
	}
	if polls, slots := s.InFlight(); polls != 1 || slots != 1 {
		t.Errorf("after the caller left: %d polls, %d slots; the poll must go on", polls, slots)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not end at its timeout")
	}
	waitIdle(t, s)
	if c := s.Class("hang"); c != Silent {
		t.Errorf("class %v after a poll that timed out, want silent", c)
	}
}

// A poll of a key expected to answer quickly is cut through its context
// when it becomes slow and the slow pool is full; the caller gets the cut
// result, marked so.
func TestSlowPollIsCutWhenTheSlowPoolIsFull(t *testing.T) {
	s := New[int](Options{Concurrency: 4}) // 3 fast slots, 1 slow
	hang := func(ctx context.Context) (int, bool) { <-ctx.Done(); return 0, false }
	// Fill the slow pool: a key that became slow is moved there.
	go s.Do(context.Background(), []Job[int]{{Key: "first", Timeout: 200 * time.Millisecond, Poll: hang}})
	time.Sleep(60 * time.Millisecond) // past its patience (a tenth: 20 ms): in the slow pool
	start := time.Now()
	out := s.Do(context.Background(), []Job[int]{{Key: "second", Timeout: 200 * time.Millisecond, Poll: hang}})
	took := time.Since(start)
	if !out[0].Cut || out[0].How != Fresh {
		t.Errorf("served %+v, want a fresh result marked cut", out[0])
	}
	if took > 150*time.Millisecond {
		t.Errorf("cut after %v; its patience is 20 ms", took)
	}
	if c := s.Class("second"); c != Suspect {
		t.Errorf("class %v after a cut, want suspect", c)
	}
	waitIdle(t, s)
}

// Many callers at once for the same keys: never two polls of a key at
// once, every caller served.
func TestConcurrentCallersOnePollPerKey(t *testing.T) {
	s := New[int](Options{Concurrency: 8})
	var inFlight [4]atomic.Int32
	var worst atomic.Int32
	jobs := func() []Job[int] {
		var js []Job[int]
		for k := range 4 {
			js = append(js, Job[int]{Key: string(rune('a' + k)), Session: 1, Timeout: time.Second, Poll: func(context.Context) (int, bool) {
				n := inFlight[k].Add(1)
				worst.Store(max(worst.Load(), n))
				time.Sleep(5 * time.Millisecond)
				inFlight[k].Add(-1)
				return k, true
			}})
		}
		return js
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for i, o := range s.Do(ctx, jobs()) {
				if !o.How.Polled() || o.Result != i {
					t.Errorf("job %d served %v with %d", i, o.How, o.Result)
				}
			}
		}()
	}
	wg.Wait()
	if w := worst.Load(); w != 1 {
		t.Errorf("%d polls of one key at once", w)
	}
	waitIdle(t, s)
}

func waitIdle(t *testing.T, s *Scheduler[int]) {
	t.Helper()
	for range 500 {
		if polls, slots := s.InFlight(); polls == 0 && slots == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	polls, slots := s.InFlight()
	t.Fatalf("still %d polls, %d slots after 5 s", polls, slots)
}
