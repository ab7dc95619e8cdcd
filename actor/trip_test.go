package actor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// Trip opens a closed breaker as its own rule would, marks the event
// External, and leaves recovery to the breaker's own timer and probe.
func TestTripOpensClosedBreakerAsItsOwnRuleWould(t *testing.T) {
	b, mock := start(t, WithRetryTimer(10*time.Second))
	events := subscribe(t, b)

	if err := b.Trip("cluster: 2 instances voted"); err != nil {
		t.Fatalf("Trip = %v", err)
	}
	if s := b.State(); s != StateOpen {
		t.Fatalf("State after Trip = %v, want open (Trip is synchronous)", s)
	}
	ev := next(t, events)
	if ev.To != StateOpen || !ev.External || ev.Reason != "cluster: 2 instances voted" {
		t.Fatalf("event %+v, want an External open with the given reason", ev)
	}
	oe := refused(t, b)
	if oe.RetryAfter() != 10*time.Second {
		t.Fatalf("RetryAfter = %v, want the retry timer 10s", oe.RetryAfter())
	}

	// Trip while open does nothing.
	if err := b.Trip("again"); err != nil {
		t.Fatalf("Trip while open = %v", err)
	}
	mock.Add(10 * time.Second)
	if ev := next(t, events); ev.To != StateHalfOpen || ev.External || ev.Seq != 2 {
		t.Fatalf("event %+v, want the breaker's own half-open, Seq 2 (Trip while open made none)", ev)
	}
	p, err := b.Permit(context.Background())
	if err != nil || !p.Probe() {
		t.Fatalf("Permit in half-open = %v, %v; want the local probe", p, err)
	}
	p.ReportOutcome(Success)
	if ev := next(t, events); ev.To != StateClosed || ev.External {
		t.Fatalf("event %+v, want the probe's own close", ev)
	}
}

func TestTripDefaultReasonAndAfterStop(t *testing.T) {
	b, _ := start(t)
	events := subscribe(t, b)
	if err := b.Trip(""); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Reason == "" || !ev.External {
		t.Fatalf("event %+v, want a default reason", ev)
	}
	b.Stop()
	if err := b.Trip("x"); !errors.Is(err, ErrStopped) {
		t.Fatalf("Trip after Stop = %v, want ErrStopped", err)
	}
	var nilB *Breaker
	if err := nilB.Trip("x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Trip on nil = %v, want ErrInvalid", err)
	}
}

// A dependency's own Retry-After sets the open period, also when shorter.
func TestReportRetryAfterSetsOpenPeriod(t *testing.T) {
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(time.Minute))
	events := subscribe(t, b)
	p, err := b.Permit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !p.ReportRetryAfter(Failure, 5*time.Second) {
		t.Fatal("ReportRetryAfter not applied")
	}
	next(t, events)
	oe := refused(t, b)
	if oe.RetryAfter() != 5*time.Second || !oe.Until.Equal(mock.Now().Add(5*time.Second)) {
		t.Fatalf("refusal %+v (RetryAfter %v), want 5s", oe, oe.RetryAfter())
	}
	mock.Add(5 * time.Second)
	if ev := next(t, events); ev.To != StateHalfOpen {
		t.Fatalf("event %+v, want half-open after the 5s asked for", ev)
	}
	// Through an error: a failed probe carrying RetryAfterError.
	p, err = b.Permit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Report(&RetryAfterError{Err: errors.New("503"), After: 90 * time.Second}) {
		t.Fatal("Report not applied")
	}
	next(t, events)
	if oe := refused(t, b); oe.RetryAfter() != 90*time.Second {
		t.Fatalf("RetryAfter = %v, want 90s from the error", oe.RetryAfter())
	}
}

// A RetryAfterError holds however the report comes to count as a Failure:
// a slow Report or Call (WithSlowCall), and a classifier that panics.
func TestRetryAfterErrorHoldsOnEveryFailurePath(t *testing.T) {
	const slow = 100 * time.Millisecond
	dependency := &RetryAfterError{Err: errors.New("503"), After: time.Minute}
	for _, tc := range []struct {
		name   string
		opts   []Option
		report func(b *Breaker, mock *clock.Mock)
	}{
		{"slow Report", []Option{WithSlowCall(slow)}, func(b *Breaker, mock *clock.Mock) {
			p := permit(t, b)
			mock.Add(2 * slow)
			if !p.Report(dependency) {
				t.Fatal("slow Report not applied")
			}
		}},
		{"slow Call", []Option{WithSlowCall(slow)}, func(b *Breaker, mock *clock.Mock) {
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) {
				mock.Add(2 * slow)
				return 0, dependency
			})
		}},
		{"panicking classifier", []Option{WithClassifier(func(error) Outcome { panic("classifier") })}, func(b *Breaker, _ *clock.Mock) {
			p := permit(t, b)
			defer func() {
				if recover() == nil {
					t.Fatal("the classifier's panic did not go on")
				}
			}()
			p.Report(dependency)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, mock := start(t, append([]Option{WithAllowedFails(1), WithRetryTimer(time.Second)}, tc.opts...)...)
			events := subscribe(t, b)
			tc.report(b, mock)
			expectTransition(t, events, StateClosed, StateOpen)
			if oe := refused(t, b); oe.RetryAfter() != time.Minute {
				t.Fatalf("RetryAfter = %v, want the dependency's minute, not the 1s retry timer", oe.RetryAfter())
			}
		})
	}
}

// RetryAfter never exceeds the period that made the refusal, even when the
// clock is stepped back.
func TestRetryAfterDoesNotStretchWhenClockStepsBack(t *testing.T) {
	b, mock := start(t, WithAllowedFails(1), WithRetryTimer(30*time.Second))
	report(t, b, Failure)
	oe := refused(t, b)
	mock.Set(mock.Now().Add(-time.Hour))
	if got := oe.RetryAfter(); got != 30*time.Second {
		t.Fatalf("RetryAfter after stepping back an hour = %v, want at most the 30s period", got)
	}
	if oe2 := refused(t, b); oe2 != oe {
		t.Fatal("refusals within one open period do not share one *OpenError")
	}
	var zero OpenError
	if zero.RetryAfter() != 0 {
		t.Fatal("zero OpenError RetryAfter != 0")
	}
}
