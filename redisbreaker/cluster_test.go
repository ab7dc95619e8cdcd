package redisbreaker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// fast are the test settings: votes live 5s on the server's clock, polls
// every 100ms.
func fast(ns string, k int) []Option {
	return []Option{WithNamespace(ns), WithQuorum(k), WithVoteTTL(5 * time.Second), WithPollInterval(100 * time.Millisecond)}
}

func wantOpenByCluster(t *testing.T, in *instance, ns string, votes string) {
	t.Helper()
	ev := next(t, in.events)
	if ev.To != actor.StateOpen || !ev.External {
		t.Fatalf("event %+v, want an External open from the cluster", ev)
	}
	if !strings.Contains(ev.Reason, ns) || !strings.Contains(ev.Reason, votes+" instances") {
		t.Fatalf("reason %q does not name the cluster %q and the count %s", ev.Reason, ns, votes)
	}
}

func wantOwnOpen(t *testing.T, in *instance) {
	t.Helper()
	if ev := next(t, in.events); ev.To != actor.StateOpen || ev.External {
		t.Fatalf("event %+v, want its own open", ev)
	}
}

// Semantic 27: with k = 2, one failing instance never opens the others; a
// second one does, on every instance.
func TestQuorumTwo(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "payments", fast(ns, 2)...)
	b := newInstance(t, shared.addr, "payments", fast(ns, 2)...)
	c := newInstance(t, shared.addr, "payments", fast(ns, 2)...)

	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote in Redis", func() bool {
		return len(liveVotes(t, rc, ns, "payments")) == 1
	})
	polled(t, 3, b.c, c.c)
	if b.b.State() != actor.StateClosed || c.b.State() != actor.StateClosed {
		t.Fatalf("one vote at k=2 opened another instance: b %v, c %v", b.b.State(), c.b.State())
	}

	fail(t, b.b)
	wantOwnOpen(t, b)
	wantOpenByCluster(t, c, ns, "2")
	eventually(t, 5*time.Second, "c counts its trip", func() bool { return c.c.Stats().Trips == 1 })
	if a.c.Stats().Trips+b.c.Stats().Trips != 0 {
		t.Fatal("a or b tripped a breaker that was already open")
	}
}

// Semantic 27: the quorum reaches an instance through the poll alone
// (without hints, as after a lost pub/sub message).
func TestQuorumByPoll(t *testing.T) {
	ns := namespace(t)
	opts := append(fast(ns, 2), withoutHints())
	a := newInstance(t, shared.addr, "search", opts...)
	b := newInstance(t, shared.addr, "search", opts...)
	c := newInstance(t, shared.addr, "search", opts...)
	fail(t, a.b)
	fail(t, b.b)
	wantOpenByCluster(t, c, ns, "2")
	if c.c.Stats().Polls == 0 {
		t.Fatal("tripped without a poll")
	}
}

// Semantic 27: the pub/sub hint trips the others long before a poll would:
// the poll interval here is an hour.
func TestQuorumByHint(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	opts := []Option{WithNamespace(ns), WithQuorum(2), WithVoteTTL(3 * time.Hour), WithPollInterval(time.Hour)}
	a := newInstance(t, shared.addr, "search", opts...)
	b := newInstance(t, shared.addr, "search", opts...)
	c := newInstance(t, shared.addr, "search", opts...)
	for _, in := range []*instance{a, b, c} {
		eventually(t, 5*time.Second, "first poll", func() bool { return in.c.Healthy() })
	}
	fail(t, a.b)
	fail(t, b.b)
	start := time.Now()
	wantOpenByCluster(t, c, ns, "2")
	t.Logf("tripped %v after the second opening (BenchmarkHintLatency measures it)", time.Since(start))
}

