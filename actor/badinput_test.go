package actor

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// Bad input (issue 5, semantic 12): a clear error or a documented behaviour,
// never a panic or a hang. breaker_test.go pins nil permits, out-of-range
// outcomes in closed, Call's nil fn and nil breaker; this file adds every
// option and the edges.

func TestBadOptions(t *testing.T) {
	noLeaks(t) // an invalid option starts no goroutine
	classifier := func(error) Outcome { return Failure }
	for _, tc := range []struct {
		name  string
		opts  []Option
		names []string // what the error must name
	}{
		{"WithAllowedFails(0)", []Option{WithAllowedFails(0)}, []string{"WithAllowedFails(0)"}},
		{"WithAllowedFails(-1)", []Option{WithAllowedFails(-1)}, []string{"WithAllowedFails(-1)"}},
		{"WithAllowedFails(MinInt)", []Option{WithAllowedFails(math.MinInt)}, []string{"WithAllowedFails"}},
		{"WithRetryTimer(0)", []Option{WithRetryTimer(0)}, []string{"WithRetryTimer(0s)"}},
		{"WithRetryTimer(-1ns)", []Option{WithRetryTimer(-1)}, []string{"WithRetryTimer(-1ns)"}},
		{"WithRetryTimer(MinInt64)", []Option{WithRetryTimer(math.MinInt64)}, []string{"WithRetryTimer"}},
		{"WithProbeTimeout(0)", []Option{WithProbeTimeout(0)}, []string{"WithProbeTimeout(0s)"}},
		{"WithProbeTimeout(-1s)", []Option{WithProbeTimeout(-time.Second)}, []string{"WithProbeTimeout(-1s)"}},
		{"WithProbeTimeout(MinInt64)", []Option{WithProbeTimeout(math.MinInt64)}, []string{"WithProbeTimeout"}},
		{"WithClock(nil)", []Option{WithClock(nil)}, []string{"WithClock(nil)"}},
		{"WithLogger(nil)", []Option{WithLogger(nil)}, []string{"WithLogger(nil)"}},
		{"a nil *clock.Mock", []Option{WithClock((*clock.Mock)(nil))}, []string{"WithClock(*clock.Mock(nil))"}},
		{"a Logger without a handler", []Option{WithLogger(new(slog.Logger))}, []string{"WithLogger(new(slog.Logger))"}},
		{"WithClassifier(nil)", []Option{WithClassifier(nil)}, []string{"WithClassifier(nil)"}},
		{"WithAllowedErrors(nil)", []Option{WithAllowedErrors(nil)}, []string{"WithAllowedErrors", "1 of 1 is nil"}},
		{"WithAllowedErrors(err, nil)", []Option{WithAllowedErrors(errBoom, nil)}, []string{"WithAllowedErrors", "2 of 2 is nil"}},
		{"WithFailureErrors()", []Option{WithFailureErrors()}, []string{"WithFailureErrors()"}},
		{"WithFailureErrors(nil)", []Option{WithFailureErrors(nil)}, []string{"WithFailureErrors", "1 of 1 is nil"}},
		{"WithFailureErrors(err, nil, err)", []Option{WithFailureErrors(errBoom, nil, errNotFound)}, []string{"WithFailureErrors", "2 of 3 is nil"}},
		{"allowed and failure errors", []Option{WithAllowedErrors(errNotFound), WithFailureErrors(errBoom)},
			[]string{"WithAllowedErrors", "WithFailureErrors", "cannot be combined"}},
		{"allowed errors and classifier", []Option{WithAllowedErrors(errNotFound), WithClassifier(classifier)},
			[]string{"WithAllowedErrors", "WithClassifier", "cannot be combined"}},
		{"classifier and failure errors", []Option{WithClassifier(classifier), WithFailureErrors(errBoom)},
			[]string{"WithClassifier", "WithFailureErrors", "cannot be combined"}},
		{"all three ways to classify", []Option{WithFailureErrors(errBoom), WithClassifier(classifier), WithAllowedErrors(errNotFound)},
			[]string{"WithAllowedErrors", "WithFailureErrors", "WithClassifier"}},
		{"empty allowed errors still choose a way", []Option{WithAllowedErrors(), WithClassifier(classifier)},
			[]string{"WithAllowedErrors", "WithClassifier"}},
		{"nil Option", []Option{nil}, []string{"option 1 of 1 is nil"}},
		// The one way to make an Option besides the With functions: a type
		// that embeds the interface, here left nil.
		{"an Option embedding a nil Option", []Option{WithName("x"), embeddedOption{}}, []string{"option 2 of 2"}},
		{"nil Option among valid ones", []Option{WithName("x"), nil, WithAllowedFails(2)}, []string{"option 2 of 3 is nil"}},
		{"invalid after valid ones", []Option{WithName("x"), WithRetryTimer(time.Second), WithAllowedFails(0)}, []string{"WithAllowedFails(0)"}},
		{"invalid, then the same option valid", []Option{WithAllowedFails(0), WithAllowedFails(3)}, []string{"WithAllowedFails(0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b *Breaker
			var err error
			within(t, "New", func() { b, err = New(tc.opts...) })
			if b != nil {
				b.Stop()
				t.Fatal("New returned a breaker")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New = %v, want an error wrapping ErrInvalid", err)
			}
			for _, name := range tc.names {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %q", err, name)
				}
			}
		})
	}
}

