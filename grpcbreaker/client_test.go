package grpcbreaker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const target = "passthrough:///echo"

func code(c codes.Code) string { return "code=" + strconv.Itoa(int(c)) }

// The client's breaker trips on Unavailable, then refuses without reaching
// the server, with an error that Go and gRPC habits both understand; after
// the retry timer a probe that succeeds closes it.
func TestClientTripsOnUnavailableAndRefuses(t *testing.T) {
	ctx := context.Background()
	mock := clock.NewMock()
	c := newClient(t, mock)
	e, lis := serve(t)
	cc := dial(t, lis, c)
	events, cancel := c.Group().Subscribe()
	defer cancel()

	for i := 0; i < actor.DefaultAllowedFails; i++ {
		if err := call(ctx, cc, methodUnary, code(codes.Unavailable)); status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	waitEvent(t, events, target, actor.StateOpen)

	err := call(ctx, cc, methodUnary, "ok")
	if !errors.Is(err, actor.ErrOpen) {
		t.Fatalf("refusal %v: not ErrOpen", err)
	}
	var oe *actor.OpenError
	if !errors.As(err, &oe) || oe.Breaker != target || oe.State != actor.StateOpen {
		t.Fatalf("refusal %v: OpenError %+v", err, oe)
	}
	if got := oe.RetryAfter(); got != actor.DefaultRetryTimer {
		t.Errorf("RetryAfter() = %v, want %v", got, actor.DefaultRetryTimer)
	}
	if st := status.Convert(err); st.Code() != codes.Unavailable {
		t.Errorf("status %v, want Unavailable", st)
	}
	// Streams to the same target share the breaker.
	if est, _ := openStream(ctx, cc, "ok"); !errors.Is(est, actor.ErrOpen) || status.Code(est) != codes.Unavailable {
		t.Errorf("stream while open: %v", est)
	}
	if n := e.hits[methodUnary].Load(); n != actor.DefaultAllowedFails {
		t.Errorf("the server saw %d calls, want %d: refusals must not reach it", n, actor.DefaultAllowedFails)
	}
	if n := e.hits[methodStream].Load(); n != 0 {
		t.Errorf("the server saw %d streams, want 0", n)
	}

	mock.Add(actor.DefaultRetryTimer)
	waitEvent(t, events, target, actor.StateHalfOpen)
	if err := call(ctx, cc, methodUnary, "ok"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	waitEvent(t, events, target, actor.StateClosed)
}

// Default classification, code by code, through a real server: with
// AllowedFails(1), a Failure opens the breaker at once.
func TestClientDefaultClassification(t *testing.T) {
	failure := map[codes.Code]bool{
		codes.Unavailable: true, codes.Internal: true, codes.Unknown: true, codes.DataLoss: true,
		codes.ResourceExhausted: true, codes.DeadlineExceeded: true,
	}
	_, lis := serve(t)
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		client := newClient(t, clock.NewMock(), WithGroupOptions(actor.WithAllowedFails(1), actor.WithLogger(quiet)))
		cc := dial(t, lis, client)
		req := code(c)
		if c == codes.OK {
			req = "ok"
		}
		err := call(context.Background(), cc, methodUnary, req)
		if status.Code(err) != c {
			t.Fatalf("%v: the call returned %v", c, err)
		}
		counts := breaker(t, client.Group(), target).Counts()
		var want actor.Outcome
		switch {
		case failure[c]:
			want = actor.Failure
		case c == codes.Canceled:
			want = actor.Ignored
		default:
			want = actor.Success
		}
		got := map[actor.Outcome]uint64{actor.Success: counts.Successes, actor.Failure: counts.Failures, actor.Ignored: counts.Ignored}
		if got[want] != 1 || counts.Successes+counts.Failures+counts.Ignored != 1 {
			t.Errorf("%v counted as %+v, want one %v", c, counts, want)
		}
		if tripped := client.Group().Len() == 1 && breaker(t, client.Group(), target).State() == actor.StateOpen; tripped != failure[c] {
			t.Errorf("%v: tripped %v, want %v", c, tripped, failure[c])
		}
	}
	// A handler's plain Go error reaches the client as Unknown: a Failure.
	client := newClient(t, clock.NewMock(), WithGroupOptions(actor.WithAllowedFails(1), actor.WithLogger(quiet)))
	if err := call(context.Background(), dial(t, lis, client), methodUnary, "plain"); status.Code(err) != codes.Unknown {
		t.Fatalf("plain error: %v", err)
	}
	if st := breaker(t, client.Group(), target).State(); st != actor.StateOpen {
		t.Errorf("plain error: state %v, want open", st)
	}
}

// InvalidArgument and NotFound, however many, never trip the breaker.
func TestClientCallerErrorsNeverTrip(t *testing.T) {
	c := newClient(t, clock.NewMock())
	e, lis := serve(t)
	cc := dial(t, lis, c)
	for i := 0; i < 10; i++ {
		for _, cd := range []codes.Code{codes.InvalidArgument, codes.NotFound} {
			if err := call(context.Background(), cc, methodUnary, code(cd)); status.Code(err) != cd {
				t.Fatalf("%v: %v", cd, err)
			}
		}
	}
	if st := breaker(t, c.Group(), target).State(); st != actor.StateClosed {
		t.Errorf("state %v after 20 caller errors, want closed", st)
	}
	if n := e.hits[methodUnary].Load(); n != 20 {
		t.Errorf("the server saw %d calls, want 20", n)
	}
}

// A caller that gives up is not the server's fault: the call is Ignored,
// even when a classifier would call every error a Failure.
func TestClientCallerCancelIsIgnored(t *testing.T) {
	everythingFails := WithClassifier(func(error) actor.Outcome { return actor.Failure })
	c := newClient(t, clock.NewMock(), everythingFails, WithGroupOptions(actor.WithAllowedFails(1), actor.WithLogger(quiet)))
	e, lis := serve(t)
	cc := dial(t, lis, c)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1) // buffered: the call never waits for the test
	go func() { errc <- call(ctx, cc, methodUnary, "block") }()
	select {
	case <-e.blocked:
	case <-time.After(guard):
		t.Fatal("the call did not reach the server")
	}
	cancel()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("canceled call: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("the canceled call did not return")
	}
	b := breaker(t, c.Group(), target)
	if counts := b.Counts(); counts.Ignored != 1 || counts.Failures != 0 {
		t.Errorf("counts %+v, want one Ignored", counts)
	}
	if b.State() != actor.StateClosed {
		t.Errorf("state %v, want closed", b.State())
	}
	// Without a cancellation, the classifier decides.
	if err := call(context.Background(), cc, methodUnary, code(codes.NotFound)); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	if b.State() != actor.StateOpen {
		t.Errorf("state %v after a NotFound the classifier calls a Failure, want open", b.State())
	}
}

