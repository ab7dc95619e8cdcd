package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/failsafe-go/failsafe-go"
	failsafecb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// The failure-rate rule (issue 13) side by side: each breaker trips when at
// least rateMinCalls calls in the last rateWindow failed at rateThreshold or
// more. Every 10th call fails in the mixed scenarios, so none trips; each
// benchmark checks that. Run with:
//
//	go test -run '^$' -bench '^BenchmarkRate(ClosedCall|Mixed)$' -cpu 1,2 .
//	go test -run '^$' -bench '^BenchmarkRate(ClosedCall|Mixed)Parallel$' -cpu 2 .   # 16 goroutines
//	go test -run '^$' -bench '^BenchmarkSlowCall$' -cpu 1 .
//	go test -run '^$' -bench '^BenchmarkIdleFailureRate$' -cpu 2 -benchtime 1x .
const (
	rateThreshold = 0.5
	rateMinCalls  = 100
	rateWindow    = 10 * time.Second
)

func newActorRate(tb testing.TB, opts ...actor.Option) *actor.Breaker {
	tb.Helper()
	b, err := actor.New(append([]actor.Option{
		actor.WithFailureRate(rateThreshold, rateMinCalls, rateWindow),
		actor.WithRetryTimer(openFor),
		actor.WithLogger(quiet),
	}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Stop)
	return b
}

// newGobreakerRate: gobreaker's rolling window (v2.3+): Interval is the
// window, BucketPeriod its step, and ReadyToTrip sees the window's Counts.
func newGobreakerRate() *gobreaker.CircuitBreaker[int] {
	return gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
		Timeout:      openFor,
		Interval:     rateWindow,
		BucketPeriod: rateWindow / 10,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= rateMinCalls && float64(c.TotalFailures) >= rateThreshold*float64(c.Requests)
		},
	})
}

// newFailsafeRate: failsafe-go's time-based failure rate: a fraction, a
// minimum number of executions, and the period.
func newFailsafeRate() failsafecb.CircuitBreaker[int] {
	return failsafecb.NewBuilder[int]().
		WithFailureRateThreshold(rateThreshold, rateMinCalls, rateWindow).
		WithDelay(openFor).
		Build()
}

// BenchmarkRateClosedCall: one successful call through a closed breaker
// that trips on a failure rate.
func BenchmarkRateClosedCall(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreakerRate()
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := cb.Execute(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActorRate(b)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := actor.Call(ctx, br, actorOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		exec := failsafe.With[int](newFailsafeRate())
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := exec.Get(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRateClosedCallParallel: RateClosedCall from 8×GOMAXPROCS goroutines.
func BenchmarkRateClosedCallParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreakerRate()
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(plainOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActorRate(b)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := actor.Call(ctx, br, actorOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		exec := failsafe.With[int](newFailsafeRate())
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := exec.Get(plainOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRateMixed: every 10th call fails; the failure rate stays at 10%,
// under the threshold, so the breaker stays closed.
func BenchmarkRateMixed(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreakerRate()
		start(b)
		for i := 0; i < b.N; i++ {
			fn := plainOK
			if failing(i) {
				fn = plainFail
			}
			if _, err := cb.Execute(fn); !expected(i, err) {
				b.Fatal(err)
			}
		}
		stayedClosed(b, cb.State() == gobreaker.StateClosed)
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActorRate(b)
		start(b)
		for i := 0; i < b.N; i++ {
			fn := actorOK
			if failing(i) {
				fn = actorFail
			}
			if _, err := actor.Call(ctx, br, fn); !expected(i, err) {
				b.Fatal(err)
			}
		}
		stayedClosed(b, br.State() == actor.StateClosed)
		actorCountsAddUp(b, br, b.N)
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		cb := newFailsafeRate()
		exec := failsafe.With[int](cb)
		start(b)
		for i := 0; i < b.N; i++ {
			fn := plainOK
			if failing(i) {
				fn = plainFail
			}
			if _, err := exec.Get(fn); !expected(i, err) {
				b.Fatal(err)
			}
		}
		stayedClosed(b, cb.IsClosed())
	})
}

// BenchmarkRateMixedParallel: RateMixed from 8×GOMAXPROCS goroutines, each
// failing every 10th of its own calls.
func BenchmarkRateMixedParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreakerRate()
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				fn := plainOK
				if failing(i) {
					fn = plainFail
				}
				if _, err := cb.Execute(fn); !expected(i, err) {
					b.Error(err)
					return
				}
			}
		})
		stayedClosed(b, cb.State() == gobreaker.StateClosed)
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActorRate(b)
		var calls atomic.Int64
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for ; pb.Next(); i++ {
				fn := actorOK
				if failing(i) {
					fn = actorFail
				}
				if _, err := actor.Call(ctx, br, fn); !expected(i, err) {
					b.Error(err)
					break
				}
			}
			calls.Add(int64(i))
		})
		stayedClosed(b, br.State() == actor.StateClosed)
		actorCountsAddUp(b, br, int(calls.Load()))
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		cb := newFailsafeRate()
		exec := failsafe.With[int](cb)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				fn := plainOK
				if failing(i) {
					fn = plainFail
				}
				if _, err := exec.Get(fn); !expected(i, err) {
					b.Error(err)
					return
				}
			}
		})
		stayedClosed(b, cb.IsClosed())
	})
}

// BenchmarkSlowCall: what WithSlowCall costs a closed call (two clock reads:
// at the grant and at the report), against the same breaker without it.
func BenchmarkSlowCall(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts []actor.Option
	}{
		{"option=off", nil},
		{"option=on", []actor.Option{actor.WithSlowCall(time.Minute)}},
	} {
		b.Run("call/"+c.name, func(b *testing.B) {
			br := newActorRate(b, c.opts...)
			start(b)
			for i := 0; i < b.N; i++ {
				if _, err := actor.Call(ctx, br, actorOK); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("permit/"+c.name, func(b *testing.B) {
			br := newActorRate(b, c.opts...)
			start(b)
			for i := 0; i < b.N; i++ {
				p, err := br.Permit(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_, err = work(false)
				if !p.Report(err) {
					b.Fatal("Report not applied")
				}
			}
		})
	}
}
