package actor

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Faults (issue 5): the breaker keeps working when the code around it does
// not: functions that panic or never return, callers that never report,
// contexts cancelled at every point, Stop at the worst moment, subscribers
// that never read.

// noLeaks checks, when the test is over and its breakers are stopped, that
// none of its goroutines is left. It must be called first in a test, so that
// its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// waitBlocked waits until at least n goroutines are parked (in a channel
// operation or a WaitGroup) with fn on their stack (inlined frames
// included), or fails the test after the guard time. It is how a test knows
// that callers are really waiting for a busy loop, not about to:
// runtime.Stack is the only place that says so.
func waitBlocked(t testing.TB, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		got := countBlocked(allStacks(), fn)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines blocked in %s after %v, want %d", got, fn, guard, n)
		}
		runtime.Gosched()
	}
}

// allStacks returns the stacks of all goroutines.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		if k := runtime.Stack(buf, true); k < len(buf) {
			return string(buf[:k])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutinesIn counts the goroutines with fn on their stacks, parked or not.
func goroutinesIn(fn string) int { return strings.Count(allStacks(), fn) }

// channelOf returns a subscription's channel and leaves its cancel to Stop.
func channelOf(events <-chan Event, _ func()) <-chan Event { return events }

func countBlocked(stacks, fn string) int {
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		parked := strings.Contains(header, "[select") || strings.Contains(header, "[chan send") ||
			strings.Contains(header, "[chan receive") ||
			strings.Contains(header, "[sync.WaitGroup.Wait") || strings.Contains(header, "[semacquire")
		if parked && strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// Stack frames the tests wait in.
const (
	inPermit    = "actor.(*Breaker).Permit("
	inCall      = "actor.Call["
	inStop      = "actor.(*Breaker).Stop("
	inLogging   = "actor.(*logQueue).drain("
	inSubscribe = "actor.(*Breaker).Subscribe"
)

// mustPanic calls f and returns what it panicked with; it fails the test if
// f returns.
func mustPanic(t *testing.T, f func()) (recovered any) {
	t.Helper()
	returned := false
	func() {
		defer func() { recovered = recover() }()
		f()
		returned = true
	}()
	if returned {
		t.Fatal("returned, want a panic")
	}
	return recovered
}

// Semantic 9: a panic in fn is a Failure and goes on with its own value;
// the breaker is not harmed by it.
func TestFaultPanickingFn(t *testing.T) {
	t.Run("concurrent panics count once each and the breaker keeps working", func(t *testing.T) {
		noLeaks(t)
		b, _ := start(t, WithAllowedFails(1000))
		const callers = 32
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if r := recover(); r != fmt.Sprint("panic ", i) {
						t.Errorf("recovered %v, want the original value %q", r, fmt.Sprint("panic ", i))
					}
				}()
				_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic(fmt.Sprint("panic ", i)) })
			}()
		}
		within(t, "32 panicking calls", wg.Wait)
		wantCounts(t, b, Counts{Requests: callers, Failures: callers, ConsecutiveFailures: callers})
		if n, err := Call(context.Background(), b, func(context.Context) (int, error) { return 1, nil }); n != 1 || err != nil {
			t.Fatalf("Call after the panics = %d, %v", n, err)
		}
		wantCounts(t, b, Counts{Requests: callers + 1, Successes: 1, Failures: callers})
	})

	t.Run("a panicking probe re-opens, and the next one can close", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		r := mustPanic(t, func() {
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic(errBoom) })
		})
		if r != errBoom {
			t.Fatalf("recovered %v, want errBoom", r)
		}
		if ev := expectTransition(t, events, StateHalfOpen, StateOpen); ev.Reason != "probe failed" {
			t.Fatalf("Reason = %q", ev.Reason)
		}
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil }); err != nil {
			t.Fatal(err)
		}
		expectTransition(t, events, StateHalfOpen, StateClosed)
	})

	t.Run("panic(nil)", func(t *testing.T) {
		b, _ := start(t)
		r := mustPanic(t, func() {
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic(nil) })
		})
		var pn *runtime.PanicNilError
		if err, ok := r.(error); !ok || !errors.As(err, &pn) {
			t.Fatalf("recovered %v (%T), want *runtime.PanicNilError", r, r)
		}
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
	})

	t.Run("runtime.Goexit in fn", func(t *testing.T) {
		b, _ := start(t)
		exited := make(chan struct{})
		returned := false
		go func() {
			defer close(exited)
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { runtime.Goexit(); return 0, nil })
			returned = true
		}()
		within(t, "a Call whose fn exits its goroutine", func() { <-exited })
		if returned {
			t.Fatal("Call returned after runtime.Goexit")
		}
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
		report(t, b, Success)
	})

	t.Run("a panicking Validate", func(t *testing.T) {
		b, _ := start(t)
		r := mustPanic(t, func() {
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { return 1, nil },
				Validate(func(int) bool { panic("validator") }))
		})
		if r != "validator" {
			t.Fatalf("recovered %v", r)
		}
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
	})

	t.Run("a panicking classifier", func(t *testing.T) {
		b, _ := start(t, WithClassifier(func(err error) Outcome { panic("classifier") }))
		r := mustPanic(t, func() {
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom })
		})
		if r != "classifier" {
			t.Fatalf("recovered %v", r)
		}
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
		// The classifier sees only non-nil errors: the breaker still works.
		report(t, b, Success)
		if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil }); err != nil {
			t.Fatal(err)
		}
		wantCounts(t, b, Counts{Requests: 3, Successes: 2, Failures: 1})
	})
}

