package redisbreaker

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// load calls b from a few goroutines until the returned stop is called, and
// counts the calls that returned.
func load(t *testing.T, b *actor.Breaker) (calls *atomic.Int64, stop func()) {
	t.Helper()
	calls = new(atomic.Int64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				_, _ = actor.Call(context.Background(), b, func(context.Context) (int, error) { return 1, nil })
				calls.Add(1)
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return calls, stop
}

// moreCalls waits until the load made n more calls: the calls did not wait
// for Redis.
func moreCalls(t *testing.T, calls *atomic.Int64, n int64) {
	t.Helper()
	start := calls.Load()
	eventually(t, 10*time.Second, "calls to go on", func() bool { return calls.Load() >= start+n })
}

// moreErrors waits until c saw n more failed Redis operations.
func moreErrors(t *testing.T, c *Cluster, n uint64) {
	t.Helper()
	start := c.Stats().Errors
	eventually(t, 10*time.Second, "failed Redis operations", func() bool { return c.Stats().Errors >= start+n })
}

// Semantic 28: kill -9 the server under load. Calls go on, Healthy turns
// false, breakers decide alone; one Warn. Restart it on the same port: one
// Info, and the instances converge after the re-read (the vote a cast while
// Redis was down reaches b).
func TestRedisKilledAndRestarted(t *testing.T) {
	srv := ownRedis(t)
	ns := namespace(t)
	logs := &logCounter{}
	a := newInstance(t, srv.addr, "dep", append(fast(ns, 1), WithLogger(slog.New(logs)))...)
	b := newInstance(t, srv.addr, "dep", fast(ns, 1)...)
	eventually(t, 5*time.Second, "healthy", func() bool { return a.c.Healthy() && b.c.Healthy() })
	calls, stopLoad := load(t, b.b)
	moreCalls(t, calls, 1000)

	srv.kill()
	eventually(t, 5*time.Second, "Healthy false", func() bool { return !a.c.Healthy() && !b.c.Healthy() })
	moreCalls(t, calls, 1000)

	fail(t, a.b) // a decides alone
	wantOwnOpen(t, a)
	moreErrors(t, a.c, 3)
	moreErrors(t, b.c, 3)
	if b.b.State() != actor.StateClosed {
		t.Fatal("b changed state while Redis was down")
	}
	if got := logs.count(slog.LevelWarn); got != 1 {
		t.Fatalf("%d Warn records for one loss, want 1: %v", got, logs.msgs)
	}
	stopLoad()

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Healthy again", func() bool { return a.c.Healthy() && b.c.Healthy() })
	wantOpenByCluster(t, b, ns, "1")
	eventually(t, 5*time.Second, "the Info", func() bool { return logs.count(slog.LevelInfo) >= 1 })
	polled(t, 3, a.c)
	if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != 1 || i != 1 {
		t.Fatalf("%d Warn and %d Info records, want 1 and 1: %v", w, i, logs.msgs)
	}
}

// Semantic 28: a Redis that never answered: Healthy is false from the
// start, and breakers work alone.
func TestRedisNeverThere(t *testing.T) {
	srv := ownRedis(t)
	addr := srv.addr
	srv.kill()
	a := newInstance(t, addr, "dep", fast(namespace(t), 1)...)
	moreErrors(t, a.c, 2)
	if a.c.Healthy() {
		t.Fatal("Healthy without Redis")
	}
	fail(t, a.b)
	wantOwnOpen(t, a)
}

// Semantic 28: pub/sub messages are at-most-once. With the subscriptions
// killed, the poll still brings the quorum, and the receivers subscribe
// again.
func TestPubSubKilled(t *testing.T) {
	srv := ownRedis(t)
	rc := newClient(t, srv.addr)
	ns := namespace(t)
	a := newInstance(t, srv.addr, "dep", fast(ns, 1)...)
	b := newInstance(t, srv.addr, "dep", fast(ns, 1)...)
	ctx := context.Background()
	subscribers := func() int64 {
		n, err := rc.PubSubNumSub(ctx, hintChannel(ns)).Result()
		if err != nil {
			return -1
		}
		return n[hintChannel(ns)]
	}
	eventually(t, 5*time.Second, "two subscribers", func() bool { return subscribers() == 2 })
	if err := rc.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	fail(t, a.b)
	wantOpenByCluster(t, b, ns, "1")
	eventually(t, 5*time.Second, "the receivers to subscribe again", func() bool { return subscribers() == 2 })
}

// Semantic 28: a stalled server (SIGSTOP). Every operation ends at its own
// deadline, goroutines do not pile up, calls go on, Close returns; after
// SIGCONT the instances converge.
func TestRedisStalled(t *testing.T) {
	srv := ownRedis(t)
	ns := namespace(t)
	opts := append(fast(ns, 1), WithTimeout(100*time.Millisecond))
	a := newInstance(t, srv.addr, "dep", opts...)
	b := newInstance(t, srv.addr, "dep", opts...)
	extra := newCluster(t, srv.addr, opts...)
	eventually(t, 5*time.Second, "healthy", func() bool { return a.c.Healthy() && b.c.Healthy() && extra.Healthy() })
	calls, stopLoad := load(t, b.b)
	baseline := runtime.NumGoroutine()

	srv.signal(t, syscall.SIGSTOP)
	eventually(t, 5*time.Second, "Healthy false", func() bool { return !a.c.Healthy() && !b.c.Healthy() })
	fail(t, a.b)
	wantOwnOpen(t, a)
	moreErrors(t, a.c, 10)
	moreCalls(t, calls, 1000)
	if n := runtime.NumGoroutine(); n > baseline+8 {
		t.Fatalf("%d goroutines while Redis is stalled, %d before: operations pile up", n, baseline)
	}
	closed := make(chan error, 1) // buffered: the goroutine never blocks
	go func() { closed <- extra.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a stalled Redis")
	}
	stopLoad()

	srv.signal(t, syscall.SIGCONT)
	eventually(t, 10*time.Second, "Healthy again", func() bool { return a.c.Healthy() && b.c.Healthy() })
	wantOpenByCluster(t, b, ns, "1")
}
