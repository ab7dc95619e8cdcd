package grpcbreaker

import (
	"context"
	"errors"
	"testing"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// A classifier that answers something other than Success, Failure or
// Ignored (the zero Outcome, say) counts the call as a Failure: the permit
// is never left outstanding (ReportOutcome refuses an out-of-range outcome,
// so the probe of a half-open breaker would be held until its timeout).
func TestClassifierOutOfRangeIsAFailure(t *testing.T) {
	zero := WithClassifier(func(error) actor.Outcome { return 0 })
	c := newClient(t, clock.NewMock(), zero)
	s := newServer(t, clock.NewMock(), zero)
	_, lis := serve(t, grpc.ChainUnaryInterceptor(s.UnaryInterceptor()))
	cc := dial(t, lis, c)
	_ = call(context.Background(), cc, methodUnary, code(codes.NotFound))
	for what, b := range map[string]*actor.Breaker{"client": breaker(t, c.Group(), target), "server": breaker(t, s.Group(), methodUnary)} {
		if counts := b.Counts(); counts.Failures != 1 {
			t.Errorf("%s counts %+v, want one Failure", what, counts)
		}
	}
}

// Bad input never panics: the methods of a nil Client or Server.
func TestNilClientAndServer(t *testing.T) {
	var c *Client
	var s *Server
	c.Stop()
	s.Stop()
	if c.Group() != nil || s.Group() != nil {
		t.Error("a nil Client or Server has a group")
	}
	cc := dialTarget(t, "passthrough:///nowhere", nil, nil)
	err := c.UnaryInterceptor()(context.Background(), methodUnary, nil, nil, cc, nil)
	if !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("a nil Client's interceptor: %v, want actor.ErrInvalid", err)
	}
	info := &grpc.UnaryServerInfo{FullMethod: methodUnary}
	if _, err := s.UnaryInterceptor()(context.Background(), nil, info, nil); err == nil {
		t.Error("a nil Server's interceptor: nil error")
	}
}

// Invalid options wrap actor.ErrInvalid, as every package of the library does.
func TestBadOptionsWrapErrInvalid(t *testing.T) {
	if _, err := NewClient(WithClassifier(nil)); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("%v does not wrap actor.ErrInvalid", err)
	}
	if _, err := NewServer(nil); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("%v does not wrap actor.ErrInvalid", err)
	}
}
