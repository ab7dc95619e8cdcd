package otelbreaker

import (
	"context"
	"testing"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A closed Call costs the same with InstrumentBreaker attached: the
// instruments read Counts when collected, and nothing runs per call.
func BenchmarkClosedCall(b *testing.B) {
	ok := func(context.Context) (struct{}, error) { return struct{}{}, nil }
	run := func(b *testing.B, instrument bool) {
		br, err := actor.New(actor.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer br.Stop()
		if instrument {
			_, mp := newReader(b)
			stop, err := InstrumentBreaker(br, mp)
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := actor.Call(ctx, br, ok); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, false) })
	b.Run("instrumented", func(b *testing.B) { run(b, true) })
}