// A context already done is answered as gRPC would, and asks nothing of the
// breaker.
func TestClientDoneContext(t *testing.T) {
	c := newClient(t, clock.NewMock())
	_, lis := serve(t)
	cc := dial(t, lis, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := call(ctx, cc, methodUnary, "ok"); status.Code(err) != codes.Canceled {
		t.Errorf("canceled: %v", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	if err := call(ctx, cc, methodUnary, "ok"); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("expired: %v", err)
	}
	if counts := breaker(t, c.Group(), target).Counts(); counts.Requests != 0 {
		t.Errorf("counts %+v: a done context took a permit", counts)
	}
}

// A stream's establishment counts: a target that cannot be reached trips the
// breaker through NewStream's Unavailable, and then unary calls are refused
// too.
func TestClientStreamEstablishmentCounts(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, clock.NewMock())
	unreachable := func(context.Context, string) (net.Conn, error) { return nil, errors.New("no route to host") }
	cc := dialWith(t, unreachable, c)
	events, cancel := c.Group().Subscribe()
	defer cancel()
	for i := 0; i < actor.DefaultAllowedFails; i++ {
		if est, _ := openStream(ctx, cc, "ok"); status.Code(est) != codes.Unavailable || errors.Is(est, actor.ErrOpen) {
			t.Fatalf("stream %d: %v, want the connection's Unavailable", i, est)
		}
	}
	waitEvent(t, events, target, actor.StateOpen)
	if est, _ := openStream(ctx, cc, "ok"); !errors.Is(est, actor.ErrOpen) {
		t.Errorf("stream while open: %v", est)
	}
	if err := call(ctx, cc, methodUnary, "ok"); !errors.Is(err, actor.ErrOpen) {
		t.Errorf("unary call while open: %v", err)
	}

	// An established stream is a Success, whatever it carries later.
	c2 := newClient(t, clock.NewMock())
	e, lis := serve(t)
	cc2 := dial(t, lis, c2)
	if est, ans := openStream(ctx, cc2, code(codes.Internal)); est != nil || status.Code(ans) != codes.Internal {
		t.Fatalf("stream: established %v, answered %v", est, ans)
	}
	if counts := breaker(t, c2.Group(), target).Counts(); counts.Successes != 1 || counts.Failures != 0 {
		t.Errorf("counts %+v, want the establishment's one Success", counts)
	}
	if n := e.hits[methodStream].Load(); n != 1 {
		t.Errorf("the server saw %d streams, want 1", n)
	}
}

func TestClientWithClassifier(t *testing.T) {
	notFoundFails := WithClassifier(func(err error) actor.Outcome {
		if status.Code(err) == codes.NotFound {
			return actor.Failure
		}
		return Classify(err)
	})
	c := newClient(t, clock.NewMock(), notFoundFails)
	_, lis := serve(t)
	cc := dial(t, lis, c)
	for i := 0; i < actor.DefaultAllowedFails; i++ {
		_ = call(context.Background(), cc, methodUnary, code(codes.NotFound))
	}
	if err := call(context.Background(), cc, methodUnary, "ok"); !errors.Is(err, actor.ErrOpen) {
		t.Errorf("after three NotFound a classifier calls failures: %v, want a refusal", err)
	}
}

// A classifier's panic counts as a Failure and goes on.
func TestClientClassifierPanic(t *testing.T) {
	c := newClient(t, clock.NewMock(), WithClassifier(func(error) actor.Outcome { panic("classifier") }))
	_, lis := serve(t)
	cc := dial(t, lis, c)
	func() {
		defer func() {
			if r := recover(); r != "classifier" {
				t.Errorf("recovered %v, want the classifier's panic", r)
			}
		}()
		_ = call(context.Background(), cc, methodUnary, code(codes.Internal))
	}()
	if counts := breaker(t, c.Group(), target).Counts(); counts.Failures != 1 {
		t.Errorf("counts %+v, want one Failure", counts)
	}
}

// After Stop, calls are refused with ErrStopped and Unavailable, and never
// reach the server.
func TestClientStop(t *testing.T) {
	c := newClient(t, clock.NewMock())
	e, lis := serve(t)
	cc := dial(t, lis, c)
	if err := call(context.Background(), cc, methodUnary, "ok"); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	c.Stop()
	err := call(context.Background(), cc, methodUnary, "ok")
	if !errors.Is(err, actor.ErrStopped) || status.Code(err) != codes.Unavailable {
		t.Errorf("after Stop: %v", err)
	}
	if est, _ := openStream(context.Background(), cc, "ok"); !errors.Is(est, actor.ErrStopped) {
		t.Errorf("stream after Stop: %v", est)
	}
	if n := e.hits[methodUnary].Load(); n != 1 {
		t.Errorf("the server saw %d calls, want 1", n)
	}
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		what string
		opts []Option
	}{
		{"nil option", []Option{nil}},
		{"WithClassifier(nil)", []Option{WithClassifier(nil)}},
		{"nil group option", []Option{WithGroupOptions(nil)}},
		{"invalid group option", []Option{WithGroupOptions(actor.WithAllowedFails(0))}},
	} {
		if c, err := NewClient(tc.opts...); c != nil || err == nil {
			t.Errorf("NewClient(%s): %v, %v; want an error", tc.what, c, err)
		}
		if s, err := NewServer(tc.opts...); s != nil || err == nil {
			t.Errorf("NewServer(%s): %v, %v; want an error", tc.what, s, err)
		}
	}
	_, err := NewClient(WithClassifier(nil))
	if !errors.Is(err, errInvalid) {
		t.Errorf("%v does not wrap errInvalid", err)
	}
}

// WithGroupOptions given twice joins the lists: the clock of the first and
// the trip rule of the second both apply.
func TestWithGroupOptionsJoins(t *testing.T) {
	mock := clock.NewMock()
	c, err := NewClient(WithGroupOptions(actor.WithClock(mock), actor.WithLogger(quiet)), WithGroupOptions(actor.WithAllowedFails(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if c.Group().Clock() != mock {
		t.Errorf("the group's clock is not the first list's mock")
	}
	_, lis := serve(t)
	if err := call(context.Background(), dial(t, lis, c), methodUnary, code(codes.Unavailable)); status.Code(err) != codes.Unavailable {
		t.Fatalf("call: %v", err)
	}
	if st := breaker(t, c.Group(), target).State(); st != actor.StateOpen {
		t.Errorf("state %v after one failure, want open: the second list's WithAllowedFails(1) was lost", st)
	}
}
