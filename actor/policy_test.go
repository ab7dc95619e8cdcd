package actor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// The trip and recovery policies (CONTRACT semantics 15-18) on running
// breakers with a mock clock. policy_machine_test.go pins the same rules on
// the machine alone, edges included.

// A failure rate trips a running breaker on the failure that reaches the
// threshold, not on a run; the Open event says why.
func TestFailureRateTrips(t *testing.T) {
	b, _ := start(t, WithFailureRate(0.5, 10, 10*time.Second))
	events := subscribe(t, b)
	for range 8 {
		report(t, b, Success)
	}
	for range 7 {
		report(t, b, Failure) // 7 in a row: the seed's rule is off
	}
	noEvent(t, events) // 7 of 15
	wantState(t, b, StateClosed)
	report(t, b, Failure) // 8 of 16
	ev := expectTransition(t, events, StateClosed, StateOpen)
	if ev.Reason != "failure rate 50% (8 of 16) over 10s" {
		t.Fatalf("reason %q", ev.Reason)
	}
	wantCounts(t, b, Counts{Requests: 16, Successes: 8, Failures: 8, ConsecutiveFailures: 8})
}

// With a mock clock, a success reported after the clock passed its bucket's
// end never lands in that bucket, whether or not the bucket's timer has run
// yet (a mock runs it on a goroutine of its own): the bucket's ticker tells
// the caller at once.
func TestWindowBucketEndSeenAtOnce(t *testing.T) {
	mock := clock.NewMock()
	w := newWindow(newRateRule(1, 1, 10*time.Second), mock)
	w.success(mock.Now())
	b := w.cur.Load()
	if !w.addSuccess() {
		t.Fatal("the fast path refused a success in the current bucket")
	}
	mock.Add(time.Second - time.Nanosecond)
	if !w.addSuccess() {
		t.Fatal("the fast path refused a success 1ns before the bucket's end")
	}
	mock.Add(time.Nanosecond)
	if w.addSuccess() {
		t.Fatal("the fast path took a success after the bucket's end")
	}
	if got := b.successes.Load(); got != 3 {
		t.Fatalf("bucket holds %d successes, want 3", got)
	}
	w.withdraw()
	if w.addSuccess() {
		t.Fatal("the fast path took a success with no bucket current")
	}
}

// The bucket's timer withdraws it at its end, without the loop.
func TestWindowTimerWithdrawsBucket(t *testing.T) {
	mock := clock.NewMock()
	w := newWindow(newRateRule(1, 1, 10*time.Second), mock)
	w.success(mock.Now())
	mock.Add(time.Second)
	deadline := time.Now().Add(guard)
	for w.cur.Load() != nil { // the mock runs the timer's function on a goroutine of its own
		if time.Now().After(deadline) {
			t.Fatalf("the bucket was not withdrawn within %v of its end", guard)
		}
		runtime.Gosched()
	}
}

// The same on a running breaker: successes reported right after mock.Add
// count at their own time, so they are still in the window when a failure
// comes 5.5s later (threshold 1: any success counted keeps it closed).
func TestFailureRateSuccessAfterAddCountsAtItsTime(t *testing.T) {
	for i := range 20 {
		b, mock := start(t, WithFailureRate(1, 1, 10*time.Second), WithRetryTimer(time.Hour))
		report(t, b, Success) // t=0: the window starts
		mock.Add(5 * time.Second)
		if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		mock.Add(5*time.Second + 500*time.Millisecond)
		report(t, b, Failure) // the success at t=5s is 5.5s old: counted
		if s := b.State(); s != StateClosed {
			t.Fatalf("round %d: state %v: the success at t=5s was not counted", i, s)
		}
		b.Stop()
	}
}