// Semantic 27: with k = 1 every opening trips every instance (gossip), and
// a tripped breaker casts no vote (no echo).
func TestQuorumOneGossipsWithoutEcho(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "ledger", fast(ns, 1)...)
	b := newInstance(t, shared.addr, "ledger", fast(ns, 1)...)
	c := newInstance(t, shared.addr, "ledger", fast(ns, 1)...)
	fail(t, a.b)
	wantOwnOpen(t, a)
	wantOpenByCluster(t, b, ns, "1")
	wantOpenByCluster(t, c, ns, "1")
	polled(t, 3, a.c, b.c, c.c)
	votes := liveVotes(t, rc, ns, "ledger")
	if len(votes) != 1 {
		t.Fatalf("votes %v, want only a's: a breaker opened by Trip voted", votes)
	}
	if _, ok := votes[a.c.InstanceID()]; !ok {
		t.Fatalf("votes %v, want a's (%s)", votes, a.c.InstanceID())
	}
	if b.c.Stats().Votes+c.c.Stats().Votes != 0 {
		t.Fatal("a tripped instance ran the vote script")
	}
}

// Semantic 26: a vote expires on the server's clock after the TTL; an
// instance that stops voting is forgotten.
func TestVotesExpireOnServerClock(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	opts := []Option{WithNamespace(ns), WithQuorum(2), WithVoteTTL(time.Second), WithPollInterval(100 * time.Millisecond)}
	a := newInstance(t, shared.addr, "mail", opts...)
	b := newInstance(t, shared.addr, "mail", opts...)
	c := newInstance(t, shared.addr, "mail", opts...)

	before := serverMillis(t, rc)
	fail(t, a.b)
	var cast int64
	eventually(t, 5*time.Second, "a's vote", func() bool {
		cast = liveVotes(t, rc, ns, "mail")[a.c.InstanceID()]
		return cast != 0
	})
	after := serverMillis(t, rc)
	if cast < before || cast > after {
		t.Fatalf("cast at %d, not within the server's clock [%d, %d]", cast, before, after)
	}
	expiry, err := rc.ZScore(context.Background(), votesKey(ns, "mail"), a.c.InstanceID()).Result()
	if err != nil || int64(expiry)-cast != 1000 {
		t.Fatalf("expiry %v (err %v), want cast + TTL = %d", expiry, err, cast+1000)
	}

	// a stays open and does not renew: its vote ages out.
	eventually(t, 5*time.Second, "a's vote to expire", func() bool {
		return len(liveVotes(t, rc, ns, "mail")) == 0
	})
	fail(t, b.b)
	eventually(t, 5*time.Second, "b's vote", func() bool {
		return len(liveVotes(t, rc, ns, "mail")) == 1
	})
	polled(t, 3, c.c)
	if c.b.State() != actor.StateClosed {
		t.Fatal("an expired vote counted towards the quorum")
	}
	// The index forgets the name once no vote is live.
	eventually(t, 5*time.Second, "the index to forget the name", func() bool {
		n, err := rc.ZCount(context.Background(), indexKey(ns), "("+strconv.FormatInt(serverMillis(t, rc), 10), "+inf").Result()
		return err == nil && n == 0
	})
}

// Semantic 27: recovery is never shared. A tripped breaker half-opens on
// its own timer and probes for itself; the votes that opened it do not
// re-open it once it closed; a new opening after its close does.
func TestRecoveryStaysLocal(t *testing.T) {
	ns := namespace(t)
	a := newInstance(t, shared.addr, "geo", fast(ns, 2)...)
	b := newInstance(t, shared.addr, "geo", fast(ns, 2)...)
	c := newInstance(t, shared.addr, "geo", fast(ns, 2)...)
	fail(t, a.b)
	fail(t, b.b)
	wantOwnOpen(t, a)
	wantOwnOpen(t, b)
	wantOpenByCluster(t, c, ns, "2")

	c.clk.Add(retry)
	if ev := next(t, c.events); ev.To != actor.StateHalfOpen {
		t.Fatalf("event %+v, want half-open on c's own timer", ev)
	}
	succeed(t, c.b) // c's own probe
	if ev := next(t, c.events); ev.To != actor.StateClosed {
		t.Fatalf("event %+v, want closed", ev)
	}
	polled(t, 4, c.c)
	if c.b.State() != actor.StateClosed {
		t.Fatal("the votes that opened c re-opened it after its own probe succeeded")
	}
	if a.b.State() != actor.StateOpen || b.b.State() != actor.StateOpen {
		t.Fatal("c's recovery closed another instance's breaker")
	}

	// a and b open again by their own rules after c closed: their renewed
	// votes trip c once more.
	for _, in := range []*instance{a, b} {
		in.clk.Add(retry)
		if ev := next(t, in.events); ev.To != actor.StateHalfOpen {
			t.Fatalf("event %+v, want half-open", ev)
		}
		fail(t, in.b)
		wantOwnOpen(t, in)
	}
	wantOpenByCluster(t, c, ns, "2")
}

