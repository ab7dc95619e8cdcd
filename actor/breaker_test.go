package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Semantic 1: the AllowedFails-th consecutive failure opens the breaker.
func TestTripOnThirdConsecutiveFailureByDefault(t *testing.T) {
	b, _ := start(t)
	events := subscribe(t, b)

	report(t, b, Failure)
	report(t, b, Failure)
	wantState(t, b, StateClosed)
	noEvent(t, events)

	report(t, b, Failure)
	ev := expectTransition(t, events, StateClosed, StateOpen)
	if ev.Reason != "3 consecutive failures" {
		t.Errorf("Reason = %q, want %q", ev.Reason, "3 consecutive failures")
	}
	wantState(t, b, StateOpen)
}

func TestTripHonoursAllowedFails(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b, _ := start(t, WithAllowedFails(n))
			events := subscribe(t, b)
			for range n - 1 {
				report(t, b, Failure)
			}
			wantState(t, b, StateClosed)
			report(t, b, Failure)
			expectTransition(t, events, StateClosed, StateOpen)
		})
	}
}

func TestSuccessResetsConsecutiveFailures(t *testing.T) {
	b, _ := start(t)
	events := subscribe(t, b)

	report(t, b, Failure)
	report(t, b, Failure)
	report(t, b, Success)
	if got := b.Counts().ConsecutiveFailures; got != 0 {
		t.Fatalf("ConsecutiveFailures after a success = %d, want 0", got)
	}
	report(t, b, Failure)
	report(t, b, Failure)
	wantState(t, b, StateClosed)
	noEvent(t, events)
	report(t, b, Failure)
	expectTransition(t, events, StateClosed, StateOpen)
}

func TestIgnoredChangesNothing(t *testing.T) {
	b, _ := start(t)
	events := subscribe(t, b)

	report(t, b, Failure)
	report(t, b, Failure)
	for range 10 {
		report(t, b, Ignored)
	}
	if got := b.Counts().ConsecutiveFailures; got != 2 {
		t.Fatalf("ConsecutiveFailures = %d after ignored reports, want 2", got)
	}
	noEvent(t, events)
	report(t, b, Failure) // the run went on through the ignored ones
	expectTransition(t, events, StateClosed, StateOpen)
}

func TestClosedGrantsConcurrentPermits(t *testing.T) {
	b, _ := start(t)
	var permits []*Permit
	for range 100 {
		permits = append(permits, permit(t, b))
	}
	for i, p := range permits {
		if !p.Report(nil) {
			t.Fatalf("permit %d: Report(nil) = false", i)
		}
	}
	wantCounts(t, b, Counts{Requests: 100, Successes: 100})
}

// Semantic 3: an open breaker refuses every permit with the exact time left.
func TestOpenRefusesWithExactRetryAfter(t *testing.T) {
	b, mock := start(t, WithRetryTimer(30*time.Second))
	events := subscribe(t, b)
	trip(t, b, events, 3)

	oe := refused(t, b)
	if oe.State != StateOpen || oe.RetryAfter() != 30*time.Second || oe.Breaker != "test" {
		t.Fatalf("refusal = %+v, want open, 30s, breaker test", *oe)
	}
	mock.Add(12 * time.Second)
	if oe := refused(t, b); oe.RetryAfter() != 18*time.Second {
		t.Fatalf("RetryAfter after 12s = %v, want 18s", oe.RetryAfter())
	}
	mock.Add(18*time.Second - time.Nanosecond)
	if oe := refused(t, b); oe.RetryAfter() != time.Nanosecond {
		t.Fatalf("RetryAfter 1ns before the timer = %v, want 1ns", oe.RetryAfter())
	}
}

func TestOpenErrorMessageAndIs(t *testing.T) {
	until := time.Date(2026, 12, 1, 16, 0, 5, 0, time.UTC)
	err := error(&OpenError{Breaker: "payments", State: StateOpen, Until: until})
	if !errors.Is(err, ErrOpen) {
		t.Fatal("errors.Is(*OpenError, ErrOpen) = false")
	}
	if errors.Is(err, ErrStopped) {
		t.Fatal("errors.Is(*OpenError, ErrStopped) = true")
	}
	want := `circuitbreaker: breaker "payments" is open until 2026-12-01T16:00:05Z`
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
	half := &OpenError{State: StateHalfOpen, Until: until}
	if want := "circuitbreaker: breaker is half-open and its probe is out until 2026-12-01T16:00:05Z"; half.Error() != want {
		t.Fatalf("Error() = %q, want %q", half.Error(), want)
	}
}

