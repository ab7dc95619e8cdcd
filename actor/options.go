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
	name            string
	allowedFails    int
	allowedFailsSet bool // WithAllowedFails was given: with a failure rate, both rules trip
	retry           time.Duration
	probeTimeout    time.Duration // 0: the retry timer
	clock           clock.Clock
	logger          *slog.Logger // nil: slog.Default() when logging

	// At most one way of classifying errors may be chosen.
	allowed     []error
	failureOnly []error
	classify    func(error) Outcome
	classifyBy  []string // the options that chose one, for the error message

	// Trip and recovery policies (CONTRACT semantics 15-17b):
	rateThreshold  float64
	rateMinCalls   int
	rateWindow     time.Duration // 0: no failure-rate rule
	backoffMax     time.Duration // 0: no backoff
	jitter         float64
	probeSuccesses int           // 0: 1
	slowCall       time.Duration // 0: off
	seed           *[2]uint64    // tests only: the jitter's seed (see withSeed)

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
		o.allowedFails, o.allowedFailsSet = n, true
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

// WithFailureRate trips the breaker on the rate of failures rather than on
// a run of them: when a failure is reported and, over the sliding window
// that ends then, at least minCalls outcomes were counted (successes and
// failures; ignored ones are not) and failures make up at least threshold of
// them. For services with traffic: at thousands of calls a second, a handful
// of scattered errors does not open the breaker, 40% failures over ten
// seconds does. The window slides in steps of window/10 on the breaker's
// clock (an outcome younger than 9/10 of the window always counts, one older
// than the window never does), holds closed-state outcomes only, and is
// emptied each time the breaker closes. Successes cost no clock read and no
// message to the breaker's loop. The consecutive-failure rule is then off,
// unless [WithAllowedFails] is also given (then either rule trips). Default:
// no failure-rate rule. It needs 0 < threshold <= 1, minCalls >= 1 and
// window > 0; anything else (NaN included) is an error.
func WithFailureRate(threshold float64, minCalls int, window time.Duration) Option {
	return optionFunc(func(o *options) error {
		if !(threshold > 0 && threshold <= 1) {
			return invalid("WithFailureRate(%v, %d, %v): the threshold must be in (0, 1]", threshold, minCalls, window)
		}
		if minCalls < 1 {
			return invalid("WithFailureRate(%v, %d, %v): minCalls must be at least 1", threshold, minCalls, window)
		}
		if window <= 0 {
			return invalid("WithFailureRate(%v, %d, %v): the window must be positive", threshold, minCalls, window)
		}
		o.rateThreshold, o.rateMinCalls, o.rateWindow = threshold, minCalls, window
		return nil
	})
}

// WithBackoff makes each consecutive opening without a close in between stay
// open twice as long as the one before, up to max: the k-th stays open
// retry*2^(k-1), capped at max. Closing starts again from the retry timer; a
// probe that fails or times out counts as an opening, and so does [Breaker.Trip].
// A dependency's own open period ([RetryAfterError]) is used as it is.
// Default: no backoff, every opening stays open for the retry timer. max
// below the retry timer is an error.
func WithBackoff(max time.Duration) Option {
	return optionFunc(func(o *options) error {
		if max <= 0 {
			return invalid("WithBackoff(%v): must be positive", max)
		}
		o.backoffMax = max
		return nil
	})
}

// WithJitter draws each open period d (after backoff) uniformly from
// [d*(1-fraction), d], so that breakers that opened together do not all probe
// at the same instant. Until and RetryAfter of the refusals report the period
// drawn. The draws come from a random source of the breaker's own, which a
// mock clock does not disturb. Default 0: no jitter. It needs
// 0 <= fraction < 1; anything else (NaN included) is an error.
func WithJitter(fraction float64) Option {
	return optionFunc(func(o *options) error {
		if !(fraction >= 0 && fraction < 1) {
			return invalid("WithJitter(%v): the fraction must be in [0, 1)", fraction)
		}
		o.jitter = fraction
		return nil
	})
}

// WithProbeSuccesses makes a half-open breaker close only after n successful
// probes in a row, still one probe at a time: a failed probe re-opens it at
// once, and an ignored one neither counts nor breaks the run. Default 1;
// n < 1 is an error.
func WithProbeSuccesses(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 1 {
			return invalid("WithProbeSuccesses(%d): must be at least 1", n)
		}
		o.probeSuccesses = n
		return nil
	})
}

// WithSlowCall counts a call as a Failure, whatever it returned, when it took
// longer than d: a permit reported more than d after it was granted, or a
// [Call] whose function returned more than d after it started. A caller that
// gave up (context.Canceled, otherwise Ignored) counts too: without this, a
// hung dependency whose callers all cancel never trips anything. It costs a
// clock read when a permit is granted and one when it is reported; without
// it, a closed breaker reads no clock per call (its own clock never; the
// runtime's monotonic time once every 256 clean Calls, to tell whether to
// spread its counter: see the package documentation). Default: off; d <= 0
// is an error.
func WithSlowCall(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithSlowCall(%v): must be positive", d)
		}
		o.slowCall = d
		return nil
	})
}

// withSeed seeds the jitter's random source: tests only.
func withSeed(a, b uint64) Option {
	return optionFunc(func(o *options) error { o.seed = &[2]uint64{a, b}; return nil })
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
	if o.backoffMax > 0 && o.backoffMax < o.retry {
		return options{}, invalid("WithBackoff(%v): must be at least the retry timer %v", o.backoffMax, o.retry)
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
