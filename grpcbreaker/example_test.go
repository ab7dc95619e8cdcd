package grpcbreaker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/grpcbreaker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A client whose breaker opens after three Unavailable answers and then
// refuses calls without sending them.
func ExampleClient() {
	c, err := grpcbreaker.NewClient(grpcbreaker.WithGroupOptions(
		actor.WithAllowedFails(3),
		actor.WithLogger(slog.New(slog.DiscardHandler)),
	))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Stop()

	// A server whose one method is down.
	lis, stop := serveDown()
	defer stop()

	conn, err := grpc.NewClient("passthrough:///inventory",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithChainUnaryInterceptor(c.UnaryInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamInterceptor()),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	for i := 0; i < 4; i++ {
		err := conn.Invoke(context.Background(), "/example.Inventory/Count", wrapperspb.String("apples"), new(wrapperspb.Int64Value))
		fmt.Println(status.Code(err), errors.Is(err, actor.ErrOpen))
	}
	// Output:
	// Unavailable false
	// Unavailable false
	// Unavailable false
	// Unavailable true
}

// A server that sheds a failing method: while its breaker is open, callers
// get Unavailable at once, and the handler gets a rest.
func ExampleServer() {
	s, err := grpcbreaker.NewServer(grpcbreaker.WithGroupOptions(actor.WithLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	defer srv.Stop()
	// Register services on srv and serve as usual.
	fmt.Println(s.Group().Len())
	// Output: 0
}

// Classify, adjusted: PermissionDenied from this dependency means its
// credentials store is down, so count it as a failure too.
func ExampleWithClassifier() {
	c, err := grpcbreaker.NewClient(grpcbreaker.WithClassifier(func(err error) actor.Outcome {
		if status.Code(err) == codes.PermissionDenied {
			return actor.Failure
		}
		return grpcbreaker.Classify(err)
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Stop()
	fmt.Println(grpcbreaker.Classify(status.Error(codes.PermissionDenied, "no")), grpcbreaker.Classify(status.Error(codes.Unavailable, "down")))
	// Output: success failure
}

// serveDown serves /example.Inventory/Count, which always answers
// Unavailable, on an in-memory listener.
func serveDown() (*bufconn.Listener, func()) {
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "example.Inventory",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Count",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(new(wrapperspb.StringValue)); err != nil {
					return nil, err
				}
				return nil, status.Error(codes.Unavailable, "inventory database is down")
			},
		}},
	}, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	return lis, func() { srv.Stop(); <-done }
}
