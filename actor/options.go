package actor

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/benbjohnson/clock"
)

// An Option configures a breaker in [New]. Given twice, the last one wins.
type Option interface {
	apply(*options) error
	GroupOption // every Option also configures every breaker of a Group
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// Defaults, the same as the Python seed's decorator.
const (
	DefaultAllowedFails = 3
	DefaultRetryTimer   = 30 * time.Second
)

type options struct {
	name         string
	allowedFails int
	retry        time.Duration
	probeTimeout time.Duration // 0: the retry timer
	clock        clock.Clock
	logger       *slog.Logger // nil: slog.Default() when logging

	// At most one way of classifying errors may be chosen.
	allowed     []error
	failureOnly []error
	classify    func(error) Outcome
	classifyBy  []string // the options that chose one, for the error message

	stepHook func() // tests only (see Breaker.stepHook)

	nameSet bool        // WithName was given: a Group rejects it at group level and keeps it per key
	onEvent func(Event) // a Group's hook (see withOnEvent)
}

// WithName names the breaker in events, errors and logs. Default "".
func WithName(name string) Option {
	return optionFunc(func(o *options) error { o.name, o.nameSet = name, true; return nil })
}

// withOnEvent makes the loop call f with every transition, right before it
// offers it to the breaker's subscribers. f runs on the loop, so it must
// never block. A Group uses it to deliver its events without a subscription
// per breaker.
func withOnEvent(f func(Event)) Option {
	return optionFunc(func(o *options) error { o.onEvent = f; return nil })
}

// WithAllowedFails sets how many consecutive failures open the breaker: the
// n-th opens it. Default 3 (the seed's allowed_fails); n < 1 is an error.
func WithAllowedFails(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 1 {
			return invalid("WithAllowedFails(%d): must be at least 1", n)
		}
		o.allowedFails = n
		return nil
	})
}

// WithRetryTimer sets how long the breaker stays open before it lets a probe
// through. Default 30s (the seed's retry_time); d <= 0 is an error. Any
// positive duration works: math.MaxInt64 (about 292 years) keeps a breaker
// open for good once it opens.
func WithRetryTimer(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithRetryTimer(%v): must be positive", d)
		}
		o.retry = d
		return nil
	})
}

// WithProbeTimeout sets how long a half-open probe may stay unreported before
// it counts as a failure and the breaker re-opens. Default: the retry timer.
// d <= 0 is an error.
func WithProbeTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithProbeTimeout(%v): must be positive", d)
		}
		o.probeTimeout = d
		return nil
	})
}

// WithClock sets the clock the breaker's timers and times come from. Default
// clock.New(), the real clock; tests pass clock.NewMock(). nil is an error,
// and so is a nil pointer of a clock type (a *clock.Mock never made, say).
func WithClock(c clock.Clock) Option {
	return optionFunc(func(o *options) error {
		if c == nil {
			return invalid("WithClock(nil): a clock is required")
		}
		if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer && v.IsNil() {
			return invalid("WithClock(%T(nil)): a clock is required", c)
		}
		o.clock = c
		return nil
	})
}

// WithLogger sets the logger. Default slog.Default(), looked up when logging.
// nil is an error, and so is a Logger without a handler (new(slog.Logger)).
// See the package documentation for what is logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil {
			return invalid("WithLogger(nil): a logger is required")
		}
		if l.Handler() == nil {
			return invalid("WithLogger(new(slog.Logger)): a logger needs a handler")
		}
		o.logger = l
		return nil
	})
}

// WithAllowedErrors lists errors that are Ignored rather than counted as
// failures (matched with errors.Is, so wrapped ones too), like the seed's
// allowed_exceptions. Each is logged at Info. Default: none; every non-nil
// error other than context.Canceled is a Failure. A nil error in the list is
// an error. Cannot be combined with WithFailureErrors or WithClassifier.
func WithAllowedErrors(errs ...error) Option {
	return optionFunc(func(o *options) error {
		if err := noNil("WithAllowedErrors", errs); err != nil {
			return err
		}
		o.chooseClassification("WithAllowedErrors")
		o.allowed = errs
		return nil
	})
}

// WithFailureErrors lists the only errors that count as failures (matched
// with errors.Is), like the seed's failure_exceptions; every other error is
// Ignored and logged at Info. At least one error is required, and a nil one
// is an error. Cannot be combined with WithAllowedErrors or WithClassifier.
func WithFailureErrors(errs ...error) Option {
	return optionFunc(func(o *options) error {
		if len(errs) == 0 {
			return invalid("WithFailureErrors(): needs at least one error, or every error would be ignored")
		}
		if err := noNil("WithFailureErrors", errs); err != nil {
			return err
		}
		o.chooseClassification("WithFailureErrors")
		o.failureOnly = errs
		return nil
	})
}

// WithClassifier gives full control over how a non-nil error counts (for
// instance errors.As on an error type). It is called by the goroutine that
// reports, and must be safe for concurrent use. An error it says is Ignored
// is logged at Info; an answer other than Success, Failure or Ignored counts
// as Failure. nil is an error. Cannot be
// combined with WithAllowedErrors or WithFailureErrors.
func WithClassifier(f func(error) Outcome) Option {
	return optionFunc(func(o *options) error {
		if f == nil {
			return invalid("WithClassifier(nil): a function is required")
		}
		o.chooseClassification("WithClassifier")
		o.classify = f
		return nil
	})
}

func (o *options) chooseClassification(option string) {
	for _, name := range o.classifyBy {
		if name == option {
			return
		}
	}
	o.classifyBy = append(o.classifyBy, option)
}

func buildOptions(opts []Option) (options, error) {
	o := options{
		allowedFails: DefaultAllowedFails,
		retry:        DefaultRetryTimer,
		clock:        clock.New(),
	}
	for i, opt := range opts {
		if opt == nil {
			return options{}, invalid("option %d of %d is nil", i+1, len(opts))
		}
		if err := applyOption(opt, &o, i+1, len(opts)); err != nil {
			return options{}, err
		}
	}
	if len(o.classifyBy) > 1 {
		return options{}, invalid("%s cannot be combined: choose one way to classify errors", strings.Join(o.classifyBy, " and "))
	}
	if o.probeTimeout == 0 {
		o.probeTimeout = o.retry
	}
	return o, nil
}

// applyOption applies the i-th of n options. A type that embeds Option and
// leaves it nil is the one Option New can be given that panics when applied:
// it is reported like a nil Option, not as a panic.
func applyOption(opt Option, o *options, i, n int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalid("option %d of %d cannot be applied: %v", i, n, r)
		}
	}()
	return opt.apply(o)
}

func noNil(option string, errs []error) error {
	for i, err := range errs {
		if err == nil {
			return invalid("%s: error %d of %d is nil", option, i+1, len(errs))
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