// Semantic 4: half-open is entered when the timer fires, not on the next call.
func TestHalfOpenEagerlyWhenRetryTimerFires(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Minute))
	events := subscribe(t, b)
	opened := trip(t, b, events, 3)

	mock.Add(time.Minute - time.Nanosecond)
	noEvent(t, events)
	wantState(t, b, StateOpen)

	mock.Add(time.Nanosecond)
	ev := expectTransition(t, events, StateOpen, StateHalfOpen)
	if want := opened.At.Add(time.Minute); !ev.At.Equal(want) {
		t.Fatalf("HalfOpen At = %v, want the timer's due time %v", ev.At, want)
	}
	if ev.Reason != "retry timer elapsed" {
		t.Errorf("Reason = %q", ev.Reason)
	}
	wantState(t, b, StateHalfOpen) // already, with no call made
}

// halfOpen trips b and lets its retry timer fire.
func halfOpen(t testing.TB, b *Breaker, mock interface{ Add(time.Duration) }, events <-chan Event, retry time.Duration) {
	t.Helper()
	trip(t, b, events, 3)
	mock.Add(retry)
	expectTransition(t, events, StateOpen, StateHalfOpen)
}

// Semantic 5: exactly one probe at a time, whatever the concurrency.
func TestSingleProbeUnderConcurrency(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second), WithProbeTimeout(10*time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)

	const callers = 64
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		probes  []*Permit
		refusal []*OpenError
	)
	startLine := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			p, err := b.Permit(context.Background())
			mu.Lock()
			defer mu.Unlock()
			var oe *OpenError
			switch {
			case err == nil:
				probes = append(probes, p)
			case errors.As(err, &oe):
				refusal = append(refusal, oe)
			default:
				t.Errorf("Permit: %v", err)
			}
		}()
	}
	close(startLine)
	within(t, "64 concurrent Permits", wg.Wait)

	if len(probes) != 1 || !probes[0].Probe() {
		t.Fatalf("granted %d permits in half-open, want exactly 1 probe", len(probes))
	}
	for _, oe := range refusal {
		if oe.State != StateHalfOpen || oe.RetryAfter() != 10*time.Second {
			t.Fatalf("refusal %+v, want half-open with RetryAfter 10s (the probe's deadline)", *oe)
		}
	}
	mock.Add(4 * time.Second)
	if oe := refused(t, b); oe.RetryAfter() != 6*time.Second {
		t.Fatalf("RetryAfter = %v, want 6s left on the probe", oe.RetryAfter())
	}
	// 63 refused together, and one more after the Add.
	wantCounts(t, b, Counts{Requests: 4, Rejected: callers, Failures: 3, ConsecutiveFailures: 3})
}

func TestProbeSuccessCloses(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)

	if !permit(t, b).Report(nil) {
		t.Fatal("probe Report(nil) = false")
	}
	ev := expectTransition(t, events, StateHalfOpen, StateClosed)
	if ev.Reason != "probe succeeded" {
		t.Errorf("Reason = %q", ev.Reason)
	}
	wantState(t, b, StateClosed)
	if got := b.Counts().ConsecutiveFailures; got != 0 {
		t.Fatalf("ConsecutiveFailures after closing = %d, want 0", got)
	}
	// Closed again: a full run of failures is needed to trip.
	report(t, b, Failure)
	report(t, b, Failure)
	noEvent(t, events)
}

func TestProbeFailureReopensAndRestartsRetryTimer(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)

	mock.Add(300 * time.Millisecond)
	report(t, b, Failure)
	ev := expectTransition(t, events, StateHalfOpen, StateOpen)
	if ev.Reason != "probe failed" {
		t.Errorf("Reason = %q", ev.Reason)
	}
	if oe := refused(t, b); oe.RetryAfter() != time.Second {
		t.Fatalf("RetryAfter after a failed probe = %v, want the full retry timer 1s", oe.RetryAfter())
	}
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
}

