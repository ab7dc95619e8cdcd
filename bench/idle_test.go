//go:build unix

package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	eapache "github.com/eapache/go-resiliency/breaker"
	failsafecb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	mercari "github.com/mercari/go-circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// BenchmarkIdle creates BENCH_IDLE_BREAKERS (default 100,000) idle breakers,
// holds them for BENCH_IDLE_WINDOW (default 2s) and reports:
//
//   - bytes/breaker: heap (HeapAlloc) plus goroutine stacks (StackInuse)
//     added per breaker, after runtime.GC, with all breakers alive;
//   - heap-B/breaker, stack-B/breaker: the two parts;
//   - goroutines/breaker: goroutines added per breaker;
//   - cpu-fraction: process CPU time (user+system, getrusage) over the idle
//     window, as a fraction of one core. It includes the Go runtime's own
//     background work; gobreaker, which starts no goroutines, shows that floor;
//   - ns/op: the cost of creating one breaker (New), not the whole benchmark.
//
// Measure goroutine-based breakers once per process (-count 1, one of Idle and
// IdleAfterTrip at a time, as ./run does): the runtime keeps the g of every
// exited goroutine for reuse, so a later measurement in the same process
// does not count the goroutine structs (about 500 B per breaker).
//
// Skipped with -short.
func BenchmarkIdle(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 100,000 breakers and idles for 2s; skipped with -short")
	}
	n := envInt(b, "BENCH_IDLE_BREAKERS", 100_000)
	window := envDuration(b, "BENCH_IDLE_WINDOW", 2*time.Second)

	b.Run("impl=gobreaker", func(b *testing.B) {
		idle(b, n, window, func() *gobreaker.CircuitBreaker[int] { return newGobreaker(tripAfter) }, nil, nil)
	})
	b.Run("impl=actor", func(b *testing.B) {
		idle(b, n, window, func() *actor.Breaker { return newActorUntracked(b, tripAfter) }, (*actor.Breaker).Stop, nil)
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		idle(b, n, window, func() failsafecb.CircuitBreaker[int] { return newFailsafe(tripAfter) }, nil, nil)
	})
	b.Run("impl=mercari", func(b *testing.B) {
		idle(b, n, window, func() *mercari.CircuitBreaker { return newMercari(tripAfter) }, nil, nil)
	})
	b.Run("impl=eapache", func(b *testing.B) {
		idle(b, n, window, func() *eapache.Breaker { return newEapache(eapacheNeverTrips) }, nil, nil)
	})
}

// BenchmarkIdleAfterTrip is BenchmarkIdle1M for actor breakers that have
// each been through one open -> half-open -> closed cycle (logging through a
// text handler to io.Discard) before they idle: what a cycle leaves behind
// (the log queue, a fresh snapshot) is counted. It measures once the
// goroutines the cycle started (timer functions, loggers) are gone. Real
// clock with a 10ms retry timer (a mock clock's timer list makes a million
// timers quadratic); ns/op is still only New. BENCH_IDLE_1M_BREAKERS
// breakers (default 1,000,000). Skipped with -short.
func BenchmarkIdleAfterTrip(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 1,000,000 breakers and idles for 2s; skipped with -short")
	}
	n := envInt(b, "BENCH_IDLE_1M_BREAKERS", 1_000_000)
	window := envDuration(b, "BENCH_IDLE_WINDOW", 2*time.Second)
	b.Run("impl=actor", func(b *testing.B) {
		ctx := context.Background()
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		idle(b, n, window, func() *actor.Breaker {
			br, err := actor.New(actor.WithAllowedFails(1), actor.WithRetryTimer(10*time.Millisecond),
				actor.WithProbeTimeout(time.Hour), actor.WithLogger(logger))
			if err != nil {
				b.Fatal(err)
			}
			return br
		}, (*actor.Breaker).Stop, func(breakers []*actor.Breaker) {
			for _, br := range breakers {
				// Open, or already half-open if 10ms went by.
				if _, err := actor.Call(ctx, br, actorFail); err != errWork || br.State() == actor.StateClosed {
					b.Fatalf("trip: %v, state %v", err, br.State())
				}
			}
			deadline := time.Now().Add(time.Minute)
			for _, br := range breakers {
				for br.State() != actor.StateHalfOpen {
					if time.Now().After(deadline) {
						b.Fatalf("state %v a minute after tripping", br.State())
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := actor.Call(ctx, br, actorOK); err != nil || br.State() != actor.StateClosed {
					b.Fatalf("probe: %v, state %v", err, br.State())
				}
			}
			waitGoroutines(b, deadline)
		})
	})
}

// BenchmarkIdle1M is BenchmarkIdle for actor and gobreaker at
// BENCH_IDLE_1M_BREAKERS breakers (default 1,000,000): issue 9's target is
// per breaker at a million. Skipped with -short.
func BenchmarkIdle1M(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 1,000,000 breakers and idles for 2s; skipped with -short")
	}
	n := envInt(b, "BENCH_IDLE_1M_BREAKERS", 1_000_000)
	window := envDuration(b, "BENCH_IDLE_WINDOW", 2*time.Second)
	b.Run("impl=gobreaker", func(b *testing.B) {
		idle(b, n, window, func() *gobreaker.CircuitBreaker[int] { return newGobreaker(tripAfter) }, nil, nil)
	})
	b.Run("impl=actor", func(b *testing.B) {
		idle(b, n, window, func() *actor.Breaker { return newActorUntracked(b, tripAfter) }, nil, nil) // no Stop: an idle breaker needs none
	})
}

