//go:build unix

package bench

import (
	"context"
	"os"
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
// sweep every TTL/2. A prober goroutine Gets 100 hot keys in a loop, and
// every 256th time a new key (making a breaker: the only Get that takes the
// group's lock, which sweeps hold in chunks), timing each Get.
//
// It probes twice, with the garbage collector off both times (GC pauses
// excluded): first for 2 TTLs on a group of only the hot keys, where sweeps
// have nothing to do, while another goroutine keeps the other CPU busy as
// the sweeps will ("quiet-" metrics: what this machine does to a goroutine
// that runs a tight loop, with nothing of the group in the way), then while
// the sweeps drop the idle keys, until the last is gone. It reports the
// longest Get of a present key (max-hit-ns) and of a new key (max-new-ns),
// how many of each took over 1ms (hits-over-1ms, new-over-1ms), the 99.99th
// percentile of hits and the 99.9th of new keys (to the microsecond above),
// the counts (hits, news), and how long the drops took after the last idle
// key was made (drop-s: 1 to 2 TTLs, minus how long making them took).
// ns/op is the mean of the timed Gets during the sweeps.
//
// The rest of the machine is not stopped, so a maximum includes the prober
// being descheduled (on a 2-vCPU VM, a few milliseconds now and then, with
// or without a group). With BENCH_GROUP_OS_SWITCHES=1 (Linux only) the
// prober runs locked to its thread and leaves out the Gets during which the
// OS preempted that thread (getrusage: involuntary context switches;
// switched-out counts them): what remains is what the group itself costs.
// The two system calls per Get make the prober slower, and a locked thread
// makes a Get that waits for the lock slower still, so in that mode read
// the hit metrics, not the new-key ones. Skipped with -short.
func BenchmarkGroupSweep(b *testing.B) {
	if testing.Short() {
		b.Skip("makes 100,000 breakers and waits for them to be dropped; skipped with -short")
	}
	n := envInt(b, "BENCH_GROUP_KEYS", 100_000)
	ttl := envDuration(b, "BENCH_GROUP_TTL", 4*time.Second)
	osSwitches := os.Getenv("BENCH_GROUP_OS_SWITCHES") == "1"
	if osSwitches && !canCountSwitches {
		b.Skip("BENCH_GROUP_OS_SWITCHES=1 needs Linux (getrusage RUSAGE_THREAD)")
	}
	keys := hostKeys(n)
	hot := hostKeys(100)
	for i := range hot {
		hot[i] = "hot-" + hot[i]
	}
	b.Run("impl=actor", func(b *testing.B) {
		var quiet, sweeping probeStats
		var dropTime time.Duration
		for range b.N {
			g := newActorGroup(b, hot, actor.WithIdleTTL(ttl))
			var idleDropped atomic.Int64
			var mu sync.Mutex
			forgotten := make([]*actor.Breaker, 0, n+n/4) // stopped at the end: the group does not stop what it forgets
			var madeN atomic.Int64                        // a made hook, as the integrations have: new keys queue hooks too
			cancel := g.Watch(func(string, *actor.Breaker) { madeN.Add(1) }, func(key string, br *actor.Breaker) {
				mu.Lock()
				forgotten = append(forgotten, br)
				mu.Unlock()
				if strings.HasPrefix(key, "backend-") {
					idleDropped.Add(1)
				}
			})

			gcPercent := debug.SetGCPercent(-1)
			quiet = probeGroup(b, g, hot, "quiet-", osSwitches, func(stop func()) {
				spin(2 * ttl) // the other CPU busy, as the sweeps keep it
				stop()
			})
			debug.SetGCPercent(gcPercent)

			for _, k := range keys {
				if _, err := g.Get(k); err != nil {
					b.Fatal(err)
				}
			}
			made := time.Now()
			runtime.GC() // the garbage of making them, not collected during the sweeps
			debug.SetGCPercent(-1)
			sweeping = probeGroup(b, g, hot, "new-", osSwitches, func(stop func()) {
				for idleDropped.Load() < int64(n) {
					if time.Since(made) > 10*ttl {
						b.Errorf("%d of %d idle keys dropped %v after they were made", idleDropped.Load(), n, time.Since(made))
						break
					}
					time.Sleep(10 * time.Millisecond) // polls the benchmark's progress; not a wait for the library
				}
				stop()
			})
			dropTime = time.Since(made)
			debug.SetGCPercent(gcPercent)
			cancel()
			g.Stop()
			for _, br := range forgotten {
				br.Stop()
			}
		}
		b.ReportMetric(float64(sweeping.total.Nanoseconds())/float64(max(sweeping.hits+sweeping.news, 1)), "ns/op")
		b.ReportMetric(dropTime.Seconds(), "drop-s")
		sweeping.report(b, "")
		quiet.report(b, "quiet-")
	})
}

// spin keeps a CPU busy for d, without allocating or touching the group,
// yielding every 200µs as a sweep does between chunks (so that another
// goroutine that needs a CPU, like the sweeper, gets one without waiting
// for the scheduler to preempt a goroutine).
func spin(d time.Duration) {
	x := 0
	yield := time.Now()
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 1000 {
			x += i
		}
		if time.Since(yield) > 200*time.Microsecond {
			runtime.Gosched()
			yield = time.Now()
		}
	}
	runtime.KeepAlive(x)
}

