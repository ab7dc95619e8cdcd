package grpcbreaker

import (
	"context"
	"errors"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Classify is the default classification of a call's error, by its status
// code:
//
//   - nil: Success.
//   - Unavailable, Internal, Unknown, DataLoss, ResourceExhausted,
//     DeadlineExceeded: Failure. Unknown is what a handler's plain Go error
//     becomes, and an error without a status (such as a client interceptor's
//     own) has the code Unknown too.
//   - Canceled: Ignored; so is a plain context.Canceled.
//   - Every other code (InvalidArgument, NotFound, PermissionDenied, ...):
//     Success. The dependency answered; the caller asked for something wrong.
//
// The interceptors apply one rule before Classify (or a [WithClassifier]
// function): an error while the caller's context is done with
// context.Canceled is Ignored, whatever it is.
func Classify(err error) actor.Outcome {
	if err == nil {
		return actor.Success
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Internal, codes.DataLoss, codes.ResourceExhausted, codes.DeadlineExceeded:
		return actor.Failure
	case codes.Unknown:
		if errors.Is(err, context.Canceled) {
			return actor.Ignored
		}
		return actor.Failure
	case codes.Canceled:
		return actor.Ignored
	}
	return actor.Success
}

// outcome classifies the error of a call made with ctx: a caller that gave up
// is not the dependency's fault. A classifier's answer other than Success,
// Failure or Ignored is a Failure: the permit must be reported either way
// (ReportOutcome refuses an out-of-range outcome and leaves it outstanding).
func (o *options) outcome(ctx context.Context, err error) actor.Outcome {
	if err == nil {
		return actor.Success
	}
	if ctx.Err() == context.Canceled {
		return actor.Ignored
	}
	switch out := o.classify(err); out {
	case actor.Success, actor.Failure, actor.Ignored:
		return out
	}
	return actor.Failure
}
