package grpcbreaker

import (
	"context"
	"testing"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The client interceptor's cost on a closed call: the same no-op invoker
// called bare and through UnaryInterceptor. The difference is the
// interceptor's overhead (the group lookup, a permit and its report).
func BenchmarkClientUnary(b *testing.B) {
	cc, err := grpc.NewClient("passthrough:///bench", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close() // NewClient connects lazily: nothing is dialled
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := invoker(ctx, methodUnary, nil, nil, cc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("intercepted", func(b *testing.B) {
		c, err := NewClient(WithGroupOptions(actor.WithLogger(quiet)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Stop()
		intercept := c.UnaryInterceptor()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := intercept(ctx, methodUnary, nil, nil, cc, invoker); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("intercepted-parallel", func(b *testing.B) {
		c, err := NewClient(WithGroupOptions(actor.WithLogger(quiet)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Stop()
		intercept := c.UnaryInterceptor()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := intercept(ctx, methodUnary, nil, nil, cc, invoker); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
