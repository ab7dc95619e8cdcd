package otelbreaker

import (
	"context"
	"errors"
	"testing"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
)

// One outage, seen through the three instruments: calls by outcome as they
// happen, the gauge following the state, and one transition per edge.
func TestInstrumentBreakerThroughAnOutage(t *testing.T) {
	r, mp := newReader(t)
	counted := countTransitions(t)
	mock := clock.NewMock()
	b := newBreaker(t, actor.WithName("db"), actor.WithClock(mock))
	stop, err := InstrumentBreaker(b, mp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	events, cancel := b.Subscribe()
	defer cancel()
	db := name("db")

	calls(t, b, 5, nil)
	calls(t, b, 1, context.Canceled)
	c := collect(t, r)
	c.want(t, StateInstrument, 0, db)
	c.want(t, CallsInstrument, 5, db, outcome("success"))
	c.want(t, CallsInstrument, 0, db, outcome("failure"))
	c.want(t, CallsInstrument, 1, db, outcome("ignored"))
	c.want(t, CallsInstrument, 0, db, outcome("rejected"))
	if n := len(c[TransitionsInstrument]); n != 0 {
		t.Errorf("transitions before any: %v", c[TransitionsInstrument])
	}

	calls(t, b, 3, errBoom) // the third opens it
	waitEvent(t, events, actor.StateOpen)
	calls(t, b, 4, nil) // refused
	waitCounted(t, counted, 1)
	c = collect(t, r)
	c.want(t, StateInstrument, int64(actor.StateOpen), db)
	c.want(t, CallsInstrument, 3, db, outcome("failure"))
	c.want(t, CallsInstrument, 4, db, outcome("rejected"))
	c.want(t, CallsInstrument, 5, db, outcome("success"))
	c.want(t, TransitionsInstrument, 1, append(transition(actor.StateClosed, actor.StateOpen), db)...)

	mock.Add(actor.DefaultRetryTimer)
	waitEvent(t, events, actor.StateHalfOpen)
	waitCounted(t, counted, 1)
	c = collect(t, r)
	c.want(t, StateInstrument, int64(actor.StateHalfOpen), db)
	c.want(t, TransitionsInstrument, 1, append(transition(actor.StateOpen, actor.StateHalfOpen), db)...)

	calls(t, b, 1, nil) // the probe succeeds
	waitEvent(t, events, actor.StateClosed)
	waitCounted(t, counted, 1)
	c = collect(t, r)
	c.want(t, StateInstrument, int64(actor.StateClosed), db)
	c.want(t, CallsInstrument, 6, db, outcome("success"))
	c.want(t, TransitionsInstrument, 1, append(transition(actor.StateHalfOpen, actor.StateClosed), db)...)
	if n := len(c[TransitionsInstrument]); n != 3 {
		t.Errorf("transitions: %d series, want 3: %v", n, c[TransitionsInstrument])
	}
}

func TestInstrumentBreakerStop(t *testing.T) {
	r, mp := newReader(t)
	counted := countTransitions(t)
	b := newBreaker(t, actor.WithName("db"), actor.WithClock(clock.NewMock()), actor.WithAllowedFails(1))
	stop, err := InstrumentBreaker(b, mp)
	if err != nil {
		t.Fatal(err)
	}
	calls(t, b, 1, nil)
	if c := collect(t, r); len(c[CallsInstrument]) != 4 {
		t.Fatalf("calls before stop: %v", c[CallsInstrument])
	}
	stop()
	stop()                  // idempotent
	calls(t, b, 1, errBoom) // trips it: nobody counts the transition any more
	c := collect(t, r)
	c.wantNone(t, StateInstrument, "db")
	c.wantNone(t, CallsInstrument, "db")
	c.wantNone(t, TransitionsInstrument, "db")
	select {
	case <-counted:
		t.Fatal("a transition was counted after stop")
	default:
	}
	// goleak (TestMain) checks that the counting goroutine is gone.
}

func TestInstrumentBreakerAfterTheBreakerStopped(t *testing.T) {
	r, mp := newReader(t)
	b, err := actor.New(actor.WithName("db"))
	if err != nil {
		t.Fatal(err)
	}
	calls(t, b, 2, nil)
	b.Stop()
	stop, err := InstrumentBreaker(b, mp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	collect(t, r).want(t, CallsInstrument, 2, name("db"), outcome("success")) // the last values
}

func TestInstrumentBreakerNilProviderIsGlobal(t *testing.T) {
	r, mp := newReader(t)
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	defer otel.SetMeterProvider(prev)
	b := newBreaker(t, actor.WithName("global"))
	stop, err := InstrumentBreaker(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	calls(t, b, 1, nil)
	collect(t, r).want(t, CallsInstrument, 1, name("global"), outcome("success"))
}

func TestWithAttributes(t *testing.T) {
	r, mp := newReader(t)
	b := newBreaker(t, actor.WithName("db"))
	env := attribute.String("deployment.environment", "test")
	stop, err := InstrumentBreaker(b, mp, WithAttributes(env))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := collect(t, r)
	c.want(t, StateInstrument, 0, name("db"), env)
	c.want(t, CallsInstrument, 0, name("db"), env, outcome("rejected"))
}

func TestBadInput(t *testing.T) {
	_, mp := newReader(t)
	b := newBreaker(t)
	g, err := actor.NewGroup[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	for _, tc := range []struct {
		what string
		try  func() (func(), error)
	}{
		{"nil breaker", func() (func(), error) { return InstrumentBreaker(nil, mp) }},
		{"nil group", func() (func(), error) { return InstrumentGroup[string](nil, mp) }},
		{"nil option", func() (func(), error) { return InstrumentBreaker(b, mp, nil) }},
		{"nil option, group", func() (func(), error) { return InstrumentGroup(g, mp, WithMaxNames(3), nil) }},
		{"WithMaxNames for one breaker", func() (func(), error) { return InstrumentBreaker(b, mp, WithMaxNames(3)) }},
		{"WithMaxNames(-1)", func() (func(), error) { return InstrumentGroup(g, mp, WithMaxNames(-1)) }},
		{"WithAttributes(circuitbreaker.name)", func() (func(), error) {
			return InstrumentBreaker(b, mp, WithAttributes(attribute.String("circuitbreaker.name", "x")))
		}},
		{"WithAttributes(invalid)", func() (func(), error) {
			return InstrumentBreaker(b, mp, WithAttributes(attribute.String("", "no key")))
		}},
	} {
		stop, err := tc.try()
		if err == nil || stop != nil {
			t.Errorf("%s: stop %v, err %v; want an error and no stop", tc.what, stop != nil, err)
			if stop != nil {
				stop()
			}
			continue
		}
		if !errors.Is(err, errInvalid) {
			t.Errorf("%s: %v does not wrap errInvalid", tc.what, err)
		}
	}
}