// Backoff on a running breaker: 1s, 2s, 4s, then the cap, with RetryAfter
// and Until telling each; a close starts again at the retry timer.
func TestBackoffOnBreaker(t *testing.T) {
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithBackoff(5*time.Second))
	events := subscribe(t, b)
	trip(t, b, events, 1)
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		oe := refused(t, b)
		if oe.RetryAfter() != want || !oe.Until.Equal(mock.Now().Add(want)) {
			t.Fatalf("RetryAfter %v, Until %v; want %v", oe.RetryAfter(), oe.Until, want)
		}
		mock.Add(want)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		permit(t, b).ReportOutcome(Failure)
		expectTransition(t, events, StateHalfOpen, StateOpen)
	}
	mock.Add(5 * time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	permit(t, b).ReportOutcome(Success)
	expectTransition(t, events, StateHalfOpen, StateClosed)
	trip(t, b, events, 1)
	if oe := refused(t, b); oe.RetryAfter() != time.Second {
		t.Fatalf("after a close RetryAfter %v, want the retry timer", oe.RetryAfter())
	}
}

// Jitter on a running breaker: every opening's Until is within
// [now + d(1-f), now + d], and the half-open event comes exactly at Until:
// not 1ns before.
func TestJitterHalfOpenExactlyAtUntil(t *testing.T) {
	const retry, f = 10 * time.Second, 0.5
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(retry), WithJitter(f), withSeed(3, 5))
	events := subscribe(t, b)
	seen := map[time.Duration]bool{}
	for range 40 {
		report(t, b, Failure)
		opened := expectTransition(t, events, StateClosed, StateOpen).At
		oe := refused(t, b)
		d := oe.Until.Sub(opened)
		if d < retry/2 || d > retry || oe.RetryAfter() != d {
			t.Fatalf("open for %v (RetryAfter %v), want within [%v, %v]", d, oe.RetryAfter(), retry/2, retry)
		}
		seen[d] = true
		mock.Add(d - time.Nanosecond)
		noEvent(t, events)
		refused(t, b)
		mock.Add(time.Nanosecond)
		if ev := expectTransition(t, events, StateOpen, StateHalfOpen); !ev.At.Equal(oe.Until) {
			t.Fatalf("half-open at %v, want Until %v", ev.At, oe.Until)
		}
		permit(t, b).ReportOutcome(Success)
		expectTransition(t, events, StateHalfOpen, StateClosed)
	}
	if len(seen) < 30 {
		t.Fatalf("only %d distinct periods in 40 openings: not drawn", len(seen))
	}
}

// Probe successes on a running breaker: three in a row close it; a failure
// in between re-opens at once and the run starts over.
func TestProbeSuccessesOnBreaker(t *testing.T) {
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithProbeSuccesses(3))
	events := subscribe(t, b)
	trip(t, b, events, 1)
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	p := permit(t, b)
	if !p.Probe() {
		t.Fatal("first permit is not the probe")
	}
	if oe := refused(t, b); oe.State != StateHalfOpen {
		t.Fatalf("refusal while the probe is out: %+v", oe)
	}
	p.ReportOutcome(Success)
	p = permit(t, b)
	p.ReportOutcome(Ignored)
	permit(t, b).ReportOutcome(Success)
	noEvent(t, events)
	wantState(t, b, StateHalfOpen)
	permit(t, b).ReportOutcome(Failure)
	expectTransition(t, events, StateHalfOpen, StateOpen)
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	for i := range 3 {
		p := permit(t, b)
		if !p.Probe() {
			t.Fatalf("permit %d is not a probe", i+1)
		}
		p.ReportOutcome(Success)
	}
	expectTransition(t, events, StateHalfOpen, StateClosed)
}