func TestProbeIgnoredStaysHalfOpenAndNextPermitProbes(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)

	probe := permit(t, b)
	refused(t, b)
	if !probe.ReportOutcome(Ignored) {
		t.Fatal("ignored probe not applied")
	}
	noEvent(t, events)
	wantState(t, b, StateHalfOpen)
	next := permit(t, b)
	if !next.Probe() {
		t.Fatal("the permit after an ignored probe is not a probe")
	}
	next.Report(nil)
	expectTransition(t, events, StateHalfOpen, StateClosed)
}

func TestProbeTimeoutCountsAsFailure(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second), WithProbeTimeout(5*time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)

	probe := permit(t, b)
	granted := mock.Now()
	mock.Add(5*time.Second - time.Nanosecond)
	noEvent(t, events)
	mock.Add(time.Nanosecond)
	ev := expectTransition(t, events, StateHalfOpen, StateOpen)
	if want := granted.Add(5 * time.Second); !ev.At.Equal(want) {
		t.Fatalf("At = %v, want the probe's deadline %v", ev.At, want)
	}
	if ev.Reason != "probe not reported within 5s" {
		t.Errorf("Reason = %q", ev.Reason)
	}
	if probe.Report(nil) {
		t.Fatal("late probe report = true, want false")
	}
	wantCounts(t, b, Counts{Requests: 4, Failures: 4, ConsecutiveFailures: 4})
	// The retry timer restarted at the deadline.
	if oe := refused(t, b); oe.RetryAfter() != time.Second {
		t.Fatalf("RetryAfter = %v, want 1s", oe.RetryAfter())
	}
}

func TestProbeTimeoutDefaultsToRetryTimer(t *testing.T) {
	b, mock := start(t, WithRetryTimer(7*time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, 7*time.Second)
	permit(t, b)
	if oe := refused(t, b); oe.RetryAfter() != 7*time.Second {
		t.Fatalf("probe deadline = %v, want the retry timer 7s", oe.RetryAfter())
	}
}

// Semantic 6: stale and duplicate reports count nothing.
func TestStaleReportIsRejected(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)

	early := []*Permit{permit(t, b), permit(t, b), permit(t, b), permit(t, b)}
	trip(t, b, events, 3)
	before := b.Counts()
	for i, o := range []Outcome{Success, Failure, Ignored} {
		if early[i].ReportOutcome(o) {
			t.Fatalf("stale %v report applied", o)
		}
	}
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	if early[3].Report(nil) {
		t.Fatal("stale success applied in half-open")
	}
	wantCounts(t, b, before)
	wantState(t, b, StateHalfOpen)
	noEvent(t, events)
}

func TestDuplicateReportCountsOnce(t *testing.T) {
	b, _ := start(t)
	p := permit(t, b)
	if !p.ReportOutcome(Failure) {
		t.Fatal("first report not applied")
	}
	if p.ReportOutcome(Failure) || p.Report(errBoom) || p.Report(nil) {
		t.Fatal("second report applied")
	}
	wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
}

// Semantic 7: when Report returns, its effect is visible.
func TestReportThatTripsIsVisibleWhenItReturns(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	report(t, b, Failure)
	report(t, b, Failure)
	report(t, b, Failure)

	// No waiting: each of these must hold already.
	select {
	case ev := <-events:
		if ev.To != StateOpen {
			t.Fatalf("event %v, want open", ev.To)
		}
	default:
		t.Fatal("the Open event is not receivable when Report returns")
	}
	wantState(t, b, StateOpen)
	refused(t, b)
	// The retry timer is armed: Add fires it.
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	// The probe's deadline timer is armed when Permit returns.
	permit(t, b)
	mock.Add(time.Second)
	expectTransition(t, events, StateHalfOpen, StateOpen)
}

func TestStateAndPermitReflectAReceivedEvent(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	trip(t, b, events, 3)
	for range 20 {
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		wantState(t, b, StateHalfOpen)
		permit(t, b).ReportOutcome(Failure)
		expectTransition(t, events, StateHalfOpen, StateOpen)
		wantState(t, b, StateOpen)
	}
}