// embeddedOption wraps an Option, as a configuration layer might.
type embeddedOption struct{ Option }

// Options that look odd but are valid, with their documented behaviour.
func TestOddButValidOptions(t *testing.T) {
	t.Run("an option given twice: the last wins", func(t *testing.T) {
		b, mock := start(t, WithAllowedFails(1), WithAllowedFails(4), WithRetryTimer(time.Hour), WithRetryTimer(time.Second),
			WithAllowedErrors(errNotFound), WithAllowedErrors(errRateLimit), WithName("first"), WithName("last"))
		events := subscribe(t, b)
		if b.Name() != "last" {
			t.Fatalf("Name() = %q", b.Name())
		}
		permit(t, b).Report(errRateLimit) // ignored: the last list
		permit(t, b).Report(errNotFound)  // a failure: not in the last list
		report(t, b, Failure)
		report(t, b, Failure)
		noEvent(t, events)
		report(t, b, Failure)
		expectTransition(t, events, StateClosed, StateOpen)
		if oe := refused(t, b); oe.RetryAfter() != time.Second {
			t.Fatalf("RetryAfter = %v, want the last retry timer 1s", oe.RetryAfter())
		}
		// The probe timeout defaults to the last retry timer.
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		permit(t, b)
		if oe := refused(t, b); oe.RetryAfter() != time.Second {
			t.Fatalf("probe deadline in %v, want the last retry timer 1s", oe.RetryAfter())
		}
	})

	t.Run("WithAllowedErrors() with no errors is the default classification", func(t *testing.T) {
		b, _ := start(t, WithAllowedErrors())
		permit(t, b).Report(context.Canceled)
		permit(t, b).Report(errBoom)
		wantCounts(t, b, Counts{Requests: 2, Failures: 1, Ignored: 1, ConsecutiveFailures: 1})
	})

	t.Run("a probe timeout given before the retry timer is kept", func(t *testing.T) {
		b, mock := start(t, WithProbeTimeout(3*time.Second), WithRetryTimer(time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		permit(t, b)
		if oe := refused(t, b); oe.RetryAfter() != 3*time.Second {
			t.Fatalf("probe deadline in %v, want 3s", oe.RetryAfter())
		}
	})

	t.Run("WithAllowedFails(MaxInt) never trips in practice", func(t *testing.T) {
		b, _ := start(t, WithAllowedFails(math.MaxInt))
		for range 1000 {
			report(t, b, Failure)
		}
		wantState(t, b, StateClosed)
	})

	t.Run("the same classification option twice is no conflict", func(t *testing.T) {
		b, err := New(WithFailureErrors(errBoom), WithFailureErrors(errNotFound))
		if err != nil {
			t.Fatal(err)
		}
		b.Stop()
	})
}

// Huge durations: deadlines far away, or past the end of time.Time, must not
// overflow into a negative RetryAfter or an early transition.
func TestHugeDurations(t *testing.T) {
	const huge = time.Duration(math.MaxInt64)

	t.Run("retry timer, mock clock", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(huge), WithProbeTimeout(huge))
		events := subscribe(t, b)
		trip(t, b, events, 3)
		if oe := refused(t, b); oe.RetryAfter() != huge {
			t.Fatalf("RetryAfter = %v, want %v", oe.RetryAfter(), huge)
		}
		mock.Add(100 * 365 * 24 * time.Hour)
		if oe := refused(t, b); oe.RetryAfter() != huge-100*365*24*time.Hour {
			t.Fatalf("RetryAfter a century later = %v", oe.RetryAfter())
		}
		noEvent(t, events)
		wantState(t, b, StateOpen)
	})

	t.Run("retry timer, real clock", func(t *testing.T) {
		b, err := New(WithRetryTimer(huge), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		defer stopWithin(t, b)
		events := subscribe(t, b)
		trip(t, b, events, 3)
		oe := refused(t, b)
		if oe.RetryAfter() <= huge-time.Hour {
			t.Fatalf("RetryAfter = %v, want about %v", oe.RetryAfter(), huge)
		}
		wantState(t, b, StateOpen)
	})

	t.Run("probe timeout, mock clock", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second), WithProbeTimeout(huge))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		probe := permit(t, b)
		if oe := refused(t, b); oe.State != StateHalfOpen || oe.RetryAfter() != huge {
			t.Fatalf("refusal %+v, want half-open, %v", *oe, huge)
		}
		mock.Add(time.Hour)
		if oe := refused(t, b); oe.RetryAfter() != huge-time.Hour {
			t.Fatalf("RetryAfter an hour later = %v", oe.RetryAfter())
		}
		noEvent(t, events)
		probe.Report(nil)
		expectTransition(t, events, StateHalfOpen, StateClosed)
	})

	t.Run("deadline past the end of time.Time", func(t *testing.T) {
		// Ten years before the last instant time.Time can hold.
		const unixToInternal = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 24 * 60 * 60
		endOfTime := time.Unix(math.MaxInt64-unixToInternal, 999_999_999)
		mock := clock.NewMock()
		mock.Set(endOfTime.Add(-10 * 365 * 24 * time.Hour))
		b, err := New(WithClock(mock), WithRetryTimer(huge), WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		defer stopWithin(t, b)
		events := subscribe(t, b)
		trip(t, b, events, 3)
		left := refused(t, b).RetryAfter()
		if want := endOfTime.Sub(mock.Now()); left <= 0 || left > want {
			t.Fatalf("RetryAfter = %v, want positive and at most the %v left until the end of time", left, want)
		}
		mock.Add(time.Hour)
		if oe := refused(t, b); oe.RetryAfter() != left-time.Hour {
			t.Fatalf("RetryAfter an hour later = %v, want %v", oe.RetryAfter(), left-time.Hour)
		}
		noEvent(t, events)
		wantState(t, b, StateOpen)
	})
}