// Slow calls: a success, a cancellation and an ignored error reported more
// than d after the grant are Failures; at exactly d, and a fast failure, count
// as they are. Through Permit and through Call alike.
func TestSlowCalls(t *testing.T) {
	const d = time.Second
	b, mock := start(t, WithSlowCall(d), WithAllowedFails(100), WithAllowedErrors(errNotFound))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	p := permit(t, b)
	mock.Add(d)
	p.ReportOutcome(Success) // exactly d: not slow
	wantCounts(t, b, Counts{Requests: 1, Successes: 1})

	p = permit(t, b)
	mock.Add(d + time.Nanosecond)
	p.ReportOutcome(Success) // a slow success
	wantCounts(t, b, Counts{Requests: 2, Successes: 1, Failures: 1, ConsecutiveFailures: 1})

	p = permit(t, b)
	mock.Add(2 * d)
	p.Report(errNotFound) // an allowed error, slow
	p = permit(t, b)
	mock.Add(2 * d)
	p.ReportOutcome(Ignored)
	wantCounts(t, b, Counts{Requests: 4, Successes: 1, Failures: 3, ConsecutiveFailures: 3})

	p = permit(t, b)
	p.Report(errBoom) // a fast failure
	wantCounts(t, b, Counts{Requests: 5, Successes: 1, Failures: 4, ConsecutiveFailures: 4})

	// Call: a slow cancellation, a slow success, a fast success.
	_, err := Call(canceled, b, func(ctx context.Context) (int, error) { return 0, ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		// The context was done before Call: no permit, nothing counted.
		t.Fatalf("Call with a done context: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Call(ctx, b, func(ctx context.Context) (int, error) {
		mock.Add(2 * d) // the dependency hangs; the caller gives up
		cancel()
		return 0, context.Cause(ctx)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Call returned %v, want fn's error", err)
	}
	got, err := Call(context.Background(), b, func(context.Context) (int, error) { mock.Add(2 * d); return 7, nil })
	if got != 7 || err != nil {
		t.Fatalf("slow Call returned %v, %v; want fn's result unchanged", got, err)
	}
	if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, b, Counts{Requests: 8, Successes: 2, Failures: 6, ConsecutiveFailures: 0})
}

// A slow probe success re-opens the breaker.
func TestSlowProbeReopens(t *testing.T) {
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithSlowCall(100*time.Millisecond))
	events := subscribe(t, b)
	trip(t, b, events, 1)
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	p := permit(t, b)
	mock.Add(200 * time.Millisecond)
	if !p.ReportOutcome(Success) {
		t.Fatal("slow probe report not applied")
	}
	expectTransition(t, events, StateHalfOpen, StateOpen)
}

// ForceOpen on a running breaker: synchronous, one External event, every
// permit refused with State forced-open and a zero Until, counted in
// Rejected; no timer runs; a permit granted before is stale; ForceOpen again
// publishes nothing.
func TestForceOpen(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second))
	events := subscribe(t, b)
	before := permit(t, b)
	trip(t, b, events, 3) // open, with its retry timer armed
	if err := b.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateForcedOpen)
	ev := expectTransition(t, events, StateOpen, StateForcedOpen)
	if !ev.External || ev.Reason != "forced open" || ev.Seq != 2 {
		t.Fatalf("event %+v", ev)
	}
	for range 3 {
		oe := refused(t, b)
		if oe.State != StateForcedOpen || !oe.Until.IsZero() || oe.RetryAfter() != 0 {
			t.Fatalf("refusal %+v, want forced-open, zero Until", *oe)
		}
		if !strings.Contains(oe.Error(), "forced open") {
			t.Fatalf("refusal text %q", oe.Error())
		}
	}
	if _, err := Call(context.Background(), b, func(context.Context) (int, error) {
		t.Fatal("fn ran while forced open")
		return 0, nil
	}); !errors.Is(err, ErrOpen) {
		t.Fatalf("Call while forced open: %v", err)
	}
	mock.Add(24 * time.Hour) // the retry timer was disarmed
	noEvent(t, events)
	wantState(t, b, StateForcedOpen)
	if before.ReportOutcome(Success) {
		t.Fatal("a permit granted before ForceOpen was applied")
	}
	if err := b.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	if err := b.Trip("x"); err != nil {
		t.Fatal(err)
	}
	noEvent(t, events)
	wantCounts(t, b, Counts{Requests: 4, Rejected: 4, Failures: 3, ConsecutiveFailures: 3})
}