// The fast path: a success observed on a snapshot that says "closed, no
// failures" is applied at that read and never waits for the loop; one that
// ends a run of failures goes to the loop, so the run is reset in order.
func TestFastPathSuccessIsOrderedBeforeLoop(t *testing.T) {
	t.Run("does not wait for a busy loop", func(t *testing.T) {
		g := &gate{}
		b, _ := start(t, withGate(g), WithAllowedFails(1))
		events := subscribe(t, b)
		release := g.shutWhen(t, func() bool { return b.State() == StateOpen }, func() {
			report(t, b, Failure) // opens; the loop then waits at the gate
			expectTransition(t, events, StateClosed, StateOpen)
		})
		defer release()
		// The loop is busy; refusals are answered from the snapshot
		// without it.
		within(t, "a refusal while the loop is busy", func() { refused(t, b) })
	})
	t.Run("a success after failures resets the run", func(t *testing.T) {
		b, _ := start(t, WithAllowedFails(2))
		events := subscribe(t, b)
		p1, p2, p3 := permit(t, b), permit(t, b), permit(t, b)
		p1.ReportOutcome(Failure)
		p2.ReportOutcome(Success) // must reach the loop: the run is 1
		p3.ReportOutcome(Failure) // a fresh run of 1: no trip
		noEvent(t, events)
		wantState(t, b, StateClosed)
		wantCounts(t, b, Counts{Requests: 3, Successes: 1, Failures: 2, ConsecutiveFailures: 1})
	})
	t.Run("a success in closed with no failures does not wait for the loop", func(t *testing.T) {
		g := &gate{}
		b, mock := start(t, withGate(g), WithRetryTimer(time.Second))
		events := subscribe(t, b)
		early := permit(t, b)
		halfOpen(t, b, mock, events, time.Second)
		release := g.shutWhen(t, func() bool { return b.State() == StateClosed }, func() {
			permit(t, b).Report(nil) // closes; the loop then waits at the gate
			expectTransition(t, events, StateHalfOpen, StateClosed)
		})
		defer release()
		within(t, "Permit and Report(nil) while the loop is busy", func() {
			if !permit(t, b).Report(nil) {
				t.Error("fast-path success not applied")
			}
			if early.Report(nil) {
				t.Error("stale report applied on the fast path")
			}
		})
	})
}

// Semantic 8: events, in order, contiguous, never blocking the loop.
func TestEventsInOrderWithContiguousSeq(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	all := subscribe(t, b)
	trip(t, b, all, 3)
	late := subscribe(t, b) // sees only what happens after it subscribed
	mock.Add(time.Second)
	permit(t, b).Report(nil)

	wantSeq := []uint64{2, 3}
	for _, ch := range []<-chan Event{all, late} {
		for _, seq := range wantSeq {
			if ev := next(t, ch); ev.Seq != seq || ev.Breaker != "test" {
				t.Fatalf("event Seq %d breaker %q, want %d, test", ev.Seq, ev.Breaker, seq)
			}
		}
		noEvent(t, ch)
	}
}

func TestSlowSubscriberLosesOldestAndBlocksNobody(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second), WithAllowedFails(1))
	slow := subscribe(t, b)
	fast := subscribe(t, b)

	const transitions = 2 * (SubscriberBuffer + 10)
	for i := 0; i < transitions; i += 2 {
		report(t, b, Failure)
		expectTransition(t, fast, StateClosed, StateOpen)
		mock.Add(time.Second)
		expectTransition(t, fast, StateOpen, StateHalfOpen)
		permit(t, b).Report(nil)
		expectTransition(t, fast, StateHalfOpen, StateClosed)
	}
	total := uint64(transitions * 3 / 2)
	// The slow one kept the newest SubscriberBuffer events, in order.
	first := next(t, slow).Seq
	if want := total - SubscriberBuffer + 1; first != want {
		t.Fatalf("slow subscriber's first Seq = %d, want %d (the oldest dropped)", first, want)
	}
	for seq := first + 1; seq <= total; seq++ {
		if ev := next(t, slow); ev.Seq != seq {
			t.Fatalf("Seq %d, want %d", ev.Seq, seq)
		}
	}
	noEvent(t, slow)
}

func TestCancelClosesChannel(t *testing.T) {
	b, _ := start(t, WithAllowedFails(1))
	events, cancel := b.Subscribe()
	cancel()
	if _, ok := <-events; ok {
		t.Fatal("channel open after cancel")
	}
	cancel() // twice is fine
	report(t, b, Failure)
	b.Stop()
	cancel() // after Stop too
}

