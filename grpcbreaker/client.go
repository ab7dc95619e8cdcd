package grpcbreaker

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Client holds one breaker per target, the string a ClientConn was made with
// (grpc.ClientConn.Target), shared by the unary and the stream interceptor:
// every connection to one target shares its breaker. Make it with
// [NewClient]; its methods are safe for concurrent use.
//
// A refused call does not reach the network and returns an error for which
// errors.Is(err, actor.ErrOpen) holds, errors.As finds the
// *actor.OpenError, and status.Code(err) is codes.Unavailable. When the
// group is full (actor.WithMaxBreakers and no breaker can be dropped), calls
// to a new target go through unprotected, logged once at Warn (see
// [WithLogger]). After
// [Client.Stop], calls are refused with an error wrapping actor.ErrStopped,
// also with codes.Unavailable.
type Client struct {
	opts       *options
	group      *actor.Group[string]
	warnedFull atomic.Bool // the full group was logged
}

// NewClient returns a Client configured by opts. A nil option, an invalid
// one, or an invalid option given to [WithGroupOptions] is an error.
func NewClient(opts ...Option) (*Client, error) {
	o, err := newOptions("NewClient", opts)
	if err != nil {
		return nil, err
	}
	g, err := o.newGroup("NewClient")
	if err != nil {
		return nil, err
	}
	return &Client{opts: o, group: g}, nil
}

// Group returns the client's breakers, keyed by target; nil for a nil Client.
func (c *Client) Group() *actor.Group[string] {
	if c == nil {
		return nil
	}
	return c.group
}

// Stop stops every breaker of the client. It is idempotent. Calls after Stop
// are refused. On a nil Client it does nothing.
func (c *Client) Stop() {
	if c != nil {
		c.group.Stop()
	}
}

// UnaryInterceptor returns the interceptor for grpc.WithChainUnaryInterceptor.
// It counts each call's outcome, as [Classify] or [WithClassifier] says.
func (c *Client) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		p, err := c.permit(ctx, cc.Target())
		if err != nil {
			return err
		}
		if p == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		reported := false
		defer func() {
			if !reported {
				// The invoker or the classifier panicked: count it, and
				// let the panic go on.
				p.ReportOutcome(actor.Failure)
			}
		}()
		err = invoker(ctx, method, req, reply, cc, opts...)
		o := c.opts.outcome(ctx, err)
		reported = true
		p.ReportOutcome(o)
		return err
	}
}

// StreamInterceptor returns the interceptor for
// grpc.WithChainStreamInterceptor. It counts the stream's establishment: the
// error of NewStream (for example Unavailable when no connection can be
// made). What happens on the stream later is not counted: a server's status
// arrives at the end of a stream, which may last for hours.
func (c *Client) StreamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		p, err := c.permit(ctx, cc.Target())
		if err != nil {
			return nil, err
		}
		if p == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		reported := false
		defer func() {
			if !reported {
				p.ReportOutcome(actor.Failure)
			}
		}()
		cs, err := streamer(ctx, desc, cc, method, opts...)
		o := c.opts.outcome(ctx, err)
		reported = true
		p.ReportOutcome(o)
		return cs, err
	}
}

// permit asks target's breaker for a permit. It returns a nil permit and no
// error when the call goes through unprotected (the group is full).
func (c *Client) permit(ctx context.Context, target string) (*actor.Permit, error) {
	if c == nil || c.opts == nil {
		return nil, errNotMade
	}
	b, err := c.group.Get(target)
	if err != nil {
		if errors.Is(err, actor.ErrGroupFull) {
			if !c.warnedFull.Swap(true) {
				c.opts.log().Warn("grpcbreaker: the client's group of breakers is full; calls to new targets go through unprotected",
					"target", target, "breakers", c.group.Len())
			}
			return nil, nil
		}
		return nil, &refusal{err: err}
	}
	p, err := b.Permit(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			// What the call itself would have returned.
			return nil, status.FromContextError(err).Err()
		}
		return nil, &refusal{err: err}
	}
	return p, nil
}