// probeStats is what probeGroup measured.
type probeStats struct {
	hits, news            int // Gets of present and of new keys
	slowHits, slowNews    int // of which took over 1ms
	maxHit, maxNew, total time.Duration
	hitUS, newUS          []int // how many took [i, i+1) µs; the last counts the rest
	osSwitches            bool  // leave out Gets during which the OS switched the prober's thread out
	switchedOut           int   // Gets left out (BENCH_GROUP_OS_SWITCHES=1): the OS preempted the prober's thread meanwhile
}

// record counts a Get that took d.
func (s *probeStats) record(d time.Duration, isNew bool) {
	if s.hitUS == nil {
		s.hitUS, s.newUS = make([]int, 20_001), make([]int, 20_001)
	}
	s.total += d
	us := min(int(d/time.Microsecond), len(s.hitUS)-1)
	if isNew {
		s.news++
		s.newUS[us]++
		s.maxNew = max(s.maxNew, d)
		s.slowNews += btoi(d > time.Millisecond)
	} else {
		s.hits++
		s.hitUS[us]++
		s.maxHit = max(s.maxHit, d)
		s.slowHits += btoi(d > time.Millisecond)
	}
}

// quantile returns the upper bound, in ns, of the microsecond bucket that
// holds the q quantile of counts.
func quantile(counts []int, q float64) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	rank := int(q * float64(total))
	for i, c := range counts {
		if rank < c {
			return float64((i + 1) * 1000)
		}
		rank -= c
	}
	return float64(len(counts) * 1000)
}

func (s probeStats) report(b *testing.B, prefix string) {
	b.ReportMetric(quantile(s.hitUS, 0.9999), prefix+"p99.99-hit-ns")
	b.ReportMetric(quantile(s.newUS, 0.999), prefix+"p99.9-new-ns")
	b.ReportMetric(float64(s.maxHit.Nanoseconds()), prefix+"max-hit-ns")
	b.ReportMetric(float64(s.maxNew.Nanoseconds()), prefix+"max-new-ns")
	b.ReportMetric(float64(s.slowHits), prefix+"hits-over-1ms")
	b.ReportMetric(float64(s.slowNews), prefix+"new-over-1ms")
	b.ReportMetric(float64(s.hits), prefix+"hits")
	b.ReportMetric(float64(s.news), prefix+"news")
	if s.osSwitches {
		b.ReportMetric(float64(s.switchedOut), prefix+"switched-out")
	}
}

// probeGroup Gets hot keys of g in a loop on a goroutine of its own, and
// every 256th time a new key named prefix and a number, timing each Get,
// until the function that until is given is called; until runs on the
// caller's goroutine, and probeGroup returns once the prober has stopped.
func probeGroup(b *testing.B, g *actor.Group[string], hot []string, prefix string, osSwitches bool, until func(stop func())) probeStats {
	s := probeStats{osSwitches: osSwitches}
	stopc := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if osSwitches {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		for i := 0; ; i++ {
			select {
			case <-stopc:
				return
			default:
			}
			key := hot[i%len(hot)]
			isNew := i%256 == 255
			if isNew {
				key = prefix + strconv.Itoa(i)
			}
			var sw int64
			if osSwitches {
				sw = switches()
			}
			t := time.Now()
			_, err := g.Get(key)
			d := time.Since(t)
			if osSwitches && switches() != sw {
				s.switchedOut++
				continue
			}
			if err != nil {
				b.Error(err)
				return
			}
			s.record(d, isNew)
		}
	}()
	var once sync.Once
	until(func() { once.Do(func() { close(stopc) }) })
	<-done
	return s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