// Semantic 9: Call.
func TestCallReturnsResultAndErrorUnchanged(t *testing.T) {
	b, _ := start(t)
	got, err := Call(context.Background(), b, func(context.Context) (int, error) { return 42, errBoom })
	if got != 42 || err != errBoom {
		t.Fatalf("Call = %d, %v; want 42, errBoom", got, err)
	}
	got, err = Call(context.Background(), b, func(context.Context) (int, error) { return 7, nil },
		Validate(func(int) bool { return false }))
	if got != 7 || err != nil {
		t.Fatalf("Call with failed validation = %d, %v; want 7, nil", got, err)
	}
	wantCounts(t, b, Counts{Requests: 2, Failures: 2, ConsecutiveFailures: 2})
}

func TestCallValidate(t *testing.T) {
	type response struct{ status int }
	ok := Validate(func(r response) bool { return r.status < 500 })
	call := func(b *Breaker, status int, opts ...CallOption[response]) {
		t.Helper()
		if _, err := Call(context.Background(), b, func(context.Context) (response, error) {
			return response{status}, nil
		}, opts...); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	t.Run("false is a failure", func(t *testing.T) {
		b, _ := start(t)
		events := subscribe(t, b)
		for range 3 {
			call(b, 503, ok)
		}
		expectTransition(t, events, StateClosed, StateOpen)
	})
	t.Run("true is a success", func(t *testing.T) {
		b, _ := start(t)
		call(b, 503, ok)
		call(b, 503, ok)
		call(b, 200, ok)
		wantCounts(t, b, Counts{Requests: 3, Successes: 1, Failures: 2})
	})
	t.Run("without a validator results do not matter", func(t *testing.T) {
		b, _ := start(t)
		for range 5 {
			call(b, 503)
		}
		wantCounts(t, b, Counts{Requests: 5, Successes: 5})
	})
	t.Run("every validator must pass", func(t *testing.T) {
		b, _ := start(t)
		even := Validate(func(r response) bool { return r.status%2 == 0 })
		call(b, 200, ok, even)
		call(b, 201, ok, even)
		wantCounts(t, b, Counts{Requests: 2, Successes: 1, Failures: 1, ConsecutiveFailures: 1})
	})
	t.Run("zero CallOption does nothing", func(t *testing.T) {
		b, _ := start(t)
		call(b, 503, CallOption[response]{})
		wantCounts(t, b, Counts{Requests: 1, Successes: 1})
	})
}

func TestCallRefusedDoesNotRunFn(t *testing.T) {
	b, _ := start(t, WithAllowedFails(1))
	report(t, b, Failure)
	ran := false
	got, err := Call(context.Background(), b, func(context.Context) (string, error) { ran = true; return "x", nil })
	var oe *OpenError
	if ran || got != "" || !errors.As(err, &oe) || !errors.Is(err, ErrOpen) {
		t.Fatalf("refused Call: ran=%v result=%q err=%v; want fn not run, zero result, *OpenError", ran, got, err)
	}
}

func TestCallPanicCountsAsFailureAndRepanics(t *testing.T) {
	b, _ := start(t, WithAllowedFails(2))
	events := subscribe(t, b)
	type custom struct{ code int }
	for i := range 2 {
		func() {
			defer func() {
				if r := recover(); r != (custom{i}) {
					t.Fatalf("recovered %v, want the original value %v", r, custom{i})
				}
			}()
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic(custom{i}) })
			t.Fatal("Call returned after fn panicked")
		}()
	}
	expectTransition(t, events, StateClosed, StateOpen)
	wantCounts(t, b, Counts{Requests: 2, Failures: 2, ConsecutiveFailures: 2})
}

func TestWrap(t *testing.T) {
	b, _ := start(t, WithAllowedFails(1))
	calls := 0
	get := Wrap(b, func(context.Context) (int, error) { calls++; return calls, nil },
		Validate(func(n int) bool { return n < 2 }))
	if n, err := get(context.Background()); n != 1 || err != nil {
		t.Fatalf("first = %d, %v", n, err)
	}
	if n, err := get(context.Background()); n != 2 || err != nil {
		t.Fatalf("second = %d, %v (the result is returned even when it fails validation)", n, err)
	}
	if _, err := get(context.Background()); !errors.Is(err, ErrOpen) {
		t.Fatalf("third = %v, want ErrOpen", err)
	}
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2", calls)
	}
}