// Disable on a running breaker: every permit is granted and every outcome
// counted, nothing trips, no timer runs; permits of before are stale.
func TestDisable(t *testing.T) {
	b, mock := start(t, WithRetryTimer(time.Second), WithFailureRate(0.1, 1, time.Second))
	events := subscribe(t, b)
	report(t, b, Failure) // trips: 1 of 1
	expectTransition(t, events, StateClosed, StateOpen)
	mock.Add(time.Second)
	expectTransition(t, events, StateOpen, StateHalfOpen)
	probe := permit(t, b)
	if err := b.Disable(); err != nil {
		t.Fatal(err)
	}
	ev := expectTransition(t, events, StateHalfOpen, StateDisabled)
	if !ev.External || ev.Reason != "disabled" {
		t.Fatalf("event %+v", ev)
	}
	if probe.ReportOutcome(Success) {
		t.Fatal("the probe granted before Disable was applied")
	}
	if got := b.Counts().ConsecutiveFailures; got != 1 {
		t.Fatalf("ConsecutiveFailures just after Disable = %d, want the run of 1 it had", got)
	}
	for range 50 {
		report(t, b, Failure)
		if _, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom }); !errors.Is(err, errBoom) {
			t.Fatalf("Call while disabled: %v", err)
		}
		report(t, b, Success)
		report(t, b, Ignored)
	}
	mock.Add(time.Hour)
	noEvent(t, events)
	wantState(t, b, StateDisabled)
	wantCounts(t, b, Counts{Requests: 202, Successes: 50, Failures: 101, Ignored: 50})
	// The run of failures goes on while disabled (semantic 13), and a
	// success ends it; nothing trips.
	report(t, b, Failure)
	report(t, b, Failure)
	wantCounts(t, b, Counts{Requests: 204, Successes: 50, Failures: 103, Ignored: 50, ConsecutiveFailures: 2})
	report(t, b, Success)
	wantCounts(t, b, Counts{Requests: 205, Successes: 51, Failures: 103, Ignored: 50})
	noEvent(t, events)
	if err := b.Disable(); err != nil {
		t.Fatal(err)
	}
	noEvent(t, events)

	// ForceOpen from disabled, Disable from forced open: transitions too.
	if err := b.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	expectTransition(t, events, StateDisabled, StateForcedOpen)
	if err := b.Disable(); err != nil {
		t.Fatal(err)
	}
	expectTransition(t, events, StateForcedOpen, StateDisabled)
}

