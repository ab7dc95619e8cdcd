package grpcbreaker

import (
	"context"
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
