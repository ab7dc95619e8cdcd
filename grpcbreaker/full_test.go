package grpcbreaker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// logToBuffer points slog's default logger at a buffer for the test.
func logToBuffer(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

// When the group is full of breakers it may not drop (an open one), calls to
// a new target go through unprotected, logged once at Warn.
func TestClientGroupFullPassesThrough(t *testing.T) {
	logs := logToBuffer(t)
	c := newClient(t, clock.NewMock(), WithGroupOptions(actor.WithMaxBreakers(1), actor.WithLogger(quiet)))
	e, lis := serve(t)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	first := dialTarget(t, "passthrough:///first", dialer, c)
	second := dialTarget(t, "passthrough:///second", dialer, c)
	for i := 0; i < actor.DefaultAllowedFails; i++ {
		_ = call(context.Background(), first, methodUnary, code(codes.Unavailable))
	}
	if err := call(context.Background(), first, methodUnary, "ok"); !errors.Is(err, actor.ErrOpen) {
		t.Fatalf("first target: %v, want a refusal", err)
	}
	for i := 0; i < 2; i++ {
		if err := call(context.Background(), second, methodUnary, "ok"); err != nil {
			t.Fatalf("second target, call %d: %v", i, err)
		}
	}
	if n := e.hits[methodUnary].Load(); n != actor.DefaultAllowedFails+2 {
		t.Errorf("the server saw %d calls, want %d", n, actor.DefaultAllowedFails+2)
	}
	if c.Group().Len() != 1 {
		t.Errorf("Len() = %d, want 1", c.Group().Len())
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "passthrough:///second") {
		t.Errorf("logs, want one Warn naming the target:\n%s", logs)
	}
}

func TestServerGroupFullPassesThrough(t *testing.T) {
	logs := logToBuffer(t)
	s := newServer(t, clock.NewMock(), WithGroupOptions(actor.WithMaxBreakers(1), actor.WithAllowedFails(1), actor.WithLogger(quiet)))
	e, lis := serve(t, grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	cc := dial(t, lis, nil)
	_ = call(context.Background(), cc, methodUnary, "plain") // opens Unary's breaker: it may not be dropped
	if err := call(context.Background(), cc, methodUnary, "ok"); status.Code(err) != codes.Unavailable {
		t.Fatalf("Unary: %v, want a refusal", err)
	}
	for i := 0; i < 2; i++ {
		if err := call(context.Background(), cc, methodOther, "ok"); err != nil {
			t.Fatalf("Other, call %d: %v", i, err)
		}
	}
	if n := e.hits[methodOther].Load(); n != 2 {
		t.Errorf("Other's handler ran %d times, want 2", n)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), methodOther) {
		t.Errorf("logs, want one Warn naming the method:\n%s", logs)
	}
}