// Semantic 26: a close withdraws this instance's vote.
func TestCloseWithdrawsVote(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "cdn", fast(ns, 2)...)
	openAndVote(t, a, rc, ns)
	a.clk.Add(retry)
	next(t, a.events)
	succeed(t, a.b)
	if ev := next(t, a.events); ev.To != actor.StateClosed {
		t.Fatalf("event %+v, want closed", ev)
	}
	eventually(t, 5*time.Second, "a's vote withdrawn", noVote(rc, ns, "cdn"))
}

// openAndVote opens a's breaker by its own failure and waits for its vote.
func openAndVote(t *testing.T, a *instance, rc *redis.Client, ns string) {
	t.Helper()
	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote", func() bool { return len(liveVotes(t, rc, ns, a.b.Name())) == 1 })
}

// noVote reports whether name's keys are gone: no instance votes for it.
func noVote(rc *redis.Client, ns, name string) func() bool {
	return func() bool {
		n, err := rc.Exists(context.Background(), votesKey(ns, name), castKey(ns, name)).Result()
		return err == nil && n == 0
	}
}

// A breaker's subscription that falls more than actor.SubscriberBuffer
// events behind loses the oldest. A close among them still withdraws the
// vote, before it would expire (and count towards a quorum meanwhile).
func TestEventGapCountsAsClose(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	a := newInstance(t, shared.addr, "inbox", fast(ns, 2)...)
	openAndVote(t, a, rc, ns)

	// Holding the cluster's lock keeps its reader inside note with at most
	// one event, while the breaker's subscription fills up behind it.
	a.c.mu.Lock()
	a.clk.Add(retry) // half-open
	succeed(t, a.b)  // closed: the event the reader will not see
	for i := range actor.SubscriberBuffer + 4 {
		control := a.b.ForceOpen // neither is evidence, nor a close
		if i%2 == 1 {
			control = a.b.Disable
		}
		if err := control(); err != nil {
			a.c.mu.Unlock()
			t.Fatal(err)
		}
	}
	a.c.mu.Unlock()

	eventually(t, 3*time.Second, "a's vote withdrawn (it lives 5s)", noVote(rc, ns, "inbox"))
	if got := a.c.Stats().Gaps; got != 1 {
		t.Errorf("Stats().Gaps = %d, want 1", got)
	}
}

// A breaker that flaps does not flood Redis: at most one vote script per
// name per poll interval, whatever the number of openings.
func TestFlappingIsRateLimited(t *testing.T) {
	needRedis(t)
	ns := namespace(t)
	opts := []Option{WithNamespace(ns), WithVoteTTL(30 * time.Second), WithPollInterval(time.Second)}
	a := newInstance(t, shared.addr, "flappy", opts...)
	eventually(t, 5*time.Second, "healthy", a.c.Healthy)
	start := time.Now()
	for i := 0; i < 200; i++ {
		fail(t, a.b) // open
		next(t, a.events)
		a.clk.Add(retry) // half-open
		next(t, a.events)
		if i%2 == 0 {
			succeed(t, a.b) // closed
		} else {
			fail(t, a.b) // open again
			next(t, a.events)
			a.clk.Add(retry)
			next(t, a.events)
			succeed(t, a.b)
		}
		next(t, a.events)
	}
	elapsed := time.Since(start)
	eventually(t, 5*time.Second, "the last withdrawal", func() bool { return a.c.Stats().Votes >= 1 })
	limit := uint64(elapsed/time.Second) + 2
	if got := a.c.Stats().Votes; got > limit {
		t.Fatalf("%d vote scripts in %v for 300 openings, want at most %d (one per interval)", got, elapsed, limit)
	}
}