// Semantic 5: callers that never report. A probe nobody reports cannot keep
// the breaker half-open: the probe timeout re-opens it, every time.
func TestFaultNeverReported(t *testing.T) {
	t.Run("abandoned probes time out, cycle after cycle", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second), WithProbeTimeout(2*time.Second))
		events := subscribe(t, b)
		trip(t, b, events, 3)
		const cycles = 20
		var abandoned []*Permit
		for range cycles {
			mock.Add(time.Second)
			expectTransition(t, events, StateOpen, StateHalfOpen)
			p := permit(t, b)
			if !p.Probe() {
				t.Fatal("not a probe")
			}
			abandoned = append(abandoned, p)
			if oe := refused(t, b); oe.State != StateHalfOpen || oe.RetryAfter() != 2*time.Second {
				t.Fatalf("refusal %+v, want half-open, 2s", *oe)
			}
			mock.Add(2 * time.Second)
			if ev := expectTransition(t, events, StateHalfOpen, StateOpen); ev.Reason != "probe not reported within 2s" {
				t.Fatalf("Reason = %q", ev.Reason)
			}
		}
		for _, p := range abandoned {
			if p.Report(nil) {
				t.Fatal("an abandoned probe's late report was applied")
			}
		}
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		report(t, b, Success)
		expectTransition(t, events, StateHalfOpen, StateClosed)
		wantCounts(t, b, Counts{Requests: 3 + cycles + 1, Rejected: cycles, Successes: 1, Failures: 3 + cycles})
	})

	t.Run("a probe whose fn hangs: the breaker moves on, the late outcome is stale", func(t *testing.T) {
		noLeaks(t)
		b, mock := start(t, WithRetryTimer(time.Second), WithProbeTimeout(5*time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		hung := make(chan struct{})
		started := make(chan struct{})
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := Call(context.Background(), b, func(context.Context) (int, error) {
				close(started)
				<-hung // a dependency that does not answer
				return 42, nil
			})
			done <- result{n, err}
		}()
		within(t, "the hanging probe to start", func() { <-started })
		mock.Add(5 * time.Second)
		expectTransition(t, events, StateHalfOpen, StateOpen)
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		report(t, b, Success) // a new probe closes it
		expectTransition(t, events, StateHalfOpen, StateClosed)

		close(hung)
		var r result
		within(t, "the hung Call to return", func() { r = <-done })
		if r.n != 42 || r.err != nil {
			t.Fatalf("the hung Call returned %d, %v, want fn's 42, nil", r.n, r.err)
		}
		noEvent(t, events)
		wantState(t, b, StateClosed)
		wantCounts(t, b, Counts{Requests: 5, Successes: 1, Failures: 4})
	})

	t.Run("abandoned closed-state permits: no goroutine, no memory kept", func(t *testing.T) {
		noLeaks(t)
		b, _ := start(t)
		events := subscribe(t, b)
		goroutines := runtime.NumGoroutine()
		heap := liveHeap()

		const permits = 100_000
		const watched = 100 // permits with a finalizer: they must be collectable
		collected := make(chan struct{}, watched)
		for i := range permits {
			p := permit(t, b)
			if i%(permits/watched) == 0 {
				runtime.SetFinalizer(p, func(*Permit) { collected <- struct{}{} })
			}
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			t.Fatalf("%d goroutines after %d abandoned permits, %d before", n, permits, goroutines)
		}
		deadline := time.After(guard)
		for got := 0; got < watched; {
			runtime.GC() // finalizers run after a collection finds the permit unreachable
			select {
			case <-collected:
				got++
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%d of %d abandoned permits collected after %v: the breaker keeps them", got, watched, guard)
			}
		}
		// 100k permits kept would be several megabytes.
		if grown := liveHeap() - heap; grown > 1<<20 {
			t.Fatalf("live heap grew by %d bytes after %d abandoned permits", grown, permits)
		}
		wantCounts(t, b, Counts{Requests: permits})
		trip(t, b, events, 3)
		refused(t, b)
	})
}