// Semantic 10: contexts.
func TestPermitWithDoneContextDoesNotAskTheBreaker(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, when := range []string{"closed", "open", "half-open"} {
		switch when {
		case "open":
			trip(t, b, events, 3)
		case "half-open":
			mock.Add(time.Second)
			expectTransition(t, events, StateOpen, StateHalfOpen)
		}
		before := b.Counts()
		if p, err := b.Permit(ctx); p != nil || err != context.Canceled {
			t.Fatalf("%s: Permit(done ctx) = %v, %v; want nil, context.Canceled", when, p, err)
		}
		wantCounts(t, b, before)
	}
	// The probe is still free.
	if !permit(t, b).Probe() {
		t.Fatal("no probe after Permit(done ctx) in half-open")
	}
}

func TestPermitContextDoneWhileWaiting(t *testing.T) {
	b, _, release := heldHalfOpen(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	within(t, "Permit with a context that times out", func() { _, err = b.Permit(ctx) })
	if err != context.DeadlineExceeded {
		t.Fatalf("Permit = %v, want context.DeadlineExceeded", err)
	}
	release()
	if !permit(t, b).Probe() {
		t.Fatal("the probe leaked to a caller that gave up")
	}
}

// doneOnSecondLook is a context that is live when Permit first checks it and
// done from the second look at Done on: it gives up while it waits for the
// loop's reply, after the loop may have granted it the probe.
type doneOnSecondLook struct {
	context.Context
	mu    sync.Mutex
	looks int
	live  chan struct{}
	done  chan struct{}
}

func (c *doneOnSecondLook) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.looks++
	if c.looks == 1 {
		return c.live
	}
	return c.done
}

func (c *doneOnSecondLook) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.looks < 2 {
		return nil
	}
	return context.Canceled
}

func TestPermitContextDoneAfterProbeGrantedReleasesIt(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	halfOpen(t, b, mock, events, time.Second)
	gaveUp := 0
	for tries := 0; gaveUp < 5; tries++ {
		if tries == 10000 {
			t.Fatalf("gave up only %d times in %d tries", gaveUp, tries)
		}
		done := make(chan struct{})
		close(done)
		ctx := &doneOnSecondLook{Context: context.Background(), live: make(chan struct{}), done: done}
		p, err := b.Permit(ctx)
		switch {
		case err == context.Canceled:
			gaveUp++
			// Whatever the loop did with the request, no probe is held.
			probe := permit(t, b)
			if !probe.Probe() {
				t.Fatal("probe not released after the caller gave up")
			}
			probe.ReportOutcome(Ignored)
		case err == nil:
			p.ReportOutcome(Ignored) // the reply won the race; try again
		default:
			t.Fatalf("Permit: %v", err)
		}
	}
	wantState(t, b, StateHalfOpen)
}

func TestNilContextIsBackground(t *testing.T) {
	b, _ := start(t)
	//lint:ignore SA1012 a nil context is documented input
	p, err := b.Permit(nil)
	if err != nil || !p.Report(nil) {
		t.Fatalf("Permit(nil) = %v, %v", p, err)
	}
	//lint:ignore SA1012 a nil context is documented input
	n, err := Call(nil, b, func(ctx context.Context) (int, error) {
		if ctx == nil {
			return 0, errors.New("fn got a nil ctx")
		}
		return 1, nil
	})
	if n != 1 || err != nil {
		t.Fatalf("Call(nil ctx) = %d, %v", n, err)
	}
}

// Semantic 11: Stop.
func TestStop(t *testing.T) {
	b, _ := start(t, WithAllowedFails(1))
	events, cancel := b.Subscribe()
	defer cancel()
	p := permit(t, b)
	report(t, b, Ignored)
	report(t, b, Failure)
	before := b.Counts()

	within(t, "Stop", b.Stop)
	within(t, "a second Stop", b.Stop)

	if _, err := b.Permit(context.Background()); err != ErrStopped {
		t.Fatalf("Permit after Stop = %v, want ErrStopped", err)
	}
	if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil }); err != ErrStopped {
		t.Fatalf("Call after Stop = %v, want ErrStopped", err)
	}
	if p.Report(nil) {
		t.Fatal("Report after Stop = true")
	}
	wantState(t, b, StateOpen)
	wantCounts(t, b, before)
	expectTransition(t, events, StateClosed, StateOpen)
	if _, ok := <-events; ok {
		t.Fatal("subscription open after Stop")
	}
	late, cancelLate := b.Subscribe()
	if _, ok := <-late; ok {
		t.Fatal("Subscribe after Stop returned an open channel")
	}
	cancelLate()
}

