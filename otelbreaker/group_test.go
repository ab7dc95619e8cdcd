package otelbreaker

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func newGroup(t *testing.T, opts ...actor.GroupOption) *actor.Group[string] {
	t.Helper()
	g, err := actor.NewGroup[string](append([]actor.GroupOption{actor.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g
}

func get(t *testing.T, g *actor.Group[string], key string) *actor.Breaker {
	t.Helper()
	b, err := g.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop) // Remove does not stop it
	return b
}

// A group with a cap of two names: the first two keys get series of their
// own, the rest share OtherName; keys made later are followed, removed ones
// are not, and OtherName stays monotonic when its members go.
func TestInstrumentGroup(t *testing.T) {
	r, mp := newReader(t)
	counted := countTransitions(t)
	mock := clock.NewMock()
	g := newGroup(t, actor.WithClock(mock))
	a := get(t, g, "a") // made before InstrumentGroup: followed too
	stop, err := InstrumentGroup(g, mp, WithMaxNames(2))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	b, c, d := get(t, g, "b"), get(t, g, "c"), get(t, g, "d")
	events, cancel := g.Subscribe()
	defer cancel()

	calls(t, a, 3, errBoom) // opens a
	calls(t, b, 1, nil)
	calls(t, c, 2, nil)
	calls(t, d, 3, nil)
	calls(t, d, 1, errBoom)
	select {
	case ev := <-events:
		if ev.Key != "a" || ev.To != actor.StateOpen {
			t.Fatalf("event %+v, want a opened", ev)
		}
	case <-time.After(guard):
		t.Fatal("a did not open")
	}
	calls(t, a, 2, nil) // refused
	waitCounted(t, counted, 1)

	col := collect(t, r)
	col.want(t, StateInstrument, int64(actor.StateOpen), name("a"))
	col.want(t, StateInstrument, 0, name("b"))
	col.want(t, StateInstrument, 0, name(OtherName))
	col.wantNone(t, StateInstrument, "c")
	col.wantNone(t, CallsInstrument, "d")
	col.want(t, CallsInstrument, 3, name("a"), outcome("failure"))
	col.want(t, CallsInstrument, 2, name("a"), outcome("rejected"))
	col.want(t, CallsInstrument, 1, name("b"), outcome("success"))
	col.want(t, CallsInstrument, 5, name(OtherName), outcome("success")) // c and d
	col.want(t, CallsInstrument, 1, name(OtherName), outcome("failure"))
	col.want(t, TransitionsInstrument, 1, append(transition(actor.StateClosed, actor.StateOpen), name("a"))...)

	// d goes: OtherName keeps its calls. b goes: its series ends, and frees
	// a name for the next key.
	if !g.Remove("d") || !g.Remove("b") {
		t.Fatal("Remove: a key was missing")
	}
	e := get(t, g, "e")
	calls(t, e, 1, nil)
	calls(t, c, 1, errBoom)
	col = collect(t, r)
	col.want(t, CallsInstrument, 5, name(OtherName), outcome("success"))
	col.want(t, CallsInstrument, 2, name(OtherName), outcome("failure"))
	col.wantNone(t, StateInstrument, "b")
	col.wantNone(t, CallsInstrument, "b")
	col.want(t, CallsInstrument, 1, name("e"), outcome("success"))
	col.want(t, StateInstrument, 0, name("e"))

	// An open member shows in the gauge of the name it shares.
	calls(t, c, 2, errBoom) // c's third failure in a row
	waitCounted(t, counted, 1)
	col = collect(t, r)
	col.want(t, StateInstrument, int64(actor.StateOpen), name(OtherName))
	col.want(t, TransitionsInstrument, 1, append(transition(actor.StateClosed, actor.StateOpen), name(OtherName))...)

	// The last member of OtherName goes: its calls stay, its state does not.
	g.Remove("c")
	col = collect(t, r)
	col.wantNone(t, StateInstrument, OtherName)
	col.want(t, CallsInstrument, 4, name(OtherName), outcome("failure"))
}

func TestInstrumentGroupNoCap(t *testing.T) {
	r, mp := newReader(t)
	g := newGroup(t)
	stop, err := InstrumentGroup(g, mp, WithMaxNames(0))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		calls(t, get(t, g, k), 1, nil)
	}
	col := collect(t, r)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		col.want(t, CallsInstrument, 1, name(k), outcome("success"))
	}
	col.wantNone(t, CallsInstrument, OtherName)
}

func TestInstrumentGroupStop(t *testing.T) {
	r, mp := newReader(t)
	counted := countTransitions(t)
	g := newGroup(t, actor.WithAllowedFails(1))
	stop, err := InstrumentGroup(g, mp)
	if err != nil {
		t.Fatal(err)
	}
	calls(t, get(t, g, "a"), 1, nil)
	stop()
	stop()
	calls(t, get(t, g, "a"), 1, errBoom)
	calls(t, get(t, g, "b"), 1, errBoom)
	col := collect(t, r)
	for _, n := range []string{"a", "b"} {
		col.wantNone(t, StateInstrument, n)
		col.wantNone(t, CallsInstrument, n)
		col.wantNone(t, TransitionsInstrument, n)
	}
	select {
	case <-counted:
		t.Fatal("a transition was counted after stop")
	default:
	}
}

// Stopping the group ends the counting goroutine; stop still returns.
// The group's Stop drops its members: their series end.
func TestInstrumentGroupAfterGroupStop(t *testing.T) {
	r, mp := newReader(t)
	g := newGroup(t)
	stop, err := InstrumentGroup(g, mp)
	if err != nil {
		t.Fatal(err)
	}
	calls(t, get(t, g, "a"), 1, nil)
	collect(t, r).want(t, CallsInstrument, 1, name("a"), outcome("success"))
	g.Stop()
	col := collect(t, r)
	col.wantNone(t, StateInstrument, "a")
	col.wantNone(t, CallsInstrument, "a")
	stop()
}