// liveHeap returns the bytes of live heap objects, after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// manualCtx is a context that is done when the test says so, with the
// error the test chooses: a deadline that passes exactly when wanted.
type manualCtx struct {
	context.Context
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newManualCtx() *manualCtx {
	return &manualCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *manualCtx) Done() <-chan struct{} { return c.done }

func (c *manualCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *manualCtx) expire(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// Semantic 10: a context done at any point.
func TestFaultContextDone(t *testing.T) {
	t.Run("before Call, in every state", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, state := range []State{StateClosed, StateOpen, StateHalfOpen} {
			switch state {
			case StateOpen:
				trip(t, b, events, 3)
			case StateHalfOpen:
				mock.Add(time.Second)
				expectTransition(t, events, StateOpen, StateHalfOpen)
			}
			before := b.Counts()
			_, err := Call(ctx, b, func(context.Context) (int, error) {
				t.Error("fn ran with a done context")
				return 0, nil
			})
			if err != context.Canceled {
				t.Fatalf("%v: Call(done ctx) = %v, want context.Canceled", state, err)
			}
			wantCounts(t, b, before)
		}
		if !permit(t, b).Probe() {
			t.Fatal("the probe is not free")
		}
	})

	t.Run("while waiting for a busy loop", func(t *testing.T) {
		noLeaks(t)
		b, _, release := heldHalfOpen(t)
		// The loop is held: half-open with the probe free, every Permit
		// and Call waits for it.
		before := b.Counts()

		const callers = 50
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, callers)
		for i := range callers {
			go func() {
				if i%2 == 0 {
					_, err := b.Permit(ctx)
					errs <- err
					return
				}
				_, err := Call(ctx, b, func(context.Context) (int, error) {
					t.Error("fn ran, though the loop never answered")
					return 0, nil
				})
				errs <- err
			}()
		}
		waitBlocked(t, inPermit, callers/2)
		waitBlocked(t, inCall, callers/2)
		cancel()
		// Promptly, with the loop still held: nothing can have answered.
		for range callers {
			select {
			case err := <-errs:
				if err != context.Canceled {
					t.Fatalf("a waiting caller got %v, want context.Canceled", err)
				}
			case <-time.After(guard):
				t.Fatal("a waiting caller did not return when its context was cancelled")
			}
		}
		release()
		wantCounts(t, b, before)
		if !permit(t, b).Probe() {
			t.Fatal("the probe went to a caller that gave up")
		}
	})

	t.Run("during fn", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			err   error // what fn's context ends with
			to    State // where the probe's outcome takes the breaker
			count Counts
		}{
			{"canceled: ignored, the probe is free again", context.Canceled, StateHalfOpen,
				Counts{Requests: 4, Failures: 3, Ignored: 1, ConsecutiveFailures: 3}},
			{"deadline exceeded: a failure, re-opens", context.DeadlineExceeded, StateOpen,
				Counts{Requests: 4, Failures: 4, ConsecutiveFailures: 4}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b, mock := start(t, WithRetryTimer(time.Second))
				events := subscribe(t, b)
				halfOpen(t, b, mock, events, time.Second)
				ctx := newManualCtx()
				started := make(chan struct{})
				var err error
				go func() {
					<-started
					ctx.expire(tc.err)
				}()
				within(t, "Call with a context that ends during fn", func() {
					_, err = Call(ctx, b, func(ctx context.Context) (int, error) {
						close(started)
						<-ctx.Done()
						return 0, ctx.Err()
					})
				})
				if err != tc.err {
					t.Fatalf("Call = %v, want fn's %v", err, tc.err)
				}
				if tc.to == StateOpen {
					expectTransition(t, events, StateHalfOpen, StateOpen)
				}
				noEvent(t, events)
				wantState(t, b, tc.to)
				wantCounts(t, b, tc.count)
				if tc.to == StateHalfOpen && !permit(t, b).Probe() {
					t.Fatal("the next permit after a cancelled probe is not a probe")
				}
			})
		}
	})
}

