package grpcbreaker

import (
	"fmt"
	"log/slog"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// An Option configures [NewClient] or [NewServer]. Given twice, the last one
// wins. Every option applies to both.
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

type options struct {
	group    []actor.GroupOption
	classify func(error) actor.Outcome
	logger   *slog.Logger // nil: slog.Default(), looked up when logging
}

// errInvalid is wrapped by every error about bad input: actor.ErrInvalid, as
// in every package of the library, so errors.Is(err, actor.ErrInvalid) holds.
var errInvalid = actor.ErrInvalid

// errNotMade is what the interceptors of a nil or zero Client or Server
// return, rather than panic.
var errNotMade = invalid("a nil or zero Client or Server: make it with NewClient or NewServer")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: grpcbreaker: "+format, append([]any{errInvalid}, args...)...)
}

func newOptions(constructor string, opts []Option) (*options, error) {
	o := &options{classify: Classify}
	for i, opt := range opts {
		if opt == nil {
			return nil, invalid("%s: option %d of %d is nil", constructor, i+1, len(opts))
		}
		if err := opt.apply(o); err != nil {
			return nil, fmt.Errorf("%s: %w", constructor, err)
		}
	}
	return o, nil
}

// newGroup makes the group of breakers that o describes: WithLogger's
// logger first, so that an actor.WithLogger in WithGroupOptions overrides
// it.
func (o *options) newGroup(constructor string) (*actor.Group[string], error) {
	opts := o.group
	if o.logger != nil {
		opts = append([]actor.GroupOption{actor.WithLogger(o.logger)}, o.group...)
	}
	g, err := actor.NewGroup[string](opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcbreaker: %s: WithGroupOptions: %w", constructor, err)
	}
	return g, nil
}

// WithGroupOptions configures the group of breakers: options for every
// breaker (actor.WithAllowedFails, actor.WithRetryTimer, actor.WithClock, ...)
// and for the group (actor.WithIdleTTL, actor.WithMaxBreakers,
// actor.WithKeyOptions). Default: the actor package's defaults. Given more
// than once, the lists are joined in order (as in httpbreaker), so a later
// option overrides an earlier one of the same kind. Breakers are named after
// their key (the target, or the full method). An invalid option is an error
// from NewClient or NewServer.
//
// The breakers' own ways of classifying errors (actor.WithClassifier,
// actor.WithAllowedErrors, actor.WithFailureErrors) have no effect here: the
// interceptors report outcomes that [Classify] or [WithClassifier] decided.
func WithGroupOptions(opts ...actor.GroupOption) Option {
	opts = append([]actor.GroupOption(nil), opts...) // the caller may reuse its slice
	return optionFunc(func(o *options) error {
		o.group = append(o.group, opts...)
		return nil
	})
}

// WithClassifier decides how a call's error counts: [actor.Success],
// [actor.Failure] or [actor.Ignored]. Default [Classify]. f sees only non-nil
// errors (a nil error is a Success) of calls whose caller did not give up: an
// error while the caller's context is done with context.Canceled is Ignored
// before f is asked. Wrap Classify to change a few codes and keep the rest. A
// nil f is an error; an f that panics counts the call as a Failure, and the
// panic goes on; any answer other than the three outcomes counts as a
// Failure.
func WithClassifier(f func(error) actor.Outcome) Option {
	return optionFunc(func(o *options) error {
		if f == nil {
			return invalid("WithClassifier(nil)")
		}
		o.classify = f
		return nil
	})
}

// WithLogger sets where this package logs (the one Warn when the group is
// full and calls go through unprotected) and, as actor.WithLogger, where the
// breakers log; an actor.WithLogger in [WithGroupOptions] overrides the
// latter. Default slog.Default(), looked up when logging. A nil logger, or
// one without a handler, is an error.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil || l.Handler() == nil {
			return invalid("WithLogger: a logger with a handler is required")
		}
		o.logger = l
		return nil
	})
}

// log is where this package logs: WithLogger's logger, or slog.Default().
func (o *options) log() *slog.Logger {
	if o.logger != nil {
		return o.logger
	}
	return slog.Default()
}