// Reset from every state on a running breaker: closed (an event unless it
// was closed), the run, window and backoff cleared, Counts kept.
func TestResetFromEveryState(t *testing.T) {
	for _, from := range []State{StateClosed, StateOpen, StateHalfOpen, StateForcedOpen, StateDisabled} {
		t.Run(from.String(), func(t *testing.T) {
			b, mock := start(t, WithAllowedFails(3), WithRetryTimer(time.Second), WithBackoff(time.Minute), WithFailureRate(0.5, 4, time.Minute))
			events := subscribe(t, b)
			report(t, b, Failure)
			report(t, b, Failure)
			before := permit(t, b)
			switch from {
			case StateOpen, StateHalfOpen:
				report(t, b, Failure)
				expectTransition(t, events, StateClosed, StateOpen)
				if from == StateHalfOpen {
					mock.Add(time.Second)
					expectTransition(t, events, StateOpen, StateHalfOpen)
					permit(t, b).ReportOutcome(Failure) // the 2nd opening: 2s
					expectTransition(t, events, StateHalfOpen, StateOpen)
					mock.Add(2 * time.Second)
					expectTransition(t, events, StateOpen, StateHalfOpen)
				}
			case StateForcedOpen:
				b.ForceOpen()
				next(t, events)
			case StateDisabled:
				b.Disable()
				next(t, events)
			}
			counts := b.Counts()
			if err := b.Reset(); err != nil {
				t.Fatal(err)
			}
			wantState(t, b, StateClosed)
			if from == StateClosed {
				noEvent(t, events)
				if !before.ReportOutcome(Ignored) {
					t.Fatal("Reset from closed made a permit of the same generation stale")
				}
				counts.Ignored++
			} else {
				ev := expectTransition(t, events, from, StateClosed)
				if !ev.External || ev.Reason != "reset" {
					t.Fatalf("event %+v", ev)
				}
				if before.ReportOutcome(Ignored) {
					t.Fatal("a permit granted before Reset was applied")
				}
			}
			counts.ConsecutiveFailures = 0
			wantCounts(t, b, counts)
			// Cleared: two failures do not trip (they would have made three
			// in a row, and 4 of 4 in the window), and the backoff starts
			// again at the retry timer.
			report(t, b, Failure)
			report(t, b, Failure)
			wantState(t, b, StateClosed)
			report(t, b, Failure)
			expectTransition(t, events, StateClosed, StateOpen)
			if oe := refused(t, b); oe.RetryAfter() != time.Second {
				t.Fatalf("RetryAfter %v after Reset, want the retry timer", oe.RetryAfter())
			}
		})
	}
}

// After Stop, the controls return ErrStopped; on a nil breaker, ErrInvalid.
func TestControlsAfterStopAndNil(t *testing.T) {
	b, _ := start(t)
	b.Stop()
	for name, f := range map[string]func() error{"ForceOpen": b.ForceOpen, "Disable": b.Disable, "Reset": b.Reset} {
		if err := f(); !errors.Is(err, ErrStopped) {
			t.Errorf("%s after Stop = %v, want ErrStopped", name, err)
		}
	}
	var nilB *Breaker
	for name, f := range map[string]func() error{"ForceOpen": nilB.ForceOpen, "Disable": nilB.Disable, "Reset": nilB.Reset} {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s on nil = %v, want ErrInvalid", name, err)
		}
	}
	if err := new(Breaker).Reset(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reset on a zero Breaker = %v, want ErrInvalid", err)
	}
}