// BenchmarkIdleOpen is BenchmarkIdle for breakers that are open, tripped by
// one failure with an hour to go (BENCH_IDLE_BREAKERS of them, default
// 100,000): what an armed retry timer costs. The actor has no goroutine
// then either; its timer is the runtime's. Skipped with -short.
func BenchmarkIdleOpen(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 100,000 breakers and idles for 2s; skipped with -short")
	}
	n := envInt(b, "BENCH_IDLE_BREAKERS", 100_000)
	window := envDuration(b, "BENCH_IDLE_WINDOW", 2*time.Second)
	b.Run("impl=gobreaker", func(b *testing.B) {
		idle(b, n, window, func() *gobreaker.CircuitBreaker[int] {
			cb := newGobreaker(1)
			_, _ = cb.Execute(plainFail)
			return cb
		}, nil, nil)
	})
	b.Run("impl=actor", func(b *testing.B) {
		ctx := context.Background()
		idle(b, n, window, func() *actor.Breaker {
			br := newActorUntracked(b, 1)
			_, _ = actor.Call(ctx, br, actorFail)
			return br
		}, (*actor.Breaker).Stop, func(breakers []*actor.Breaker) {
			waitGoroutines(b, time.Now().Add(time.Minute)) // the loggers of the trips
		})
	})
}

// newActorUntracked is newActor without a Stop at cleanup: idle stops them.
func newActorUntracked(tb testing.TB, fails int) *actor.Breaker {
	tb.Helper()
	b, err := actor.New(actor.WithAllowedFails(fails), actor.WithRetryTimer(openFor), actor.WithLogger(quiet))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// waitGoroutines waits until only the benchmark's own goroutines are left
// (the ones the breakers started for timers and logging have ended), or
// fails after deadline.
func waitGoroutines(b *testing.B, deadline time.Time) {
	for runtime.NumGoroutine() > goroutinesAtStart {
		if time.Now().After(deadline) {
			b.Fatalf("%d goroutines, %d at start", runtime.NumGoroutine(), goroutinesAtStart)
		}
		time.Sleep(time.Millisecond)
	}
}

// goroutinesAtStart is how many goroutines idle found before making
// breakers.
var goroutinesAtStart int

// idle measures n breakers made by mk, then releases each with stop (if any).
// Every iteration measures afresh; the metrics are those of the last one.
// The timer runs throughout, so one iteration outlasts the default benchtime
// and b.N stays 1.
// prepare, if not nil, runs on all breakers after they are made and before
// they are measured.
func idle[B any](b *testing.B, n int, window time.Duration, mk func() B, stop func(B), prepare func([]B)) {
	var created time.Duration
	var heap, stack, goroutines, cpu float64
	for range b.N {
		breakers := make([]B, n) // allocated before the baseline: not counted
		before := settled()
		g0 := runtime.NumGoroutine()
		goroutinesAtStart = g0

		t := time.Now()
		for i := range breakers {
			breakers[i] = mk()
		}
		created = time.Since(t)
		if prepare != nil {
			prepare(breakers)
		}

		after := settled()
		goroutines = float64(runtime.NumGoroutine()-g0) / float64(n)
		heap = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
		stack = (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)

		cpu0, t0 := cpuTime(b), time.Now()
		time.Sleep(window)
		cpu = float64(cpuTime(b)-cpu0) / float64(time.Since(t0))

		runtime.KeepAlive(breakers)
		if stop != nil {
			for _, br := range breakers {
				stop(br)
			}
		}
	}
	b.ReportMetric(float64(created.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(heap+stack, "bytes/breaker")
	b.ReportMetric(heap, "heap-B/breaker")
	b.ReportMetric(stack, "stack-B/breaker")
	b.ReportMetric(goroutines, "goroutines/breaker")
	b.ReportMetric(cpu, "cpu-fraction")
}

// settled collects garbage and returns freed memory to the OS (so the
// background scavenger has nothing to do in the idle window), then reads
// the memory statistics.
func settled() runtime.MemStats {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration such as 2s", name, s)
	}
	return d
}