// Semantic 12: bad input.
func TestNilPermitAndBadOutcome(t *testing.T) {
	var p *Permit
	if p.Report(nil) || p.ReportOutcome(Success) || p.Probe() {
		t.Fatal("nil *Permit applied a report")
	}
	b, _ := start(t)
	q := permit(t, b)
	for _, o := range []Outcome{0, -1, 4, 100} {
		if q.ReportOutcome(o) {
			t.Fatalf("ReportOutcome(%d) = true", o)
		}
	}
	if !q.ReportOutcome(Success) {
		t.Fatal("permit not outstanding after out-of-range outcomes")
	}
	wantCounts(t, b, Counts{Requests: 1, Successes: 1})
}

func TestCallBadInput(t *testing.T) {
	b, _ := start(t)
	if _, err := Call[int](context.Background(), nil, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Call(nil breaker) = %v, want ErrInvalid", err)
	}
	if _, err := Call[int](context.Background(), b, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Call(nil fn) = %v, want ErrInvalid", err)
	}
	if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil }, Validate[int](nil)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Call(Validate(nil)) = %v, want ErrInvalid", err)
	}
	if _, err := Wrap[int](b, nil)(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Wrap(nil fn)() = %v, want ErrInvalid", err)
	}
	wantCounts(t, b, Counts{})
	var nb *Breaker
	if _, err := nb.Permit(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil Breaker Permit = %v", err)
	}
	nb.Stop()
	if nb.State() != StateClosed || nb.Name() != "" || nb.Counts() != (Counts{}) {
		t.Fatal("nil Breaker accessors")
	}
	ch, cancel := nb.Subscribe()
	if _, ok := <-ch; ok {
		t.Fatal("nil Breaker Subscribe returned an open channel")
	}
	cancel()

	// A Breaker not made by New answers like a nil one: no panic, no hang.
	zb := new(Breaker)
	within(t, "a zero Breaker's methods", func() {
		if _, err := zb.Permit(context.Background()); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero Breaker Permit = %v, want ErrInvalid", err)
		}
		if _, err := Call(context.Background(), zb, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero Breaker Call = %v, want ErrInvalid", err)
		}
		if zb.State() != StateClosed || zb.Counts() != (Counts{}) {
			t.Error("zero Breaker accessors")
		}
		ch, cancel := zb.Subscribe()
		if _, ok := <-ch; ok {
			t.Error("zero Breaker Subscribe returned an open channel")
		}
		cancel()
		zb.Stop()
	})
}

// Semantic 13: counts are cumulative.
func TestCountsAreCumulative(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second), WithAllowedErrors(errNotFound))
	events := subscribe(t, b)
	permit(t, b).Report(nil)
	permit(t, b).Report(errNotFound)
	trip(t, b, events, 3)
	refused(t, b)
	refused(t, b)
	wantCounts(t, b, Counts{Requests: 5, Rejected: 2, Successes: 1, Failures: 3, Ignored: 1, ConsecutiveFailures: 3})
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	probe := permit(t, b)
	refused(t, b)
	probe.Report(errBoom)
	expectTransition(t, events, StateHalfOpen, StateOpen)
	wantCounts(t, b, Counts{Requests: 6, Rejected: 3, Successes: 1, Failures: 4, Ignored: 1, ConsecutiveFailures: 4})
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	permit(t, b).Report(nil)
	expectTransition(t, events, StateHalfOpen, StateClosed)
	wantCounts(t, b, Counts{Requests: 7, Rejected: 3, Successes: 2, Failures: 4, Ignored: 1, ConsecutiveFailures: 0})
}

func TestNameAndStrings(t *testing.T) {
	b, _ := start(t)
	if b.Name() != "test" {
		t.Fatalf("Name() = %q", b.Name())
	}
	for s, want := range map[State]string{StateClosed: "closed", StateHalfOpen: "half-open", StateOpen: "open", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
	for o, want := range map[Outcome]string{Success: "success", Failure: "failure", Ignored: "ignored", 0: "Outcome(0)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(o), o.String(), want)
		}
	}
}
