package actor

import (
	"context"
	"fmt"
	"time"
)

var (
	errNilBreaker  = fmt.Errorf("%w: the *Breaker is nil or not made by New", ErrInvalid)
	errNilFunc     = fmt.Errorf("%w: Call: nil fn", ErrInvalid)
	errNilValidate = fmt.Errorf("%w: Validate(nil): a function is required", ErrInvalid)
)

// A CallOption configures one [Call] or [Wrap]. Its zero value does nothing.
type CallOption[T any] struct {
	validate func(T) bool
	nilFunc  bool // Validate(nil): Call returns an error
}

// Validate makes a nil error from fn count as a Failure when ok(result) is
// false, like the seed's validation_func; the caller still gets fn's result
// and error unchanged. Given more than once, every ok must pass. Without it,
// results do not matter: a nil error is a Success. Validate(nil) makes Call
// return an error wrapping [ErrInvalid] without running fn.
func Validate[T any](ok func(T) bool) CallOption[T] {
	return CallOption[T]{validate: ok, nilFunc: ok == nil}
}

// Call runs fn under a permit of b and reports its outcome: a nil error is a
// Success unless a [Validate] says the result is not ok; other errors are
// classified as the breaker's options say, except that an error returned
// while ctx is done with context.Canceled is Ignored whatever it is (the
// caller gave up; see [Permit.Report]). It returns fn's result and error
// unchanged. When the breaker refuses, fn does not run and Call returns the
// zero T and the refusal: an [*OpenError] (errors.Is(err, ErrOpen)),
// [ErrStopped], or ctx.Err(). If fn panics, the call counts as a Failure and
// the panic goes on with its original value; so does a panic in a
// [Validate] function or in the breaker's classifier. A nil b (or one not made by
// New) or a nil fn returns an error
// wrapping [ErrInvalid] without taking a permit; a nil ctx is treated as
// context.Background().
func Call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error), opts ...CallOption[T]) (T, error) {
	// The closed state's path is written out here rather than through
	// acquire and settle: neither inlines, and two calls cost a third of a
	// closed call. Its request is counted when Call returns (semantic 13),
	// together with a clean success in one atomic (counters.calls, or its
	// P's cell of a spread breaker: see spread.go).
	var t ticket
	owed := false // the request is still to be counted
	if s := b.granting(); s != nil && fn != nil && len(opts) == 0 && ctx != nil && ctx.Err() == nil {
		t, owed = ticket{gen: s.gen}, true
	} else {
		var err error
		if t, err = callPermit(ctx, b, fn, opts); err != nil {
			var zero T
			return zero, err
		}
		if ctx == nil {
			ctx = context.Background()
		}
	}
	var started time.Time
	if b.slowCall > 0 { // policy: WithSlowCall times the call
		started = b.m.clock.Now()
	}
	settled := false
	defer func() {
		if !settled {
			// fn, a validator or the classifier panicked (or called
			// runtime.Goexit). Count it, and let the panic go on with its
			// own value and stack.
			if owed {
				b.counts.requests.Add(1)
			}
			if b.settle(t, Failure) {
				b.logClassified(ctx, classified{Failure, whyDidNotReturn}, nil)
			}
		}
	}()
	result, err := fn(ctx)
	if b.slowCall > 0 && b.slow(started) { // policy: a slow call is a Failure whatever fn returned
		settled = true
		if owed {
			b.counts.requests.Add(1)
		}
		if b.settleSlow(t, Failure, retryAfterOf(err)) { // the dependency's word still holds
			b.logClassified(ctx, classified{Failure, whySlow}, err)
		}
		return result, err
	}
	if err == nil && len(opts) == 0 {
		settled = true
		// settle's clean case, written out for the same reason.
		if s := b.snap.Load(); s.clean && s.gen == t.gen && s.window.addSuccess() { // policy: window
			if owed { // a request and a success (see spread.go)
				if h := b.counts.hot.Load(); (h != nil && h.cells != nil) || b.counts.calls.Add(1)%sampleEvery == 0 {
					b.countSpreadOrSample(h)
				}
			} else {
				b.counts.successes.Add(1)
			}
		} else {
			if owed {
				b.counts.requests.Add(1)
			}
			b.settleSlow(t, Success, 0)
		}
		return result, nil
	}
	if owed {
		owed = false
		b.counts.requests.Add(1)
	}
	c := classifyCall(ctx, b, result, err, opts)
	settled = true
	var applied bool
	if c.outcome == Failure {
		applied = b.settleSlow(t, Failure, retryAfterOf(err))
	} else {
		applied = b.settle(t, c.outcome)
	}
	if applied && c.why != whySuccess {
		b.logClassified(ctx, c, err)
	}
	return result, err
}

// callPermit checks Call's arguments, then asks for a permit as Permit does.
func callPermit[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error), opts []CallOption[T]) (ticket, error) {
	if !b.usable() {
		return ticket{}, errNilBreaker
	}
	if fn == nil {
		return ticket{}, errNilFunc
	}
	for _, o := range opts {
		if o.nilFunc {
			return ticket{}, errNilValidate
		}
	}
	return b.acquireSlow(ctx) // Call has tried the closed state's path
}

func classifyCall[T any](ctx context.Context, b *Breaker, result T, err error, opts []CallOption[T]) classified {
	if err == nil && !valid(result, opts) {
		return classified{Failure, whyInvalid}
	}
	return b.classifyCtx(ctx, err)
}

func valid[T any](result T, opts []CallOption[T]) bool {
	for _, o := range opts {
		if o.validate != nil && !o.validate(result) {
			return false
		}
	}
	return true
}

// Wrap returns fn guarded by b: each call of the result is a [Call] with the
// given options. A nil b or fn is reported by each call, as Call does.
func Wrap[T any](b *Breaker, fn func(context.Context) (T, error), opts ...CallOption[T]) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		return Call(ctx, b, fn, opts...)
	}
}
