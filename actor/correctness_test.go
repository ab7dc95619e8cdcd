package actor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Issue 10: due timers come first (semantic 5), a caller who gave up is never
// blamed (semantic 2), a panicking classifier never strands a permit
// (semantic 9).

// A probe reported after its deadline is late even when the report reaches
// the breaker before the deadline's timer is handled: the report returns
// false and the timeout is the Failure. Before the fix the loop chose at
// random between the report and the timer, and a late Success closed the
// breaker (a late Ignored freed the probe and the timeout was never counted).
func TestDueTimerComesFirstMock(t *testing.T) {
	for _, o := range []Outcome{Success, Ignored, Failure} {
		t.Run(o.String(), func(t *testing.T) {
			for round := range 10 {
				g := &gate{}
				b, mock := start(t, withGate(g), WithRetryTimer(time.Second), WithProbeTimeout(2*time.Second))
				events := subscribe(t, b)
				halfOpen(t, b, mock, events, time.Second)
				probe := permit(t, b)
				due := mock.Now().Add(2 * time.Second)
				before := b.Counts()
				// Hold the breaker's next step; queue the report behind the
				// gate, then let the probe's deadline pass, so that the
				// report and the timer's firing are both waiting.
				release := g.shutWhen(t, nil, func() {})
				answer := make(chan bool, 1)
				go func() { answer <- probe.ReportOutcome(o) }()
				waitBlocked(t, "actor.(*Permit).ReportOutcome(", 1)
				if round%2 == 0 {
					mock.Add(2 * time.Second) // the deadline's timer fires behind the report
				} else {
					mock.Add(2*time.Second + 500*time.Millisecond) // and past it, before the next retry
				}
				release()
				var applied bool
				within(t, "the late report", func() { applied = <-answer })
				if applied {
					t.Fatalf("round %d: a probe reported after its deadline was applied", round)
				}
				ev := expectTransition(t, events, StateHalfOpen, StateOpen)
				if ev.Reason != "probe not reported within 2s" || !ev.At.Equal(due) {
					t.Fatalf("round %d: event %+v, want the probe timeout", round, ev)
				}
				noEvent(t, events)
				want := before
				want.Failures++
				want.ConsecutiveFailures++
				wantCounts(t, b, want)
				wantState(t, b, StateOpen)
			}
		})
	}
}

// The same with the real clock. With a probe timeout of a nanosecond the
// deadline has always passed by the time the report reaches the breaker,
// whether or not the timer's firing has been handled. With 20ms, the report
// is held at the gate first, and released once the deadline's firing is
// queued behind it: the report is served first, after the deadline.
func TestDueTimerComesFirstRealClock(t *testing.T) {
	for _, probeTimeout := range []time.Duration{time.Nanosecond, 20 * time.Millisecond} {
		t.Run(probeTimeout.String(), func(t *testing.T) {
			noLeaks(t)
			g := &gate{}
			b, err := New(WithName("real"), WithRetryTimer(time.Millisecond), WithProbeTimeout(probeTimeout),
				WithAllowedFails(1), WithLogger(quietLogger()), withGate(g))
			if err != nil {
				t.Fatal(err)
			}
			defer stopWithin(t, b)
			events := subscribe(t, b)
			report(t, b, Failure)
			expectTransition(t, events, StateClosed, StateOpen)
			const rounds = 10
			for round := range rounds {
				expectTransition(t, events, StateOpen, StateHalfOpen)
				p, err := b.Permit(context.Background())
				if err != nil || !p.Probe() {
					t.Fatalf("round %d: Permit = %v, %v, want the probe", round, p, err)
				}
				o := []Outcome{Success, Ignored}[round%2]
				var applied bool
				if probeTimeout == time.Nanosecond {
					applied = p.ReportOutcome(o)
				} else {
					due := time.Now().Add(probeTimeout) // no earlier than the probe's deadline
					release := g.shutWhen(t, nil, func() {})
					answer := make(chan bool, 1)
					go func() { answer <- p.ReportOutcome(o) }()
					// Release the report's step only once the deadline has
					// passed on the breaker's (real) clock and its timer's
					// firing is queued too (pending counts both).
					guardAt := time.Now().Add(guard)
					for time.Now().Before(due) || b.pending.Load() < 2 {
						if time.Now().After(guardAt) {
							t.Fatalf("round %d: the report and the probe's timer not both queued within %v", round, guard)
						}
						runtime.Gosched()
					}
					release()
					within(t, "the late report", func() { applied = <-answer })
				}
				if applied {
					t.Fatalf("round %d: a probe reported after its %v deadline was applied", round, probeTimeout)
				}
				ev := expectTransition(t, events, StateHalfOpen, StateOpen)
				if ev.Reason != "probe not reported within "+probeTimeout.String() {
					t.Fatalf("round %d: Reason %q", round, ev.Reason)
				}
			}
			if c := b.Counts(); c.Failures != rounds+1 || c.Successes != 0 || c.Ignored != 0 {
				t.Fatalf("Counts() = %+v, want %d failures (one trip, %d probe timeouts) and nothing else", c, rounds+1, rounds)
			}
		})
	}
}

