package actor

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// Semantic 14: idle breakers hibernate. A breaker has a goroutine only
// while it has work; New starts none; an idle breaker nobody references is
// garbage collected without Stop; every other semantic holds across sleeps.

// breakerFrames are the frames of goroutines that belong to breakers (the
// loop on a goroutine of its own, the logger, a timer's function), as
// opposed to callers that run a step on their own goroutine.
var breakerFrames = []string{
	"circuitbreaker/actor.(*Breaker).run(",
	"circuitbreaker/actor.(*logQueue).drain(",
	"circuitbreaker/actor.(*Breaker).fire(",
	"circuitbreaker/actor.(*Breaker).arm.func",                                 // a timer's function, not yet in fire
	"created by github.com/circuitbreaker-go/circuitbreaker/actor.(*Breaker).", // started, not yet running (gowrap)
}

// breakerGoroutines counts the goroutines that run breaker code of their own.
func breakerGoroutines() int {
	n := 0
	for _, g := range strings.Split(allStacks(), "\n\n") {
		for _, f := range breakerFrames {
			if strings.Contains(g, f) {
				n++
				break
			}
		}
	}
	return n
}

// waitAsleep waits until b has nothing queued and no goroutine of any
// breaker runs, or fails the test after the guard time. What may still be
// running a moment after a step returns: the goroutine that logs its
// transition, and a timer's goroutine finishing its step.
func waitAsleep(t testing.TB, b *Breaker) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for b.pending.Load() != 0 || breakerGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("breaker not asleep after %v: %d messages pending, %d breaker goroutines:\n%s",
				guard, b.pending.Load(), breakerGoroutines(), allStacks())
		}
		runtime.Gosched()
	}
}

func TestNewStartsNoGoroutine(t *testing.T) {
	noLeaks(t)
	before := runtime.NumGoroutine()
	breakers := make([]*Breaker, 10_000)
	for i := range breakers {
		b, err := New(WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		breakers[i] = b
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after New x10,000, %d before", n, before)
	}
	// Used, closed, they sleep again at once: a failure and a success
	// each run on the caller's goroutine.
	for _, b := range breakers {
		report(t, b, Failure)
		report(t, b, Success)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after using 10,000 breakers, %d before", n, before)
	}
	wantCounts(t, breakers[0], Counts{Requests: 2, Successes: 1, Failures: 1})
}

func TestBreakerSleepsAfterTripAndRecovery(t *testing.T) {
	noLeaks(t)
	b, mock := start(t, WithRetryTimer(time.Second), WithLogger(slogLogger(&capture{})))
	events := subscribe(t, b)
	trip(t, b, events, 3)
	waitAsleep(t, b) // open, its timer armed: no goroutine
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	waitAsleep(t, b)
	p := permit(t, b) // the probe, its deadline armed
	waitAsleep(t, b)
	p.Report(nil)
	expectTransition(t, events, StateHalfOpen, StateClosed)
	waitAsleep(t, b)
}

// An open breaker on the real clock sleeps too: its timer lives in the
// runtime, and posts to the breaker when it fires.
func TestOpenBreakerSleepsOnTheRealClock(t *testing.T) {
	noLeaks(t)
	b, err := New(WithRetryTimer(time.Hour), WithAllowedFails(1), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer stopWithin(t, b)
	report(t, b, Failure)
	wantState(t, b, StateOpen)
	waitAsleep(t, b)
}

// An idle breaker that nobody references is collected without Stop, with a
// subscription outstanding: its channel is closed then, so a reader ranging
// over it ends; cancel after that is safe.
func TestIdleBreakerIsCollectedWithoutStop(t *testing.T) {
	noLeaks(t)
	collected := make(chan struct{})
	events, cancel := func() (<-chan Event, func()) {
		mock := clock.NewMock()
		b, err := New(WithRetryTimer(time.Second), WithAllowedFails(1), WithClock(mock),
			WithLogger(slogLogger(&capture{})))
		if err != nil {
			t.Fatal(err)
		}
		events, cancel := b.Subscribe()
		// One whole cycle: open (a timer armed), half-open, closed.
		report(t, b, Failure)
		mock.Add(time.Second)
		expectTransition(t, events, StateClosed, StateOpen)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		report(t, b, Success)
		expectTransition(t, events, StateHalfOpen, StateClosed)
		waitAsleep(t, b)
		runtime.AddCleanup(b, func(c chan struct{}) { close(c) }, collected)
		return events, cancel
	}()
	deadline := time.After(guard)
	for done := false; !done; {
		runtime.GC()
		select {
		case <-collected:
			done = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("an idle, unreferenced breaker was not collected within %v", guard)
		}
	}
	within(t, "the subscription of a collected breaker to close", func() {
		for ev := range events {
			t.Errorf("event %+v after the breaker was collected", ev)
		}
	})
	cancel()
	cancel()
}

// Semantics 1, 5, 8 and 11 across sleeps.
func TestSemanticsAcrossSleeps(t *testing.T) {
	t.Run("trip after waking", func(t *testing.T) {
		b, _ := start(t)
		events := subscribe(t, b)
		for range 2 {
			report(t, b, Failure)
			waitAsleep(t, b)
		}
		report(t, b, Failure)
		expectTransition(t, events, StateClosed, StateOpen)
		refused(t, b)
	})
	t.Run("a single probe among 64 goroutines after waking", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		waitAsleep(t, b)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			probes int
		)
		startLine := make(chan struct{})
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startLine
				p, err := b.Permit(context.Background())
				var oe *OpenError
				switch {
				case err == nil:
					mu.Lock()
					probes++
					mu.Unlock()
					_ = p
				case !errors.As(err, &oe) || oe.State != StateHalfOpen:
					t.Errorf("Permit: %v", err)
				}
			}()
		}
		close(startLine)
		within(t, "64 Permits", wg.Wait)
		if probes != 1 {
			t.Fatalf("%d permits granted in half-open, want the one probe", probes)
		}
		waitAsleep(t, b)
	})
	t.Run("Seq contiguous across sleeps", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second), WithAllowedFails(1))
		events := subscribe(t, b)
		for cycle := range 5 {
			report(t, b, Failure)
			waitAsleep(t, b)
			mock.Add(time.Second)
			waitAsleep(t, b)
			report(t, b, Success)
			waitAsleep(t, b)
			for i := range 3 {
				if ev := next(t, events); ev.Seq != uint64(3*cycle+i+1) {
					t.Fatalf("Seq %d, want %d", ev.Seq, 3*cycle+i+1)
				}
			}
		}
	})
	t.Run("Subscribe and Stop on a sleeping breaker", func(t *testing.T) {
		noLeaks(t)
		b, _ := start(t, WithAllowedFails(1))
		report(t, b, Success)
		waitAsleep(t, b)
		events := subscribe(t, b)
		waitAsleep(t, b)
		report(t, b, Failure)
		expectTransition(t, events, StateClosed, StateOpen)
		waitAsleep(t, b)
		within(t, "Stop", b.Stop)
		if _, ok := <-events; ok {
			t.Fatal("subscription open after Stop")
		}
		if _, err := b.Permit(context.Background()); err != ErrStopped {
			t.Fatalf("Permit after Stop = %v", err)
		}
		if n := breakerGoroutines(); n != 0 {
			t.Fatalf("%d breaker goroutines after Stop", n)
		}
	})
}
