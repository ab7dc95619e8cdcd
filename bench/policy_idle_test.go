//go:build unix

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// BenchmarkIdleFailureRate is BenchmarkIdle for actor breakers with and
// without WithFailureRate(…, 10s): the difference in bytes/breaker is what
// the window costs an idle breaker. "fresh" breakers have had no call (the
// window holds no buckets yet); "used" ones have had a success and a failure,
// then a quiet step (the buckets stay until they age out). Run one at a time
// (-count 1), as BenchmarkIdle says. Skipped with -short.
func BenchmarkIdleFailureRate(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 100,000 breakers and idles for 2s; skipped with -short")
	}
	n := envInt(b, "BENCH_IDLE_BREAKERS", 100_000)
	window := envDuration(b, "BENCH_IDLE_WINDOW", 2*time.Second)
	ctx := context.Background()
	use := func(breakers []*actor.Breaker) {
		for _, br := range breakers {
			actor.Call(ctx, br, actorOK)
			actor.Call(ctx, br, actorFail)
		}
		time.Sleep(rateWindow/10 + 100*time.Millisecond) // past the bucket's end: the loop withdraws it
	}
	for _, c := range []struct {
		name    string
		rate    bool
		prepare func([]*actor.Breaker)
	}{
		{"plain/fresh", false, nil},
		{"rate/fresh", true, nil},
		{"plain/used", false, use},
		{"rate/used", true, use},
	} {
		b.Run("impl=actor/"+c.name, func(b *testing.B) {
			idle(b, n, window, func() *actor.Breaker {
				opts := []actor.Option{actor.WithAllowedFails(tripAfter), actor.WithRetryTimer(openFor), actor.WithLogger(quiet)}
				if c.rate {
					opts = append(opts, actor.WithFailureRate(rateThreshold, rateMinCalls, rateWindow))
				}
				br, err := actor.New(opts...)
				if err != nil {
					b.Fatal(err)
				}
				return br
			}, (*actor.Breaker).Stop, c.prepare)
		})
	}
}
