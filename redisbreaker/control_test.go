package redisbreaker

import (
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// The operator's controls (actor semantic 18) meet the cluster
// (semantic 27).

func wantEvent(t *testing.T, in *instance, to actor.State) actor.Event {
	t.Helper()
	ev := next(t, in.events)
	if ev.To != to {
		t.Fatalf("event %+v, want %v", ev, to)
	}
	return ev
}

// reopen half-opens in's breaker on its own timer and fails the probe: an
// opening by its own rules, so a vote cast (or renewed) now.
func reopen(t *testing.T, in *instance) {
	t.Helper()
	in.clk.Add(retry)
	wantEvent(t, in, actor.StateHalfOpen)
	fail(t, in.b)
	wantOwnOpen(t, in)
}

func hasVote(t *testing.T, in *instance, ns, name string) bool {
	t.Helper()
	_, ok := liveVotes(t, sharedClient(t), ns, name)[in.c.InstanceID()]
	return ok
}

// Semantic 27: an operator's Reset counts as a close. a opened by its own
// rule is Reset while b's and c's votes (a quorum) are live: those votes
// must not re-trip it, and a's own vote is withdrawn. Votes cast after the
// Reset do trip it.
func TestResetCountsAsClose(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "inventory", fast(ns, 2)...)
	b := newInstance(t, shared.addr, "inventory", fast(ns, 2)...)
	c := newInstance(t, shared.addr, "inventory", fast(ns, 2)...)
	fail(t, a.b)
	wantOwnOpen(t, a)
	fail(t, b.b)
	wantOwnOpen(t, b)
	wantOpenByCluster(t, c, ns, "2")
	reopen(t, c) // c's own failed probe: its vote
	eventually(t, 5*time.Second, "votes of a, b and c", func() bool {
		return len(liveVotes(t, sharedClient(t), ns, "inventory")) == 3
	})

	if err := a.b.Reset(); err != nil {
		t.Fatal(err)
	}
	if ev := wantEvent(t, a, actor.StateClosed); !ev.External {
		t.Fatalf("Reset's event %+v is not External", ev)
	}
	eventually(t, 5*time.Second, "a's vote withdrawn after its Reset", func() bool {
		return !hasVote(t, a, ns, "inventory")
	})
	if n := len(liveVotes(t, sharedClient(t), ns, "inventory")); n != 2 {
		t.Fatalf("%d live votes, want b's and c's", n)
	}
	polled(t, 4, a.c)
	if st := a.b.State(); st != actor.StateClosed || a.c.Stats().Trips != 0 {
		t.Fatalf("a is %v after %d trips: votes cast before its Reset re-tripped it", st, a.c.Stats().Trips)
	}

	// b and c open again by their own rules after the Reset: their renewed
	// votes are news, and a is tripped.
	reopen(t, b)
	reopen(t, c)
	wantOpenByCluster(t, a, ns, "2")
}

// Semantic 27: ForceOpen is External: a forced-open breaker never votes,
// even at quorum 1, and trips nobody.
func TestForceOpenNeverVotes(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "billing", fast(ns, 1)...)
	b := newInstance(t, shared.addr, "billing", fast(ns, 1)...)
	if err := a.b.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	if ev := wantEvent(t, a, actor.StateForcedOpen); !ev.External {
		t.Fatalf("ForceOpen's event %+v is not External", ev)
	}
	polled(t, 4, a.c, b.c)
	if n := len(liveVotes(t, sharedClient(t), ns, "billing")); n != 0 || a.c.Stats().Votes != 0 {
		t.Fatalf("%d live votes, %d vote scripts after a ForceOpen, want none", n, a.c.Stats().Votes)
	}
	if b.b.State() != actor.StateClosed {
		t.Fatalf("b is %v: a ForceOpen elsewhere tripped it", b.b.State())
	}
}

// Semantic 27 and 18: a disabled breaker is never tripped by the cluster
// (Trip does nothing when not closed). Its Reset is a close: the votes
// live at the Reset do not trip it; a vote cast after it does.
func TestDisabledIsNeverTripped(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "search", fast(ns, 1)...)
	b := newInstance(t, shared.addr, "search", fast(ns, 1)...)
	if err := b.b.Disable(); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, b, actor.StateDisabled)
	if err := b.b.Trip("test"); err != nil || b.b.State() != actor.StateDisabled {
		t.Fatalf("Trip on a disabled breaker: %v, state %v; want nil and still disabled", err, b.b.State())
	}

	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote", func() bool { return hasVote(t, a, ns, "search") })
	polled(t, 4, b.c)
	if st := b.b.State(); st != actor.StateDisabled || b.c.Stats().Trips != 0 {
		t.Fatalf("b is %v after %d trips, want disabled and never tripped", st, b.c.Stats().Trips)
	}

	if err := b.b.Reset(); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, b, actor.StateClosed)
	polled(t, 4, b.c)
	if st := b.b.State(); st != actor.StateClosed {
		t.Fatalf("b is %v: the vote live at its Reset tripped it", st)
	}
	reopen(t, a)
	wantOpenByCluster(t, b, ns, "1")
}

// Semantic 26 after a Reset: the breaker's next own opening votes again,
// and its close by its own probe withdraws that vote.
func TestReclosingAfterResetWithdraws(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "quotes", fast(ns, 2)...)
	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote", func() bool { return hasVote(t, a, ns, "quotes") })
	if err := a.b.Reset(); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, a, actor.StateClosed)
	eventually(t, 5*time.Second, "withdrawn after the Reset", func() bool { return !hasVote(t, a, ns, "quotes") })

	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote after the Reset", func() bool { return hasVote(t, a, ns, "quotes") })
	a.clk.Add(retry)
	wantEvent(t, a, actor.StateHalfOpen)
	succeed(t, a.b)
	wantEvent(t, a, actor.StateClosed)
	eventually(t, 5*time.Second, "withdrawn after the probe closed it", func() bool { return !hasVote(t, a, ns, "quotes") })
}
