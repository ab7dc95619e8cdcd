package redisbreaker

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func newGroup(t *testing.T) (*actor.Group[string], *clock.Mock) {
	t.Helper()
	clk := clock.NewMock()
	g, err := actor.NewGroup[string](actor.WithClock(clk), actor.WithAllowedFails(1),
		actor.WithRetryTimer(retry), actor.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g, clk
}

func get(t *testing.T, g *actor.Group[string], key string) *actor.Breaker {
	t.Helper()
	b, err := g.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Semantic 27 through a group: JoinGroup covers the breakers there before
// it and those made later (a key made after the quorum formed is tripped
// too), and a group breaker's own opening votes.
func TestJoinGroupCoversLaterKeys(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	early := newInstance(t, shared.addr, "early", fast(ns, 1)...)
	late := newInstance(t, shared.addr, "late", fast(ns, 1)...)
	own := newInstance(t, shared.addr, "own", fast(ns, 1)...)

	c := newCluster(t, shared.addr, fast(ns, 1)...)
	g, _ := newGroup(t)
	before := get(t, g, "early")
	leave, err := JoinGroup(c, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leave)

	fail(t, early.b)
	eventually(t, 5*time.Second, "the group's early breaker tripped", func() bool {
		return before.State() == actor.StateOpen
	})

	fail(t, late.b)
	wantOwnOpen(t, late)
	eventually(t, 5*time.Second, "late's vote", func() bool { return late.c.Stats().Votes > 0 })
	after := get(t, g, "late") // made after the quorum formed
	eventually(t, 5*time.Second, "the group's late breaker tripped", func() bool {
		return after.State() == actor.StateOpen
	})

	fail(t, get(t, g, "own")) // the group breaker's own opening is a vote
	wantOpenByCluster(t, own, ns, "1")

	leave()
	leave()
	fresh := get(t, g, "early2")
	other := newInstance(t, shared.addr, "early2", fast(ns, 1)...)
	fail(t, other.b)
	wantOwnOpen(t, other)
	polled(t, 3, c)
	if fresh.State() != actor.StateClosed {
		t.Fatal("a breaker of a group that left was tripped")
	}
}

// Semantic 29: a poll costs in proportion to the names that hold votes, not
// to the joined breakers: 2000 joined breakers and one voted name cost a
// read of the index a poll and a read or two of that name, in all.
func TestPollCostFollowsVotedNames(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	voter := newInstance(t, shared.addr, "key-7", fast(ns, 1)...)
	fail(t, voter.b)
	eventually(t, 5*time.Second, "the vote", func() bool { return voter.c.Stats().Votes > 0 })

	c := newCluster(t, shared.addr, fast(ns, 1)...)
	g, _ := newGroup(t)
	for i := 0; i < 2000; i++ {
		get(t, g, fmt.Sprint("key-", i))
	}
	leave, err := JoinGroup(c, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leave)
	eventually(t, 5*time.Second, "key-7 tripped", func() bool { return get(t, g, "key-7").State() == actor.StateOpen })
	polled(t, 5, c)
	if got := c.Stats().Reads; got > 3 {
		t.Fatalf("%d reads of names' votes with 2000 joined breakers and one voted name, want at most 3", got)
	}
}
