package grpcbreaker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// PushbackTrailer is the trailer a refusing [Server] sets to the
// milliseconds its breaker expects to stay open (the message's whole
// seconds, times 1000): gRPC's retry pushback
// (proposal A6). A client whose service config has a retry policy for
// UNAVAILABLE waits that long before it retries.
const PushbackTrailer = "grpc-retry-pushback-ms"

// Server holds one breaker per full method name ("/package.Service/Method"),
// so that a method whose handler keeps failing sheds its load while the others
// go on. Make it with [NewServer]; its methods are safe for concurrent use.
//
// While a method's breaker refuses, the interceptor answers
// codes.Unavailable without running the handler, with a message that says
// "retry after N seconds" (whole seconds, rounded up, at least 1) and the
// [PushbackTrailer] trailer. A handler's error counts as [Classify] or
// [WithClassifier] says, a client that went away (the call's context
// canceled) is Ignored, and a handler's panic is a Failure and goes on. When
// the group is full, calls to a new method go through unprotected, logged
// once at Warn (see [WithLogger]). After [Server.Stop], every call is
// answered codes.Unavailable.
type Server struct {
	opts       *options
	group      *actor.Group[string]
	warnedFull atomic.Bool // the full group was logged
}

// NewServer returns a Server configured by opts. A nil option, an invalid
// one, or an invalid option given to [WithGroupOptions] is an error.
func NewServer(opts ...Option) (*Server, error) {
	o, err := newOptions("NewServer", opts)
	if err != nil {
		return nil, err
	}
	g, err := o.newGroup("NewServer")
	if err != nil {
		return nil, err
	}
	return &Server{opts: o, group: g}, nil
}

// Group returns the server's breakers, keyed by full method name; nil for a
// nil Server.
func (s *Server) Group() *actor.Group[string] {
	if s == nil {
		return nil
	}
	return s.group
}

// Stop stops every breaker of the server. It is idempotent. Calls after Stop
// are answered codes.Unavailable. On a nil Server it does nothing.
func (s *Server) Stop() {
	if s != nil {
		s.group.Stop()
	}
}

// UnaryInterceptor returns the interceptor for grpc.ChainUnaryInterceptor.
func (s *Server) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		p, err := s.permit(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return handler(ctx, req)
		}
		reported := false
		defer func() {
			if !reported {
				// The handler (or the classifier) panicked: count it, and
				// let the panic go on to whoever recovers it.
				p.ReportOutcome(actor.Failure)
			}
		}()
		resp, err := handler(ctx, req)
		o := s.opts.outcome(ctx, err)
		reported = true
		p.ReportOutcome(o)
		return resp, err
	}
}

// permit asks method's breaker for a permit. It returns a nil permit and no
// error when the call goes through unprotected (the group is full), and the
// status to answer when the breaker refuses.
func (s *Server) permit(ctx context.Context, method string) (*actor.Permit, error) {
	if s == nil || s.opts == nil {
		return nil, status.Error(codes.Internal, errNotMade.Error())
	}
	b, err := s.group.Get(method)
	if err != nil {
		if errors.Is(err, actor.ErrGroupFull) {
			if !s.warnedFull.Swap(true) {
				s.opts.log().Warn("grpcbreaker: the server's group of breakers is full; calls to new methods go through unprotected",
					"method", method, "breakers", s.group.Len())
			}
			return nil, nil
		}
		return nil, status.Errorf(codes.Unavailable, "grpcbreaker: %s: %v", method, err)
	}
	p, err := b.Permit(ctx)
	if err == nil {
		return p, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return nil, status.FromContextError(err).Err()
	}
	var oe *actor.OpenError
	if !errors.As(err, &oe) {
		return nil, status.Errorf(codes.Unavailable, "grpcbreaker: %s: %v", method, err)
	}
	secs := retrySeconds(oe.RetryAfter())
	// The trailer fails only outside a gRPC server (a test calling the
	// interceptor directly); the refusal stands either way.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(PushbackTrailer, strconv.FormatInt(secs*1000, 10)))
	return nil, status.Error(codes.Unavailable, refusalMessage(method, oe.State, secs))
}

// retrySeconds is how long a refused caller should wait, in whole seconds
// rounded up, at least 1: a forced-open breaker (no timer) says 1, and so
// does a retry timer about to fire, so that callers do not hammer it.
func retrySeconds(wait time.Duration) int64 {
	secs := int64(wait / time.Second)
	if wait%time.Second != 0 {
		secs++
	}
	return max(secs, 1)
}

// refusalMessage says why a method is refused and when to come back.
func refusalMessage(method string, state actor.State, secs int64) string {
	unit := "seconds"
	if secs == 1 {
		unit = "second"
	}
	return fmt.Sprintf("grpcbreaker: %s is refused while its circuit breaker is %v; retry after %d %s", method, state, secs, unit)
}