// Semantic 29: namespaces keep two services apart.
func TestNamespacesKeepServicesApart(t *testing.T) {
	rc := sharedClient(t)
	ns1, ns2 := namespace(t), namespace(t)
	a := newInstance(t, shared.addr, "db", fast(ns1, 1)...)
	b := newInstance(t, shared.addr, "db", fast(ns1, 1)...)
	other := newInstance(t, shared.addr, "db", fast(ns2, 1)...)
	fail(t, a.b)
	wantOwnOpen(t, a)
	wantOpenByCluster(t, b, ns1, "1")
	polled(t, 3, other.c)
	if other.b.State() != actor.StateClosed {
		t.Fatal("a vote in one namespace tripped a breaker in another")
	}
	keys, err := rc.Keys(context.Background(), ns1+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sawIndex := false
	for _, k := range keys {
		sawIndex = sawIndex || k == indexKey(ns1)
		if !strings.HasPrefix(k, ns1+":{db}:") && !strings.HasPrefix(k, ns1+":{}:") {
			t.Fatalf("key %q is not <namespace>:{<name>}:<suffix>, with name db or, for the index, empty", k)
		}
	}
	if !sawIndex {
		t.Fatalf("keys %q: no index %q", keys, indexKey(ns1))
	}
}

// Semantic 29: names travel verbatim as script arguments, never spliced
// into code: a name full of braces, quotes and Lua stays a name.
func TestNamesAreArguments(t *testing.T) {
	rc := sharedClient(t)
	ns := namespace(t)
	name := `x}{:'"]] .. redis.call('FLUSHALL') .. [[`
	a := newInstance(t, shared.addr, name, fast(ns, 1)...)
	b := newInstance(t, shared.addr, name, fast(ns, 1)...)
	fail(t, a.b)
	wantOpenByCluster(t, b, ns, "1")
	if n, err := rc.Exists(context.Background(), ns+":{"+name+"}:votes").Result(); err != nil || n != 1 {
		t.Fatalf("votes key for %q: exists %d, %v", name, n, err)
	}
}

// Join refuses what it cannot share; Close leaves everything and no
// goroutine remains; the client stays usable.
func TestJoinAndClose(t *testing.T) {
	rc := sharedClient(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := NewCluster(rc, WithNamespace(namespace(t)), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(nil); err == nil {
		t.Fatal("Join(nil): no error")
	}
	unnamed, _ := actor.New()
	defer unnamed.Stop()
	if _, err := c.Join(unnamed); err == nil {
		t.Fatal("Join of a breaker without a name: no error")
	}
	b, err := actor.New(actor.WithName("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	leave, err := c.Join(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(b); err != nil { // a second member is allowed
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "healthy", c.Healthy)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	leave() // after Close: a no-op
	if _, err := c.Join(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v, want ErrClosed", err)
	}
	if err := rc.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	needRedis(t)
	rc := sharedClient(t)
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"WithQuorum", WithQuorum(0)},
		{"WithVoteTTL", WithVoteTTL(0)},
		{"WithPollInterval", WithPollInterval(-time.Second)},
		{"WithTimeout", WithTimeout(0)},
		{"WithNamespace", WithNamespace("")},
		{"WithNamespace", WithNamespace("svc{a}")},
		{"WithInstanceID", WithInstanceID("")},
		{"WithQueueSize", WithQueueSize(0)},
		{"WithLogger", WithLogger(nil)},
		{"option 1 of 1", nil},
	} {
		c, err := NewCluster(rc, tc.opt)
		if c != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: %v, %v; want nil and an error naming it", tc.name, c, err)
		}
	}
	if c, err := NewCluster(nil); c != nil || err == nil {
		t.Error("NewCluster(nil): no error")
	}
}

func serverMillis(t testing.TB, rc *redis.Client) int64 {
	t.Helper()
	now, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UnixMilli()
}
