//go:build unix

package bench

import (
	"context"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/sony/gobreaker/v2"
)

// Keyed breakers: actor.Group against what users write today, a map of
// gobreakers behind a sync.RWMutex (gobreaker's maintainers answer "use a
// map"). Both make a key's breaker on first use; the timed loop only gets
// existing keys.

// hostKeys are the keys of the Get benchmarks: host:port strings, as the
// HTTP transport makes them.
func hostKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "backend-" + strconv.Itoa(i) + ".internal.example.com:443"
	}
	return keys
}

// groupKeys is how many keys the Get benchmarks cycle through.
const groupKeys = 1000

// gobreakerMap is the usual hand-written registry.
type gobreakerMap struct {
	mu sync.RWMutex
	m  map[string]*gobreaker.CircuitBreaker[int]
}

func (g *gobreakerMap) get(key string) *gobreaker.CircuitBreaker[int] {
	g.mu.RLock()
	cb := g.m[key]
	g.mu.RUnlock()
	if cb != nil {
		return cb
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cb = g.m[key]; cb == nil {
		settings := gobreakerSettings(tripAfter)
		settings.Name = key
		cb = gobreaker.NewCircuitBreaker[int](settings)
		g.m[key] = cb
	}
	return cb
}

func newGobreakerMap(keys []string) *gobreakerMap {
	g := &gobreakerMap{m: map[string]*gobreaker.CircuitBreaker[int]{}}
	for _, k := range keys {
		g.get(k)
	}
	return g
}

func newActorGroup(tb testing.TB, keys []string, opts ...actor.GroupOption) *actor.Group[string] {
	tb.Helper()
	g, err := actor.NewGroup[string](append([]actor.GroupOption{
		actor.WithAllowedFails(tripAfter), actor.WithRetryTimer(openFor), actor.WithLogger(quiet),
	}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Stop)
	for _, k := range keys {
		if _, err := g.Get(k); err != nil {
			tb.Fatal(err)
		}
	}
	return g
}

// BenchmarkGroupGetCall: get an existing key's breaker, then one closed call.
func BenchmarkGroupGetCall(b *testing.B) {
	keys := hostKeys(groupKeys)
	ctx := context.Background()
	b.Run("impl=gobreaker-map", func(b *testing.B) {
		g := newGobreakerMap(keys)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := g.get(keys[i%groupKeys]).Execute(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		g := newActorGroup(b, keys)
		start(b)
		for i := 0; i < b.N; i++ {
			br, err := g.Get(keys[i%groupKeys])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := actor.Call(ctx, br, actorOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGroupGetCallParallel: GroupGetCall from 8×GOMAXPROCS goroutines,
// each cycling through the keys from its own starting point.
func BenchmarkGroupGetCallParallel(b *testing.B) {
	keys := hostKeys(groupKeys)
	ctx := context.Background()
	var seed atomic.Int64
	b.Run("impl=gobreaker-map", func(b *testing.B) {
		g := newGobreakerMap(keys)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := int(seed.Add(7919)); pb.Next(); i++ {
				if _, err := g.get(keys[i%groupKeys]).Execute(plainOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=actor", func(b *testing.B) {
		g := newActorGroup(b, keys)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := int(seed.Add(7919)); pb.Next(); i++ {
				br, err := g.Get(keys[i%groupKeys])
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := actor.Call(ctx, br, actorOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGroupIdle makes BENCH_GROUP_KEYS (default 100,000) keys and
// reports the memory per key after runtime.GC, with every breaker alive:
// bytes/key (heap plus goroutine stacks; the key strings themselves are
// made before the baseline and not counted), heap-B/key, stack-B/key and
// goroutines/key. ns/op is the cost of a first Get (making the breaker).
//
//   - impl=actor-group: an actor.Group;
//   - impl=actor-breakers: the same number of bare actor breakers (New with
//     the group's options), held in a slice. The difference between the two
//     is the group's own bookkeeping: its map entry, LRU links, use stamps.
//   - impl=gobreaker-map: the map of gobreakers.
//
// Measure each in its own process (-count 1 and one sub-benchmark at a
// time, as ./run does): the runtime keeps the g of every exited goroutine
// for reuse, so a second goroutine-based measurement in one process is
// lower. Skipped with -short.
func BenchmarkGroupIdle(b *testing.B) {
	if testing.Short() {
		b.Skip("makes 100,000 breakers; skipped with -short")
	}
	n := envInt(b, "BENCH_GROUP_KEYS", 100_000)
	keys := hostKeys(n)
	b.Run("impl=actor-group", func(b *testing.B) {
		perKey(b, n, func() (func(i int), func()) {
			g, err := actor.NewGroup[string](actor.WithAllowedFails(tripAfter), actor.WithRetryTimer(openFor), actor.WithLogger(quiet))
			if err != nil {
				b.Fatal(err)
			}
			return func(i int) {
				if _, err := g.Get(keys[i]); err != nil {
					b.Fatal(err)
				}
			}, g.Stop
		})
	})
	b.Run("impl=actor-breakers", func(b *testing.B) {
		perKey(b, n, func() (func(i int), func()) {
			breakers := make([]*actor.Breaker, n)
			return func(i int) {
					br, err := actor.New(actor.WithAllowedFails(tripAfter), actor.WithRetryTimer(openFor),
						actor.WithLogger(quiet), actor.WithName(keys[i]))
					if err != nil {
						b.Fatal(err)
					}
					breakers[i] = br
				}, func() {
					for _, br := range breakers {
						br.Stop()
					}
				}
		})
	})
	b.Run("impl=gobreaker-map", func(b *testing.B) {
		perKey(b, n, func() (func(i int), func()) {
			g := &gobreakerMap{m: map[string]*gobreaker.CircuitBreaker[int]{}}
			return func(i int) { g.get(keys[i]) }, func() { runtime.KeepAlive(g) }
		})
	})
}

// perKey measures the memory of n keys made by add; setup runs before the
// baseline (so what it allocates up front, like a slice of n pointers, is
// not counted) and returns add and a release function.
func perKey(b *testing.B, n int, setup func() (add func(i int), release func())) {
	var created time.Duration
	var heap, stack, goroutines float64
	for range b.N {
		add, release := setup()
		before := settled()
		g0 := runtime.NumGoroutine()
		t := time.Now()
		for i := range n {
			add(i)
		}
		created = time.Since(t)
		after := settled()
		goroutines = float64(runtime.NumGoroutine()-g0) / float64(n)
		heap = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
		stack = (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)
		release()
	}
	b.ReportMetric(float64(created.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(heap+stack, "bytes/key")
	b.ReportMetric(heap, "heap-B/key")
	b.ReportMetric(stack, "stack-B/key")
	b.ReportMetric(goroutines, "goroutines/key")
}

// BenchmarkGroupSweep measures how long Get is held up while the group's
// sweeper walks BENCH_GROUP_KEYS (default 100,000) idle keys and drops
// them, on the real clock with a BENCH_GROUP_TTL (default 4s) idle TTL, so a
// sweep every TTL/2. Once the idle keys are made, one goroutine Gets 100 hot
// keys in a loop, and every 64th time a new key (making a breaker: the only
// Get that takes the group's lock, which sweeps hold in chunks), timing each
// Get, until every idle key has been dropped. The garbage collector is off
// meanwhile (GC pauses excluded); the rest of the machine is not, so a
// maximum includes the prober being descheduled. It reports the longest Get
// of a present key (max-hit-ns) and of a new key (max-new-ns), how many of
// each took over 1ms (hits-over-1ms, new-over-1ms, of gets), and how long
// the drops took after the last idle key was made (drop-s: 1 to 2 TTLs,
// minus how long making them took). ns/op is the mean of the timed Gets.
// Skipped with -short.
func BenchmarkGroupSweep(b *testing.B) {
	if testing.Short() {
		b.Skip("makes 100,000 breakers and waits for them to be dropped; skipped with -short")
	}
	n := envInt(b, "BENCH_GROUP_KEYS", 100_000)
	ttl := envDuration(b, "BENCH_GROUP_TTL", 4*time.Second)
	keys := hostKeys(n)
	hot := hostKeys(100)
	for i := range hot {
		hot[i] = "hot-" + hot[i]
	}
	b.Run("impl=actor", func(b *testing.B) {
		var maxHit, maxNew, total time.Duration
		var gets, slowHits, slowNew int
		var dropTime time.Duration
		for range b.N {
			g := newActorGroup(b, hot, actor.WithIdleTTL(ttl))
			var idleDropped atomic.Int64
			var mu sync.Mutex
			var forgotten []*actor.Breaker // stopped at the end: the group does not stop what it forgets
			cancel := g.Watch(nil, func(key string, br *actor.Breaker) {
				mu.Lock()
				forgotten = append(forgotten, br)
				mu.Unlock()
				if strings.HasPrefix(key, "backend-") {
					idleDropped.Add(1)
				}
			})
			for _, k := range keys {
				if _, err := g.Get(k); err != nil {
					b.Fatal(err)
				}
			}
			made := time.Now()
			gcPercent := debug.SetGCPercent(-1)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := hot[i%len(hot)]
					isNew := i%64 == 63
					if isNew {
						key = "new-" + strconv.Itoa(i)
					}
					t := time.Now()
					_, err := g.Get(key)
					d := time.Since(t)
					if err != nil {
						b.Error(err)
						return
					}
					total += d
					gets++
					slow := d > time.Millisecond
					if isNew {
						maxNew = max(maxNew, d)
						slowNew += btoi(slow)
					} else {
						maxHit = max(maxHit, d)
						slowHits += btoi(slow)
					}
				}
			}()
			for idleDropped.Load() < int64(n) {
				if time.Since(made) > 10*ttl {
					b.Fatalf("%d of %d idle keys dropped %v after they were made", idleDropped.Load(), n, time.Since(made))
				}
				time.Sleep(10 * time.Millisecond) // polls the benchmark's progress; not a wait for the library
			}
			dropTime = time.Since(made)
			close(stop)
			<-done
			debug.SetGCPercent(gcPercent)
			cancel()
			g.Stop()
			for _, br := range forgotten {
				br.Stop()
			}
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(max(gets, 1)), "ns/op")
		b.ReportMetric(float64(maxHit.Nanoseconds()), "max-hit-ns")
		b.ReportMetric(float64(maxNew.Nanoseconds()), "max-new-ns")
		b.ReportMetric(dropTime.Seconds(), "drop-s")
		b.ReportMetric(float64(slowHits), "hits-over-1ms")
		b.ReportMetric(float64(slowNew), "new-over-1ms")
		b.ReportMetric(float64(gets), "gets")
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
