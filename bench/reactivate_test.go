package bench

import (
	"context"
	"testing"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/sony/gobreaker/v2"
)

// BenchmarkReactivation: a failure, then a success, on one of 1,024
// breakers in turn, each asleep when it is called (issue 9: the first
// failure on a hibernating breaker). For the actor both calls need the loop
// (the failure changes the state; the success ends a run of failures), so
// each op is two activations of a sleeping breaker, run inline on the
// caller's goroutine; the breakers stay closed. gobreaker takes its mutex
// twice.
func BenchmarkReactivation(b *testing.B) {
	const breakers = 1024
	ctx := context.Background()
	b.Run("impl=gobreaker", func(b *testing.B) {
		cbs := make([]*gobreaker.CircuitBreaker[int], breakers)
		for i := range cbs {
			cbs[i] = newGobreaker(tripAfter)
		}
		start(b)
		for i := 0; i < b.N; i++ {
			cb := cbs[i%breakers]
			if _, err := cb.Execute(plainFail); err != errWork {
				b.Fatal(err)
			}
			if _, err := cb.Execute(plainOK); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		brs := make([]*actor.Breaker, breakers)
		for i := range brs {
			brs[i] = newActor(b, tripAfter)
		}
		start(b)
		for i := 0; i < b.N; i++ {
			br := brs[i%breakers]
			if _, err := actor.Call(ctx, br, actorFail); err != errWork {
				b.Fatal(err)
			}
			if _, err := actor.Call(ctx, br, actorOK); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, br := range brs {
			if c := br.Counts(); br.State() != actor.StateClosed || c.ConsecutiveFailures != 0 {
				b.Fatalf("state %v, counts %+v", br.State(), c)
			}
		}
	})
}