// Every invalid policy argument is an error from New that names the option
// and wraps ErrInvalid; nothing panics.
func TestBadPolicyOptions(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		opts []Option
		name string
	}{
		{[]Option{WithFailureRate(0, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(-0.5, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(1.01, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(nan, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(inf, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(-inf, 1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(0.5, 0, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(0.5, -1, time.Second)}, "WithFailureRate"},
		{[]Option{WithFailureRate(0.5, 1, 0)}, "WithFailureRate"},
		{[]Option{WithFailureRate(0.5, 1, -time.Second)}, "WithFailureRate"},
		{[]Option{WithBackoff(0)}, "WithBackoff"},
		{[]Option{WithBackoff(-1)}, "WithBackoff"},
		{[]Option{WithBackoff(time.Second)}, "WithBackoff"}, // below the default retry timer, 30s
		{[]Option{WithRetryTimer(time.Minute), WithBackoff(59 * time.Second)}, "WithBackoff"},
		{[]Option{WithBackoff(59 * time.Second), WithRetryTimer(time.Minute)}, "WithBackoff"},
		{[]Option{WithJitter(-0.1)}, "WithJitter"},
		{[]Option{WithJitter(1)}, "WithJitter"},
		{[]Option{WithJitter(nan)}, "WithJitter"},
		{[]Option{WithJitter(inf)}, "WithJitter"},
		{[]Option{WithJitter(-inf)}, "WithJitter"},
		{[]Option{WithProbeSuccesses(0)}, "WithProbeSuccesses"},
		{[]Option{WithProbeSuccesses(-3)}, "WithProbeSuccesses"},
		{[]Option{WithSlowCall(0)}, "WithSlowCall"},
		{[]Option{WithSlowCall(-time.Second)}, "WithSlowCall"},
	} {
		b, err := New(c.opts...)
		if b != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("New(%s...) = %v, %v; want nil and an ErrInvalid naming %s", c.name, b, err, c.name)
		}
	}
	// Valid edges.
	for _, opts := range [][]Option{
		{WithFailureRate(1, 1, 1)},
		{WithFailureRate(math.SmallestNonzeroFloat64, math.MaxInt, math.MaxInt64)},
		{WithBackoff(DefaultRetryTimer)},
		{WithJitter(0)},
		{WithJitter(math.Nextafter(1, 0)), WithBackoff(math.MaxInt64), WithRetryTimer(math.MaxInt64)},
		{WithProbeSuccesses(math.MaxInt)},
		{WithSlowCall(1)},
	} {
		b, err := New(opts...)
		if err != nil {
			t.Errorf("New: %v", err)
			continue
		}
		b.Stop()
	}
}

// A failure-rate breaker with every policy on, under concurrent callers on
// the real clock (tiny windows and timers, so it trips and recovers many
// times) and an operator flipping the controls: run with -race. The counts
// must add up with what the callers saw.
func TestStressFailureRate(t *testing.T) {
	for _, procs := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			b, err := New(WithLogger(quietLogger()), WithFailureRate(0.3, 5, 2*time.Millisecond),
				WithRetryTimer(100*time.Microsecond), WithBackoff(time.Millisecond), WithJitter(0.5),
				WithProbeSuccesses(2), WithSlowCall(time.Millisecond), WithProbeTimeout(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer stopWithin(t, b)
			events, cancel := b.Subscribe()
			defer cancel()
			var seen atomic.Int64
			go func() {
				for range events {
					seen.Add(1)
				}
			}()
			var granted, refused, applied atomic.Uint64
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 2000 {
						p, err := b.Permit(context.Background())
						if err != nil {
							if !errors.Is(err, ErrOpen) {
								t.Errorf("Permit: %v", err)
								return
							}
							refused.Add(1)
							continue
						}
						granted.Add(1)
						o := Success
						if (i+w)%4 == 0 {
							o = Failure
						}
						if p.ReportOutcome(o) {
							applied.Add(1)
						}
						if i%500 == 499 && w == 0 {
							switch i / 500 {
							case 0:
								b.Disable()
							case 1:
								b.ForceOpen()
							default:
								b.Reset()
							}
						}
					}
				}()
			}
			wg.Wait()
			c := b.Counts()
			if c.Requests != granted.Load() || c.Rejected != refused.Load() || c.Successes+c.Failures+c.Ignored < applied.Load() {
				t.Fatalf("counts %+v; callers saw %d granted, %d refused, %d applied", c, granted.Load(), refused.Load(), applied.Load())
			}
			t.Logf("%d granted, %d refused, %d applied; counts %+v", granted.Load(), refused.Load(), applied.Load(), c)
		})
	}
}

// A group may not drop a breaker with a failure in its failure-rate window,
// even with no consecutive failures (semantic 20); once the failure is older
// than the window, it may.
func TestIdleHealthyWithWindowFailures(t *testing.T) {
	b, mock := start(t, WithFailureRate(0.9, 100, 10*time.Second))
	if !b.idleHealthy() {
		t.Fatal("a fresh breaker is not idle and healthy")
	}
	report(t, b, Failure)
	report(t, b, Success)
	wantCounts(t, b, Counts{Requests: 2, Successes: 1, Failures: 1})
	if b.idleHealthy() {
		t.Fatal("a breaker with a failure in its window counts as idle and healthy")
	}
	mock.Add(10*time.Second - time.Nanosecond)
	if b.idleHealthy() {
		t.Fatal("the failure left the window early")
	}
	mock.Add(time.Nanosecond)
	if !b.idleHealthy() {
		t.Fatal("a failure a window old still keeps the breaker")
	}
}
