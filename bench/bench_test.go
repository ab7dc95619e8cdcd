package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	eapache "github.com/eapache/go-resiliency/breaker"
	failsafecb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	mercari "github.com/mercari/go-circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// Sub-benchmarks are named impl=NAME so that benchstat can put the
// implementations in columns (-col /impl). gobreaker runs first in each
// scenario, so it is benchstat's base column.
//
// Each timed loop calls the breaker directly (no helper closure per call:
// an indirect call costs about as much as the fastest breakers), checks
// every error, and the scenario checks the breaker's state afterwards.

// parallelism is b.SetParallelism's factor: RunParallel starts
// parallelism×GOMAXPROCS goroutines.
const parallelism = 8

// failing says whether the i-th call of a goroutine fails in the mixed
// scenarios: every 10th.
func failing(i int) bool { return i%10 == 9 }

// start begins timing after a sub-benchmark's setup, allocations included.
func start(b *testing.B) {
	b.ReportAllocs()
	b.ResetTimer()
}

// startParallel is start for b.RunParallel benchmarks.
func startParallel(b *testing.B) {
	b.SetParallelism(parallelism)
	start(b)
}

// BenchmarkClosedCall: one call through a closed breaker; the operation succeeds.
func BenchmarkClosedCall(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreaker(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := cb.Execute(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActor(b, tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := actor.Call(ctx, br, actorOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		exec := newFailsafeExecutor(newFailsafe(tripAfter))
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := exec.Get(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := cb.Do(ctx, mcOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=eapache", func(b *testing.B) {
		cb := newEapache(eapacheNeverTrips)
		start(b)
		for i := 0; i < b.N; i++ {
			if err := cb.Run(eaOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClosedCallParallel: ClosedCall from 8×GOMAXPROCS goroutines on one breaker.
func BenchmarkClosedCallParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreaker(tripAfter)
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
		br := newActor(b, tripAfter)
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
		exec := newFailsafeExecutor(newFailsafe(tripAfter))
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
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(tripAfter)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Do(ctx, mcOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=eapache", func(b *testing.B) {
		cb := newEapache(eapacheNeverTrips)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := cb.Run(eaOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkTwoStep: ask for a permit, run the operation, report its error.
// eapache has no two-step API.
func BenchmarkTwoStep(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreakerTwoStep(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			done, err := cb.Allow()
			if err != nil {
				b.Fatal(err)
			}
			_, err = work(false)
			done(err)
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActor(b, tripAfter)
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
	b.Run("impl=failsafe", func(b *testing.B) {
		cb := newFailsafe(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			if !cb.TryAcquirePermit() {
				b.Fatal("no permit")
			}
			_, err := work(false)
			cb.RecordError(err)
		}
	})
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			if !cb.Ready() {
				b.Fatal("not ready")
			}
			_, err := work(false)
			if err := cb.Done(ctx, err); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenRejection: the breaker was tripped by one failure before the
// timer started and stays open for an hour; every call is refused without
// running the operation. stillOpen checks the refusal after the loop.
func BenchmarkOpenRejection(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreaker(1)
		_, _ = cb.Execute(plainFail)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := cb.Execute(plainOK); err == nil {
				b.Fatal("ran while open")
			}
		}
		_, err := cb.Execute(plainOK)
		stillOpen(b, err, gobreaker.ErrOpenState, cb.State() == gobreaker.StateOpen)
	})
	b.Run("impl=actor", func(b *testing.B) {
		br := newActor(b, 1)
		_, _ = actor.Call(ctx, br, actorFail)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := actor.Call(ctx, br, actorOK); err == nil {
				b.Fatal("ran while open")
			}
		}
		_, err := actor.Call(ctx, br, actorOK)
		stillOpen(b, err, actor.ErrOpen, br.State() == actor.StateOpen)
		var oe *actor.OpenError
		if !errors.As(err, &oe) || oe.RetryAfter() <= 0 || oe.RetryAfter() > openFor {
			b.Fatalf("refusal %v: want an *OpenError with 0 < RetryAfter <= %v", err, openFor)
		}
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		cb := newFailsafe(1)
		exec := newFailsafeExecutor(cb)
		_, _ = exec.Get(plainFail)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := exec.Get(plainOK); err == nil {
				b.Fatal("ran while open")
			}
		}
		_, err := exec.Get(plainOK)
		stillOpen(b, err, failsafecb.ErrOpen, cb.IsOpen())
	})
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(1)
		_, _ = cb.Do(ctx, mcFail)
		start(b)
		for i := 0; i < b.N; i++ {
			if _, err := cb.Do(ctx, mcOK); err == nil {
				b.Fatal("ran while open")
			}
		}
		_, err := cb.Do(ctx, mcOK)
		stillOpen(b, err, mercari.ErrOpen, cb.State() == mercari.StateOpen)
	})
	b.Run("impl=eapache", func(b *testing.B) {
		cb := newEapache(1)
		_ = cb.Run(eaFail)
		start(b)
		for i := 0; i < b.N; i++ {
			if err := cb.Run(eaOK); err == nil {
				b.Fatal("ran while open")
			}
		}
		stillOpen(b, cb.Run(eaOK), eapache.ErrBreakerOpen, cb.GetState() == eapache.Open)
	})
}

func stillOpen(b *testing.B, err, want error, open bool) {
	b.Helper()
	b.StopTimer()
	if !errors.Is(err, want) || !open {
		b.Fatalf("after %d refusals: err %v, open %v; want %v and still open", b.N, err, open, want)
	}
}

// BenchmarkMixed: every 10th call fails; the breaker stays closed.
func BenchmarkMixed(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreaker(tripAfter)
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
		br := newActor(b, tripAfter)
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
		cb := newFailsafe(tripAfter)
		exec := newFailsafeExecutor(cb)
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
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(tripAfter)
		start(b)
		for i := 0; i < b.N; i++ {
			fn := mcOK
			if failing(i) {
				fn = mcFail
			}
			if _, err := cb.Do(ctx, fn); !expected(i, err) {
				b.Fatal(err)
			}
		}
		stayedClosed(b, cb.State() == mercari.StateClosed)
	})
	b.Run("impl=eapache", func(b *testing.B) {
		cb := newEapache(eapacheNeverTrips)
		start(b)
		for i := 0; i < b.N; i++ {
			fn := eaOK
			if failing(i) {
				fn = eaFail
			}
			if err := cb.Run(fn); !expected(i, err) {
				b.Fatal(err)
			}
		}
		stayedClosed(b, cb.GetState() == eapache.Closed)
	})
}

// BenchmarkMixedParallel: Mixed from 8×GOMAXPROCS goroutines, each failing
// every 10th of its own calls.
func BenchmarkMixedParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cb := newGobreaker(tripAfter)
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
		br := newActor(b, tripAfter)
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
		cb := newFailsafe(tripAfter)
		exec := newFailsafeExecutor(cb)
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
	b.Run("impl=mercari", func(b *testing.B) {
		cb := newMercari(tripAfter)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				fn := mcOK
				if failing(i) {
					fn = mcFail
				}
				if _, err := cb.Do(ctx, fn); !expected(i, err) {
					b.Error(err)
					return
				}
			}
		})
		stayedClosed(b, cb.State() == mercari.StateClosed)
	})
	b.Run("impl=eapache", func(b *testing.B) {
		cb := newEapache(eapacheNeverTrips)
		startParallel(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				fn := eaOK
				if failing(i) {
					fn = eaFail
				}
				if err := cb.Run(fn); !expected(i, err) {
					b.Error(err)
					return
				}
			}
		})
		stayedClosed(b, cb.GetState() == eapache.Closed)
	})
}

// expected says whether err is what call i of a goroutine should get in the
// mixed scenarios: errWork from every 10th, nil from the others.
func expected(i int, err error) bool {
	if failing(i) {
		return err == errWork
	}
	return err == nil
}

func stayedClosed(b *testing.B, closed bool) {
	b.Helper()
	b.StopTimer()
	if !closed {
		b.Fatal("the breaker opened: raise tripAfter")
	}
}

// actorCountsAddUp checks the actor's exact Counts after a mixed run of
// calls calls: each was granted and reported once, a tenth (per goroutine)
// as Failure.
func actorCountsAddUp(b *testing.B, br *actor.Breaker, calls int) {
	b.Helper()
	c := br.Counts()
	if c.Requests != uint64(calls) || c.Successes+c.Failures != c.Requests || c.Rejected != 0 || c.Ignored != 0 {
		b.Fatalf("actor Counts %+v after %d calls", c, calls)
	}
}