// nil and zero values everywhere a caller can pass one.
func TestNilAndZeroValues(t *testing.T) {
	t.Run("nil ctx in every state", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		trip(t, b, events, 3)
		//lint:ignore SA1012 a nil context is documented input
		if _, err := b.Permit(nil); !errors.Is(err, ErrOpen) {
			t.Fatalf("Permit(nil) when open = %v", err)
		}
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		// Half-open with the probe free: this one goes to the loop.
		//lint:ignore SA1012 a nil context is documented input
		p, err := b.Permit(nil)
		if err != nil || !p.Probe() {
			t.Fatalf("Permit(nil) in half-open = %v, %v, want the probe", p, err)
		}
		p.Report(nil)
		expectTransition(t, events, StateHalfOpen, StateClosed)
	})

	t.Run("a zero Permit", func(t *testing.T) {
		var p Permit
		if p.Report(nil) || p.ReportOutcome(Success) || p.Probe() {
			t.Fatal("a zero Permit applied a report or is a probe")
		}
	})

	t.Run("out-of-range outcomes leave the probe out", func(t *testing.T) {
		b, mock := start(t, WithRetryTimer(time.Second))
		events := subscribe(t, b)
		halfOpen(t, b, mock, events, time.Second)
		probe := permit(t, b)
		for _, o := range []Outcome{0, release, Ignored + 1, math.MinInt, math.MaxInt} {
			if probe.ReportOutcome(o) {
				t.Fatalf("ReportOutcome(%d) = true", o)
			}
		}
		refused(t, b) // still out
		if !probe.ReportOutcome(Success) {
			t.Fatal("the probe could not be reported after out-of-range outcomes")
		}
		expectTransition(t, events, StateHalfOpen, StateClosed)
	})

	t.Run("a nil Breaker", func(t *testing.T) {
		var b *Breaker
		fn := func(context.Context) (int, error) { t.Error("fn ran"); return 0, nil }
		if _, err := Wrap(b, fn)(context.Background()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Wrap(nil breaker)() = %v, want ErrInvalid", err)
		}
		//lint:ignore SA1012 a nil context is documented input
		if _, err := Call[int](nil, b, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Call(nil, nil, nil) = %v, want ErrInvalid", err)
		}
		//lint:ignore SA1012 a nil context is documented input
		if p, err := b.Permit(nil); p != nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("nil Breaker Permit(nil) = %v, %v", p, err)
		}
		within(t, "Stop on a nil Breaker, twice", func() { b.Stop(); b.Stop() })
	})

	t.Run("nil fn with a stopped breaker or a done ctx is still ErrInvalid", func(t *testing.T) {
		b, _ := start(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Call[int](ctx, b, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Call(done ctx, nil fn) = %v", err)
		}
		b.Stop()
		if _, err := Call[int](context.Background(), b, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Call(stopped, nil fn) = %v", err)
		}
	})
}
