package redisbreaker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func ok(context.Context) (int, error) { return 1, nil }

// A joined breaker's closed Call costs what an unjoined one's does: the
// cluster only reads the breaker's events, off the call path.
func BenchmarkCall(b *testing.B) {
	b.Run("unjoined", func(b *testing.B) {
		br, _ := newBreaker(b, "dep")
		benchCall(b, br)
	})
	b.Run("joined", func(b *testing.B) {
		needRedis(b)
		c := newCluster(b, shared.addr, WithNamespace(namespace(b)))
		br, _ := newBreaker(b, "dep")
		leave, err := c.Join(br)
		if err != nil {
			b.Fatal(err)
		}
		defer leave()
		benchCall(b, br)
	})
}

func benchCall(b *testing.B, br *actor.Breaker) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := actor.Call(ctx, br, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCallLatencyRedisKilled reports the p99 latency of a joined
// breaker's Call (as p99-ns) with Redis healthy and with Redis killed by
// SIGKILL a tenth of the way into the run; the cluster retries in the
// background meanwhile. Compare the two with benchstat over -count=5.
func BenchmarkCallLatencyRedisKilled(b *testing.B) {
	for _, kill := range []bool{false, true} {
		name := "redis=healthy"
		if kill {
			name = "redis=killed"
		}
		b.Run(name, func(b *testing.B) {
			srv := ownRedis(b)
			c := newCluster(b, srv.addr, WithNamespace(namespace(b)), WithVoteTTL(3*time.Second),
				WithPollInterval(10*time.Millisecond))
			br, _ := newBreaker(b, "dep")
			leave, err := c.Join(br)
			if err != nil {
				b.Fatal(err)
			}
			defer leave()
			eventually(b, 5*time.Second, "healthy", c.Healthy)
			ctx := context.Background()
			lat := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if kill && i == b.N/10 {
					b.StopTimer()
					srv.kill()
					b.StartTimer()
				}
				start := time.Now()
				_, _ = actor.Call(ctx, br, ok)
				lat[i] = time.Since(start)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
		})
	}
}

// BenchmarkHintLatency measures how long after the quorum's second vote
// a third instance's breaker is tripped through the pub/sub hint (the poll
// is an hour away).
func BenchmarkHintLatency(b *testing.B) {
	needRedis(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := namespace(b)
		opts := []Option{WithNamespace(ns), WithVoteTTL(3 * time.Hour), WithPollInterval(time.Hour)}
		x := newInstance(b, shared.addr, "dep", opts...)
		y := newInstance(b, shared.addr, "dep", opts...)
		z := newInstance(b, shared.addr, "dep", opts...)
		eventually(b, 5*time.Second, "healthy", func() bool { return x.c.Healthy() && y.c.Healthy() && z.c.Healthy() })
		fail(b, x.b)
		next(b, x.events)
		eventually(b, 5*time.Second, "x's vote", func() bool { return x.c.Stats().Votes > 0 })
		b.StartTimer()
		start := time.Now()
		fail(b, y.b)
		if ev := next(b, z.events); ev.To != actor.StateOpen {
			b.Fatalf("event %+v", ev)
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/trip")
}
