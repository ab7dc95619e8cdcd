package grpcbreaker

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusal is the error of a call the client's breaker refused: err is the
// breaker's *actor.OpenError (or actor.ErrStopped). It unwraps to err, so
// errors.Is(e, actor.ErrOpen) and errors.As to *actor.OpenError work, and it
// carries the status codes.Unavailable, so status.Code and gRPC's own retry
// and logging habits work as well.
type refusal struct {
	err error
}

func (e *refusal) Error() string { return "grpcbreaker: " + e.err.Error() }

func (e *refusal) Unwrap() error { return e.err }

// GRPCStatus is what status.Code, status.FromError and status.Convert read.
func (e *refusal) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}
