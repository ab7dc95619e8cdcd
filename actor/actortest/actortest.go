// Package actortest helps test code that uses a circuit breaker from package
// actor, without sleeps and without hanging: every wait has a real-time
// bound, and a breaker that does not do what the test expects fails the test
// with a message that says what happened instead.
//
// Drive time with a mock clock (github.com/benbjohnson/clock) given to the
// breaker with actor.WithClock, or run the test in a testing/synctest
// bubble (Go 1.25+), which fakes time for the real clock:
//
//	mock := clock.NewMock()
//	b, _ := actor.New(actor.WithClock(mock), actor.WithRetryTimer(time.Second))
//	actortest.HalfOpen(t, b, mock) // open, then the retry timer: one call
//	... exercise the code under test against a half-open breaker ...
//	actortest.WaitState(t, b, actor.StateClosed)
package actortest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Timeout bounds every wait of this package, in real time. Generous, so
// that a test on a loaded machine or under -race does not fail for want of
// time; a test that waits this long is broken, not slow.
var Timeout = 10 * time.Second

// maxFailures bounds how many failures Open reports before it gives up.
const maxFailures = 10_000

// WaitState returns once b is in state want: at once if it is already, else
// when a transition to want is published. It fails the test (t.Fatalf) if
// that does not happen within Timeout, listing the transitions it saw.
// It returns the transition it waited for, or the zero Event if b was
// already there.
func WaitState(t testing.TB, b *actor.Breaker, want actor.State) actor.Event {
	t.Helper()
	events, cancel := b.Subscribe()
	defer cancel()
	// Subscribed first: a transition made after the check below is seen.
	if b.State() == want {
		return actor.Event{}
	}
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("actortest: breaker %q stopped while waiting for %v (state %v; transitions seen: %s)",
					b.Name(), want, b.State(), list(seen))
				return actor.Event{}
			}
			if ev.To == want {
				return ev
			}
			seen = append(seen, fmt.Sprintf("%d %v->%v (%s)", ev.Seq, ev.From, ev.To, ev.Reason))
		case <-deadline.C:
			t.Fatalf("actortest: breaker %q is %v after %v, want %v (transitions seen: %s)",
				b.Name(), b.State(), Timeout, want, list(seen))
			return actor.Event{}
		}
	}
}

func list(seen []string) string {
	if len(seen) == 0 {
		return "none"
	}
	return strings.Join(seen, ", ")
}

// Open opens a closed breaker by reporting failures until it trips, and
// returns the Open transition; a breaker already open is left as it is
// (the zero Event). A half-open breaker is opened by a failed probe. The
// failures count in b's Counts like any others. It fails the test if b does
// not open (stopped, forced open or disabled, or a trip policy that never
// trips).
func Open(t testing.TB, b *actor.Breaker) actor.Event {
	t.Helper()
	events, cancel := b.Subscribe()
	defer cancel()
	for range maxFailures {
		switch b.State() {
		case actor.StateOpen:
			return drainTo(t, b, events, actor.StateOpen)
		case actor.StateClosed, actor.StateHalfOpen:
		default:
			t.Fatalf("actortest: Open: breaker %q is %v", b.Name(), b.State())
		}
		p, err := b.Permit(context.Background())
		var oe *actor.OpenError
		switch {
		case errors.As(err, &oe):
			continue // half-open with its probe out: the breaker decides
		case err != nil:
			t.Fatalf("actortest: Open: breaker %q: Permit: %v", b.Name(), err)
		}
		p.ReportOutcome(actor.Failure)
	}
	t.Fatalf("actortest: Open: breaker %q still %v after %d failures", b.Name(), b.State(), maxFailures)
	return actor.Event{}
}

// drainTo returns the last transition to want among those already published
// (the zero Event if none).
func drainTo(t testing.TB, b *actor.Breaker, events <-chan actor.Event, want actor.State) actor.Event {
	t.Helper()
	var last actor.Event
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return last
			}
			if ev.To == want {
				last = ev
			}
		default:
			return last
		}
	}
}

// HalfOpen opens b (see Open) if it is closed, advances mock (the clock b
// was made with) to the retry timer's deadline, and returns the HalfOpen
// transition. A breaker already half-open is left as it is. mock must be
// the breaker's clock and only this goroutine may advance it meanwhile.
func HalfOpen(t testing.TB, b *actor.Breaker, mock *clock.Mock) actor.Event {
	t.Helper()
	if b.State() == actor.StateHalfOpen {
		return actor.Event{}
	}
	Open(t, b)
	events, cancel := b.Subscribe()
	defer cancel()
	if b.State() == actor.StateOpen {
		_, err := b.Permit(context.Background())
		var oe *actor.OpenError
		if !errors.As(err, &oe) {
			t.Fatalf("actortest: HalfOpen: breaker %q is open but Permit returned %v, want a refusal", b.Name(), err)
		}
		if d := oe.Until.Sub(mock.Now()); d > 0 {
			mock.Add(d)
		}
	}
	return waitFor(t, b, events, actor.StateHalfOpen)
}

// Close brings b to closed: a breaker that is open or half-open (or made
// so, see HalfOpen) gets a successful probe. It returns the Closed
// transition, or the zero Event if b was closed already.
func Close(t testing.TB, b *actor.Breaker, mock *clock.Mock) actor.Event {
	t.Helper()
	if b.State() == actor.StateClosed {
		return actor.Event{}
	}
	HalfOpen(t, b, mock)
	events, cancel := b.Subscribe()
	defer cancel()
	p, err := b.Permit(context.Background())
	if err != nil {
		t.Fatalf("actortest: Close: breaker %q is half-open but Permit returned %v: is another caller's probe out?", b.Name(), err)
	}
	p.ReportOutcome(actor.Success)
	return waitFor(t, b, events, actor.StateClosed)
}

// waitFor waits on events (subscribed before the action that causes it)
// for a transition to want.
func waitFor(t testing.TB, b *actor.Breaker, events <-chan actor.Event, want actor.State) actor.Event {
	t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("actortest: breaker %q stopped while waiting for %v", b.Name(), want)
			}
			if ev.To == want {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("actortest: breaker %q is %v after %v, want %v", b.Name(), b.State(), Timeout, want)
			return actor.Event{}
		}
	}
}

// breakerFrames are the functions that only goroutines of a breaker run:
// the loop on a goroutine of its own, the one that logs transitions, and a
// timer's function. A caller running a step on its own goroutine does not
// count: it is the caller's.
var breakerFrames = []string{
	"circuitbreaker/actor.(*Breaker).run(",
	"circuitbreaker/actor.(*logQueue).drain(",
	"circuitbreaker/actor.(*Breaker).fire(",
	"circuitbreaker/actor.(*Breaker).arm.func",                                 // a timer's function, not yet in fire
	"created by github.com/circuitbreaker-go/circuitbreaker/actor.(*Breaker).", // started, not yet running (gowrap)
}

// NoGoroutines waits until no goroutine of any breaker is left (after Stop,
// or once idle breakers have gone to sleep: see package actor's
// hibernation), and fails the test with their stacks if some are still
// there after Timeout. A breaker that is merely idle has none: this checks
// that a breaker went to sleep, as well as that Stop left nothing behind.
func NoGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		stacks := breakerStacks()
		if len(stacks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("actortest: %d goroutines of breakers left after %v:\n\n%s", len(stacks), Timeout, strings.Join(stacks, "\n\n"))
		}
		runtime.Gosched()
	}
}

func breakerStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range breakerFrames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
