package grpcbreaker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

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
	e, first, second := openFirstOfTwo(t, c)
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

// openFirstOfTwo dials two targets of one server through c and opens the
// first one's breaker.
func openFirstOfTwo(t *testing.T, c *Client) (e *echo, first, second *grpc.ClientConn) {
	t.Helper()
	e, lis := serve(t)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	first = dialTarget(t, "passthrough:///first", dialer, c)
	second = dialTarget(t, "passthrough:///second", dialer, c)
	for i := 0; i < actor.DefaultAllowedFails; i++ {
		_ = call(context.Background(), first, methodUnary, code(codes.Unavailable))
	}
	return e, first, second
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

// recordsTo is a slog.Handler that sends every record to a channel.
type recordsTo chan slog.Record

func (h recordsTo) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordsTo) Handle(_ context.Context, r slog.Record) error { h <- r; return nil }
func (h recordsTo) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h recordsTo) WithGroup(string) slog.Handler                 { return h }

// nextRecord returns the next record sent to h, or fails the test.
func nextRecord(t *testing.T, h recordsTo) slog.Record {
	t.Helper()
	select {
	case r := <-h:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no log record within 10s")
	}
	return slog.Record{}
}

// WithLogger takes this package's Warn and, unless WithGroupOptions has an
// actor.WithLogger, the breakers' records; slog's default logger gets
// nothing.
func TestWithLogger(t *testing.T) {
	defaults := logToBuffer(t)
	own := make(recordsTo, 16)
	c, err := NewClient(WithLogger(slog.New(own)), WithGroupOptions(actor.WithClock(clock.NewMock()), actor.WithMaxBreakers(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	_, _, second := openFirstOfTwo(t, c)
	if r := nextRecord(t, own); r.Level != slog.LevelWarn || !strings.Contains(r.Message, "opened") {
		t.Fatalf("first record %v %q, want the breaker's Warn on opening", r.Level, r.Message)
	}
	if err := call(context.Background(), second, methodUnary, "ok"); err != nil {
		t.Fatal(err)
	}
	if r := nextRecord(t, own); r.Level != slog.LevelWarn || !strings.Contains(r.Message, "unprotected") {
		t.Fatalf("second record %v %q, want the package's Warn for the full group", r.Level, r.Message)
	}
	if defaults.Len() != 0 {
		t.Errorf("slog's default logger got records:\n%s", defaults)
	}

	// An actor.WithLogger in WithGroupOptions keeps the breakers' records.
	breakers := make(recordsTo, 16)
	s, err := NewServer(WithLogger(slog.New(own)), WithGroupOptions(actor.WithClock(clock.NewMock()), actor.WithAllowedFails(1), actor.WithLogger(slog.New(breakers))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	_, slis := serve(t, grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	_ = call(context.Background(), dial(t, slis, nil), methodUnary, "plain")
	if r := nextRecord(t, breakers); r.Level != slog.LevelWarn || !strings.Contains(r.Message, "opened") {
		t.Fatalf("server breaker's record %v %q, want its Warn on opening", r.Level, r.Message)
	}
	select {
	case r := <-own:
		t.Errorf("WithLogger's logger got the breaker's record %q although WithGroupOptions gave one", r.Message)
	default:
	}

	for _, l := range []*slog.Logger{nil, {}} {
		if _, err := NewClient(WithLogger(l)); !errors.Is(err, actor.ErrInvalid) || !strings.Contains(err.Error(), "WithLogger") {
			t.Errorf("NewClient(WithLogger(%v)): %v, want an error naming WithLogger and wrapping actor.ErrInvalid", l, err)
		}
	}
}