// Semantic 11: Stop at the worst moments. What the contract promises: when
// Stop returns the loop has exited, and from then on every Permit and Call
// returns ErrStopped. A caller the loop answered before it took the stop
// request got that answer (at most one probe, or a refusal); one it had not
// answered gets ErrStopped. Either way, every caller returns promptly.
func TestFaultStop(t *testing.T) {
	type answer struct {
		p   *Permit
		err error
		ran bool
	}
	// callers starts n callers, half Permit and half Call, and waits until
	// they are all blocked.
	callers := func(t *testing.T, b *Breaker, n int) <-chan answer {
		answers := make(chan answer, n)
		for i := range n {
			go func() {
				if i%2 == 0 {
					p, err := b.Permit(context.Background())
					answers <- answer{p: p, err: err}
					return
				}
				ran := false
				_, err := Call(context.Background(), b, func(context.Context) (int, error) { ran = true; return 0, nil })
				answers <- answer{err: err, ran: ran}
			}()
		}
		waitBlocked(t, inPermit, n/2)
		waitBlocked(t, inCall, n/2)
		return answers
	}
	collect := func(t *testing.T, answers <-chan answer, n int) (stopped, refusedN, granted int) {
		t.Helper()
		for range n {
			var a answer
			select {
			case a = <-answers:
			case <-time.After(guard):
				t.Fatal("a caller waiting in Permit or Call did not return after Stop")
			}
			switch {
			case a.err == ErrStopped:
				stopped++
			case errors.Is(a.err, ErrOpen):
				refusedN++
			case a.err == nil:
				granted++
				if a.p != nil && a.p.Report(nil) {
					t.Error("a permit's report after Stop was applied")
				}
			default:
				t.Fatalf("a caller got %v", a.err)
			}
		}
		return stopped, refusedN, granted
	}
	const n = 100

	t.Run("100 callers waiting, then Stop: all get ErrStopped", func(t *testing.T) {
		// Stop goes first: the loop checks for it before it serves any
		// request, so callers queued before Stop get ErrStopped too, not a
		// refusal or a probe from a breaker about to stop.
		noLeaks(t)
		b, _, release := heldHalfOpen(t)
		before := b.Counts()
		answers := callers(t, b, n)
		stopped := make(chan struct{})
		go func() { defer close(stopped); b.Stop() }()
		waitBlocked(t, inStop, 1)
		release()
		within(t, "Stop", func() { <-stopped })
		if nStopped, nRefused, nGranted := collect(t, answers, n); nStopped != n {
			t.Fatalf("%d ErrStopped, %d refused, %d granted; want all %d ErrStopped", nStopped, nRefused, nGranted, n)
		}
		wantCounts(t, b, before)
		if _, err := b.Permit(context.Background()); err != ErrStopped {
			t.Fatalf("Permit after Stop = %v", err)
		}
	})

	t.Run("Stop waiting first, then 100 callers: all get ErrStopped", func(t *testing.T) {
		noLeaks(t)
		b, _, release := heldHalfOpen(t)
		before := b.Counts()
		stopped := make(chan struct{})
		go func() { defer close(stopped); b.Stop() }()
		waitBlocked(t, inStop, 1)
		answers := callers(t, b, n)
		release()
		within(t, "Stop", func() { <-stopped })
		if nStopped, _, _ := collect(t, answers, n); nStopped != n {
			t.Fatalf("%d of %d callers that came after Stop got ErrStopped", nStopped, n)
		}
		wantCounts(t, b, before)
	})

	t.Run("a log handler that hangs delays only its own logging", func(t *testing.T) {
		noLeaks(t)
		h := &capture{}
		b, mock := start(t, WithLogger(slogLogger(h)), WithAllowedFails(1), WithRetryTimer(time.Second))
		events := subscribe(t, b)
		early := permit(t, b)
		// A fresh breaker has logged nothing yet: hold every transition.
		release := h.hold()
		defer release()
		// Whole cycles, every step of which needs the loop, go on while the
		// handler hangs on the first transition.
		const cycles = 10
		within(t, "cycles while the log handler hangs", func() {
			for range cycles {
				report(t, b, Failure) // opens
				expectTransition(t, events, StateClosed, StateOpen)
				refused(t, b)
				if early.Report(nil) {
					t.Error("a stale report was applied")
				}
				mock.Add(time.Second)
				expectTransition(t, events, StateOpen, StateHalfOpen)
				p := permit(t, b)
				if !p.Probe() || !p.Report(nil) {
					t.Error("the probe was not granted and applied")
				}
				expectTransition(t, events, StateHalfOpen, StateClosed)
			}
		})
		if records := h.all(); len(records) != 0 {
			t.Fatalf("logged %+v while the handler hangs", records)
		}
		// The records wait in a queue, not in a goroutine each.
		if n := goroutinesIn(inLogging); n != 1 {
			t.Fatalf("%d goroutines logging, want 1", n)
		}
		// Stop waits for the transitions to be logged, so for the handler;
		// nothing else does.
		stopped := make(chan struct{})
		go func() { defer close(stopped); b.Stop() }()
		waitBlocked(t, inStop, 1)
		within(t, "Subscribe, Permit and Report while Stop waits for the handler", func() {
			if _, ok := <-channelOf(b.Subscribe()); ok {
				t.Error("Subscribe during Stop: an open channel")
			}
			if _, err := b.Permit(context.Background()); err != ErrStopped {
				t.Errorf("Permit during Stop = %v, want ErrStopped", err)
			}
			if early.Report(errBoom) {
				t.Error("Report during Stop applied")
			}
		})
		release()
		within(t, "Stop once the handler returns", func() { <-stopped })
		var got, want []string
		for _, r := range h.all() {
			got = append(got, r.attrs["seq"]+" "+r.msg)
		}
		for c := range cycles {
			for i, verb := range []string{"opened", "half-opened", "closed"} {
				want = append(want, fmt.Sprintf("%d circuit breaker %s", 3*c+i+1, verb))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("logged %q,\nwant %q", got, want)
		}
	})

	t.Run("a timer transition as Stop comes is logged", func(t *testing.T) {
		// The loop, held at its gate, finds the retry timer fired and Stop
		// waiting; it takes either first. When it takes the timer, the
		// HalfOpen transition is published, and so it is logged.
		noLeaks(t)
		logged := 0
		for range 30 {
			h, g := &capture{}, &gate{}
			b, mock := start(t, WithLogger(slogLogger(h)), withGate(g), WithAllowedFails(1), WithRetryTimer(time.Second))
			events := subscribe(t, b)
			release := g.shutWhen(t, func() bool { return b.State() == StateOpen }, func() {
				report(t, b, Failure)
				expectTransition(t, events, StateClosed, StateOpen)
			})
			mock.Add(time.Second) // the timer fires while the loop is held
			stopped := make(chan struct{})
			go func() { defer close(stopped); b.Stop() }()
			waitBlocked(t, inStop, 1)
			release()
			within(t, "Stop", func() { <-stopped })
			halfOpened := false
			for ev := range events {
				halfOpened = halfOpened || ev.To == StateHalfOpen
			}
			var msgs []string
			for _, r := range h.all() {
				msgs = append(msgs, r.msg)
			}
			if want := slices.Contains(msgs, "circuit breaker half-opened"); want != halfOpened {
				t.Fatalf("HalfOpen published %v, logged %v: %q", halfOpened, want, msgs)
			}
			if halfOpened {
				logged++
			}
		}
		if logged == 0 {
			t.Fatal("in 30 runs the loop never took the timer before Stop")
		}
	})

	t.Run("subscribers that never read, cancels and Subscribes waiting", func(t *testing.T) {
		noLeaks(t)
		g := &gate{}
		b, mock := start(t, withGate(g), WithRetryTimer(time.Second), WithAllowedFails(1))
		events := subscribe(t, b)
		var stuck []<-chan Event
		var cancels []func()
		for range 10 {
			ch, cancel := b.Subscribe()
			stuck = append(stuck, ch)
			cancels = append(cancels, cancel)
		}
		// Far more transitions than a stuck subscriber buffers.
		for range SubscriberBuffer {
			report(t, b, Failure)
			expectTransition(t, events, StateClosed, StateOpen)
			mock.Add(time.Second)
			expectTransition(t, events, StateOpen, StateHalfOpen)
			report(t, b, Success)
			expectTransition(t, events, StateHalfOpen, StateClosed)
		}
		// Hold the loop, queue cancels and Subscribes behind it, then Stop.
		release := g.shutWhen(t, func() bool { return b.State() == StateOpen }, func() {
			report(t, b, Failure)
			expectTransition(t, events, StateClosed, StateOpen)
		})
		defer release()
		var wg sync.WaitGroup
		late := make(chan (<-chan Event), 5)
		for i := range 5 {
			wg.Add(2)
			go func() { defer wg.Done(); cancels[i]() }()
			go func() {
				defer wg.Done()
				ch, cancel := b.Subscribe()
				defer cancel()
				late <- ch
			}()
		}
		waitBlocked(t, inSubscribe, 10)
		stopped := make(chan struct{})
		go func() { defer close(stopped); b.Stop() }()
		waitBlocked(t, inStop, 1)
		release()
		within(t, "Stop", func() { <-stopped })
		within(t, "cancels and Subscribes waiting at Stop", wg.Wait)
		close(late)
		for ch := range late {
			stuck = append(stuck, ch)
		}
		for i, ch := range stuck {
			kept := 0
			within(t, "draining a stuck subscription", func() {
				for range ch {
					kept++
				}
			})
			if kept > SubscriberBuffer {
				t.Fatalf("subscription %d held %d events, more than SubscriberBuffer", i, kept)
			}
		}
		for _, cancel := range cancels {
			cancel() // after Stop, twice for some
		}
	})
}

// Semantics 6, 11 and 13: a report that races Stop never panics or blocks,
// and returns true exactly when it was counted.
func TestFaultReportRacingStop(t *testing.T) {
	noLeaks(t)
	rng := rand.New(rand.NewSource(1))
	const reporters = 64
	for round := range 20 {
		// Odd rounds race a probe's report (and stale ones) with Stop.
		withProbe := round%2 == 1
		allowedFails := 1000
		if withProbe {
			allowedFails = 2
		}
		b, mock := start(t, WithAllowedFails(allowedFails), WithRetryTimer(time.Second), WithLogger(quietLogger()))
		events := subscribe(t, b)
		// One failure first, so that successes go to the loop, not only the
		// fast path.
		report(t, b, Failure)
		permits := make([]*Permit, reporters)
		for i := range permits {
			permits[i] = permit(t, b)
		}
		var probe *Permit
		if withProbe {
			trip(t, b, events, 1)
			mock.Add(time.Second)
			expectTransition(t, events, StateOpen, StateHalfOpen)
			probe = permit(t, b)
		}
		before := b.Counts()

		var applied [Ignored + 1]atomic.Int64
		var wg sync.WaitGroup
		startLine := make(chan struct{})
		for i, p := range permits {
			if probe != nil && i == 0 {
				p = probe
			}
			o := Outcome(1 + rng.Intn(3))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startLine
				if p.ReportOutcome(o) {
					applied[o].Add(1)
				}
				if p.ReportOutcome(o) {
					t.Error("a second report was applied")
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			b.Stop()
		}()
		close(startLine)
		within(t, "reports racing Stop", wg.Wait)

		want := before
		want.Successes += uint64(applied[Success].Load())
		want.Failures += uint64(applied[Failure].Load())
		want.Ignored += uint64(applied[Ignored].Load())
		got := b.Counts()
		want.ConsecutiveFailures = got.ConsecutiveFailures
		if got != want {
			t.Fatalf("round %d: Counts() = %+v\n\twant %+v (from the reports that returned true)", round, got, want)
		}
		for _, p := range permits {
			if p.ReportOutcome(Success) {
				t.Fatal("a report after Stop was applied")
			}
		}
	}
}

// Semantic 8: subscribing and cancelling while the breaker makes
// transitions. Each subscription sees an ordered, contiguous run of events,
// and cancel closes it promptly.
func TestFaultSubscribeCancelDuringTransitions(t *testing.T) {
	noLeaks(t)
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithLogger(quietLogger()))
	own := subscribe(t, b)

	const subscribers = 16
	const rounds = 20
	var wg sync.WaitGroup
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			for range rounds {
				events, cancel := b.Subscribe()
				var last Event
				for n := rng.Intn(4); n > 0; n-- {
					select {
					case ev, ok := <-events:
						if !ok {
							t.Error("subscription closed before cancel")
							return
						}
						if last.Seq != 0 && (ev.Seq != last.Seq+1 || ev.From != last.To) {
							t.Errorf("event %d (%v -> %v) after event %d (-> %v)", ev.Seq, ev.From, ev.To, last.Seq, last.To)
						}
						last = ev
					case <-time.After(guard):
						t.Error("no event within the guard time")
						return
					}
				}
				if rng.Intn(2) == 0 {
					go cancel() // cancelled twice at once
				}
				cancel()
				deadline := time.After(guard)
			drain:
				for {
					select {
					case _, ok := <-events:
						if !ok {
							break drain
						}
					case <-deadline:
						t.Error("subscription not closed after cancel returned")
						return
					}
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	cycles := 0
	for {
		select {
		case <-allDone:
			t.Logf("%d cycles of transitions", cycles)
			return
		default:
		}
		report(t, b, Failure)
		expectTransition(t, own, StateClosed, StateOpen)
		mock.Add(time.Second)
		expectTransition(t, own, StateOpen, StateHalfOpen)
		report(t, b, Success)
		expectTransition(t, own, StateHalfOpen, StateClosed)
		cycles++
		if cycles > 100_000 {
			t.Fatal("subscribers did not finish")
		}
	}
}