// Semantic 2: a caller that gave up is not the dependency's fault, whatever
// fn returns (context.Cause(ctx) included) and whatever the classifier says.
func TestCallerWhoGaveUpIsNotBlamed(t *testing.T) {
	errCause := errors.New("client went away")
	alwaysFailure := WithClassifier(func(error) Outcome { return Failure })
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default classification", nil},
		{"a classifier that says Failure", []Option{alwaysFailure}},
		{"failure errors", []Option{WithFailureErrors(errCause)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := start(t, append([]Option{WithAllowedFails(1)}, tc.opts...)...)
			events := subscribe(t, b)

			// Call: fn returns the cancel cause.
			ctx, cancel := context.WithCancelCause(context.Background())
			_, err := Call(ctx, b, func(ctx context.Context) (int, error) {
				cancel(errCause)
				return 0, context.Cause(ctx)
			})
			if err != errCause {
				t.Fatalf("Call = %v, want fn's error unchanged", err)
			}
			// Permit: granted with a context that is then canceled.
			ctx2, cancel2 := context.WithCancelCause(context.Background())
			p := permit2(t, b, ctx2)
			cancel2(errCause)
			if !p.Report(fmt.Errorf("wrapped: %w", context.Cause(ctx2))) {
				t.Fatal("Report after the caller gave up was not applied (as Ignored)")
			}
			// A plain cancel, any error.
			ctx3, cancel3 := context.WithCancel(context.Background())
			p = permit2(t, b, ctx3)
			cancel3()
			p.Report(errBoom)
			noEvent(t, events)
			wantCounts(t, b, Counts{Requests: 3, Ignored: 3})
		})
	}
	t.Run("an expired deadline stays a failure", func(t *testing.T) {
		b, _ := start(t, WithAllowedFails(2))
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0)) // already expired
		defer cancel()
		p := permit(t, b)
		p.ctx = ctx // as if granted just before the deadline
		p.Report(ctx.Err())
		_, err := Call(context.Background(), b, func(context.Context) (int, error) { return 0, errBoom })
		if err != errBoom {
			t.Fatal(err)
		}
		wantCounts(t, b, Counts{Requests: 2, Failures: 2, ConsecutiveFailures: 2})
		wantState(t, b, StateOpen)
	})
	t.Run("a probe whose caller gave up is freed, not counted", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second), WithClassifier(func(error) Outcome { return Failure }))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		ctx, cancel := context.WithCancelCause(context.Background())
		p := permit2(t, b, ctx)
		cancel(errCause)
		if !p.Report(errCause) {
			t.Fatal("the probe's report was not applied")
		}
		noEvent(t, events)
		wantState(t, b, StateHalfOpen)
		if !permit(t, b).Probe() {
			t.Fatal("the probe is not free again")
		}
	})
	t.Run("nil is a success even after a cancel", func(t *testing.T) {
		b, _ := start(t)
		ctx, cancel := context.WithCancel(context.Background())
		p := permit2(t, b, ctx)
		cancel()
		p.Report(nil)
		wantCounts(t, b, Counts{Requests: 1, Successes: 1})
	})
}

func permit2(t testing.TB, b *Breaker, ctx context.Context) *Permit {
	t.Helper()
	p, err := b.Permit(ctx)
	if err != nil {
		t.Fatalf("Permit: %v", err)
	}
	return p
}

// Semantic 9: a classifier that panics in Report counts a Failure for that
// permit and the panic goes on; no permit (a probe above all) is left
// outstanding.
func TestReportClassifierPanic(t *testing.T) {
	panicky := WithClassifier(func(err error) Outcome {
		if errors.Is(err, errBoom) {
			panic("classifier")
		}
		if errors.Is(err, errRateLimit) {
			runtime.Goexit()
		}
		return Ignored
	})
	t.Run("closed", func(t *testing.T) {
		b, _ := start(t, panicky)
		p := permit(t, b)
		if r := mustPanic(t, func() { p.Report(errBoom) }); r != "classifier" {
			t.Fatalf("recovered %v, want the classifier's own value", r)
		}
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
		if p.Report(errNotFound) {
			t.Fatal("the permit is still outstanding after its classifier panicked")
		}
	})
	t.Run("a probe re-opens at once", func(t *testing.T) {
		b, mock := start(t, panicky, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		p := permit(t, b)
		mustPanic(t, func() { p.Report(errBoom) })
		if ev := expectTransition(t, events, StateHalfOpen, StateOpen); ev.Reason != "probe failed" {
			t.Fatalf("Reason %q, want the probe's failure", ev.Reason)
		}
	})
	t.Run("runtime.Goexit", func(t *testing.T) {
		b, _ := start(t, panicky)
		p := permit(t, b)
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			p.Report(errRateLimit)
		}()
		within(t, "a Report whose classifier exits", func() { <-exited })
		wantCounts(t, b, Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1})
	})
}

// retryAfterOf walks an error chain as errors.As does, without its
// allocation.
func TestRetryAfterOfMatchesErrorsAs(t *testing.T) {
	ra := &RetryAfterError{Err: errBoom, After: time.Minute}
	zero := &RetryAfterError{Err: errBoom}
	for i, err := range []error{
		nil, errBoom, ra, zero, fmt.Errorf("wrapped: %w", ra),
		errors.Join(errBoom, fmt.Errorf("x: %w", ra)), errors.Join(zero, ra),
		fmt.Errorf("two: %w, %w", errNotFound, ra), asErr{ra}, asErr{nil},
	} {
		var want time.Duration
		var target *RetryAfterError
		if errors.As(err, &target) {
			want = max(target.After, 0)
		}
		if got := retryAfterOf(err); got != want {
			t.Errorf("%d: retryAfterOf(%v) = %v, errors.As says %v", i, err, got, want)
		}
	}
	wrapped := fmt.Errorf("wrapped: %w", errBoom)
	if n := testing.AllocsPerRun(100, func() { retryAfterOf(wrapped) }); n != 0 {
		t.Errorf("retryAfterOf allocates %v times per call", n)
	}
}

// asErr has an As method of its own.
type asErr struct{ ra *RetryAfterError }

func (e asErr) Error() string { return "as" }
func (e asErr) As(target any) bool {
	if p, ok := target.(**RetryAfterError); ok && e.ra != nil {
		*p = e.ra
		return true
	}
	return false
}
