package grpcbreaker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// One method that keeps failing is shed; another goes on.
func TestServerShedsTheFailingMethodOnly(t *testing.T) {
	ctx := context.Background()
	mock := clock.NewMock()
	s := newServer(t, mock)
	e, lis := serve(t, grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	cc := dial(t, lis, nil)
	events, cancel := s.Group().Subscribe()
	defer cancel()

	for i := 0; i < actor.DefaultAllowedFails; i++ {
		if err := call(ctx, cc, methodUnary, "plain"); status.Code(err) != codes.Unknown {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	waitEvent(t, events, methodUnary, actor.StateOpen)

	var trailer metadata.MD
	err := cc.Invoke(ctx, methodUnary, wrapString("ok"), wrapString(""), grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("refused call: %v, want Unavailable", err)
	}
	want := "grpcbreaker: " + methodUnary + " is refused while its circuit breaker is open; retry after 30 seconds"
	if st.Message() != want {
		t.Errorf("message %q, want %q", st.Message(), want)
	}
	if got := trailer.Get(PushbackTrailer); len(got) != 1 || got[0] != "30000" {
		t.Errorf("trailer %s = %q, want 30000", PushbackTrailer, got)
	}
	if n := e.hits[methodUnary].Load(); n != actor.DefaultAllowedFails {
		t.Errorf("the handler ran %d times, want %d: a refused call must not reach it", n, actor.DefaultAllowedFails)
	}
	// The other method is served.
	for i := 0; i < 5; i++ {
		if err := call(ctx, cc, methodOther, "ok"); err != nil {
			t.Fatalf("other method: %v", err)
		}
	}
	if n := e.hits[methodOther].Load(); n != 5 {
		t.Errorf("other method's handler ran %d times, want 5", n)
	}

	// Time passes: the refusal says what is left, rounded up.
	mock.Add(actor.DefaultRetryTimer - 1500*time.Millisecond)
	err = call(ctx, cc, methodUnary, "ok")
	if want := "retry after 2 seconds"; status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), want) {
		t.Errorf("refusal 1.5s before the retry: %v, want %q", err, want)
	}

	// Recovery: the probe reaches the handler.
	mock.Add(1500 * time.Millisecond)
	waitEvent(t, events, methodUnary, actor.StateHalfOpen)
	if err := call(ctx, cc, methodUnary, "ok"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	waitEvent(t, events, methodUnary, actor.StateClosed)
}

// The server counts a client that went away as Ignored, and caller errors as
// Success.
func TestServerClassification(t *testing.T) {
	s := newServer(t, clock.NewMock(), WithGroupOptions(actor.WithAllowedFails(1), actor.WithLogger(quiet)))
	// An outer interceptor tells when a call has left ours, reported.
	returned := make(chan struct{}, 4) // buffered: the server never waits for the test
	signal := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		defer func() { returned <- struct{}{} }()
		return next(ctx, req)
	}
	e, lis := serve(t, grpc.ChainUnaryInterceptor(signal, s.UnaryInterceptor()))
	cc := dial(t, lis, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1) // buffered: the call never waits for the test
	go func() { errc <- call(ctx, cc, methodUnary, "block") }()
	select {
	case <-e.blocked:
	case <-time.After(guard):
		t.Fatal("the call did not reach the handler")
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(guard):
		t.Fatal("the canceled call did not return")
	}
	for i := 0; i < 3; i++ {
		_ = call(context.Background(), cc, methodUnary, code(codes.NotFound))
	}
	for i := 0; i < 4; i++ { // the canceled call's report may come last
		select {
		case <-returned:
		case <-time.After(guard):
			t.Fatalf("%d of 4 calls returned from the interceptor", i)
		}
	}
	b := breaker(t, s.Group(), methodUnary)
	if counts := b.Counts(); counts.Ignored != 1 || counts.Successes != 3 || counts.Failures != 0 {
		t.Errorf("counts %+v, want one Ignored and three Successes", counts)
	}
	if b.State() != actor.StateClosed {
		t.Errorf("state %v, want closed", b.State())
	}
}

// A handler's panic is a Failure, and the panic goes on.
func TestServerHandlerPanic(t *testing.T) {
	s := newServer(t, clock.NewMock(), WithGroupOptions(actor.WithAllowedFails(1), actor.WithLogger(quiet)))
	info := &grpc.UnaryServerInfo{FullMethod: methodUnary}
	func() {
		defer func() {
			if r := recover(); r != "handler" {
				t.Errorf("recovered %v, want the handler's panic", r)
			}
		}()
		_, _ = s.UnaryInterceptor()(context.Background(), nil, info, func(context.Context, any) (any, error) { panic("handler") })
		t.Error("the panic did not go on")
	}()
	b := breaker(t, s.Group(), methodUnary)
	if counts := b.Counts(); counts.Failures != 1 || b.State() != actor.StateOpen {
		t.Errorf("counts %+v, state %v: want one Failure that opened it", counts, b.State())
	}
}

// A forced-open breaker has no timer: the refusal asks for at least a second.
func TestServerRefusalWhenForcedOpen(t *testing.T) {
	if got := retrySeconds(0); got != 1 {
		t.Errorf("retrySeconds(0) = %d, want 1", got)
	}
	if got := retrySeconds(time.Millisecond); got != 1 {
		t.Errorf("retrySeconds(1ms) = %d, want 1", got)
	}
	if got := retrySeconds(30*time.Second + 1); got != 31 {
		t.Errorf("retrySeconds(30s+1ns) = %d, want 31", got)
	}
	if got := retrySeconds(time.Duration(1<<63 - 1)); got != int64(time.Duration(1<<63-1)/time.Second)+1 {
		t.Errorf("retrySeconds(max) = %d", got)
	}
}

func TestServerStop(t *testing.T) {
	s := newServer(t, clock.NewMock())
	e, lis := serve(t, grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	cc := dial(t, lis, nil)
	s.Stop()
	s.Stop()
	if err := call(context.Background(), cc, methodUnary, "ok"); status.Code(err) != codes.Unavailable {
		t.Errorf("after Stop: %v, want Unavailable", err)
	}
	if n := e.hits[methodUnary].Load(); n != 0 {
		t.Errorf("the handler ran %d times after Stop", n)
	}
}
