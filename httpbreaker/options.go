package httpbreaker

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Defaults.
const (
	// DefaultMaxBreakers caps the breakers of a Transport or Middleware
	// (actor.WithMaxBreakers), so that a client that follows links to
	// ever new hosts, or a WithKey that returns ever new keys, cannot grow
	// without bound. At the cap a request goes through unprotected (see
	// [Transport.Unprotected]). Give actor.WithMaxBreakers in
	// [WithGroupOptions] to change it; 0 means no cap.
	DefaultMaxBreakers = 1024

	// DefaultMaxRetryAfter caps how long a Retry-After header may hold a
	// Transport's breaker open (see [WithMaxRetryAfter]).
	DefaultMaxRetryAfter = 5 * time.Minute
)

// An Option configures [NewTransport] or [NewMiddleware]; one type serves
// both, as in otelhttp. An option that does not apply to the constructor it
// is given to (WithClassifier or WithMaxRetryAfter given to NewMiddleware) is
// an error from that constructor, not silently dropped.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type side uint8

const (
	transportSide side = iota + 1
	middlewareSide
)

func (s side) constructor() string {
	if s == transportSide {
		return "NewTransport"
	}
	return "NewMiddleware"
}

type config struct {
	side          side // which constructor is applying the options
	groupOpts     []actor.GroupOption
	key           func(*http.Request) string // nil: the side's default
	classify      func(*http.Response, error) actor.Outcome
	maxRetryAfter time.Duration
	logger        *slog.Logger // nil: slog.Default() when logging
}

// WithGroupOptions configures the [actor.Group] that holds the breakers:
// actor.Options (WithAllowedFails, WithRetryTimer, WithClock, ...) apply to
// every breaker, and group options (actor.WithMaxBreakers, WithIdleTTL, ...)
// to the group. They come after the defaults (actor.WithMaxBreakers with
// [DefaultMaxBreakers]), so they override them. Given more than once, the
// lists are joined in order. The breakers' own error classification
// (actor.WithAllowedErrors, WithFailureErrors, WithClassifier) is not used:
// HTTP outcomes are classified by this package (see [WithClassifier]).
func WithGroupOptions(opts ...actor.GroupOption) Option {
	return optionFunc(func(c *config) error {
		c.groupOpts = append(c.groupOpts, opts...)
		return nil
	})
}

// WithKey chooses the breaker for a request: requests with the same key share
// one breaker. The Transport's default is scheme://host:port from req.URL,
// lowercased, with the scheme's default port filled in (so http://h and
// http://h:80 share one); req.Host is not used. The Middleware's default is
// the route pattern (see [Middleware]); give WithKey for routers other than
// http.ServeMux. f runs on every request and must be safe for concurrent use;
// keep its keys bounded (a raw path is not). On the Middleware, a key of ""
// lets the request through unprotected. nil is an error.
func WithKey(f func(*http.Request) string) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return invalid("WithKey(nil): a function is required")
		}
		c.key = f
		return nil
	})
}

// WithClassifier decides how a round trip counts: f gets the response and
// error from next and returns actor.Success, actor.Failure or actor.Ignored
// (any other value counts as Failure). [Classify] is the default; call it
// from f for the cases f does not decide. A request whose context was
// cancelled (context.Canceled) and that ended in an error is Ignored before f
// is asked: the caller gave up. f must be safe for concurrent use and must
// not read the response body. Transport only; nil is an error.
func WithClassifier(f func(*http.Response, error) actor.Outcome) Option {
	return optionFunc(func(c *config) error {
		if c.side != transportSide {
			return invalid("WithClassifier applies to NewTransport only, not %s", c.side.constructor())
		}
		if f == nil {
			return invalid("WithClassifier(nil): a function is required")
		}
		c.classify = f
		return nil
	})
}

// WithMaxRetryAfter caps the open period a Retry-After header may set: a 429
// or 503 response whose Failure opens the breaker (a trip, or a failed
// probe) holds it open for the header's delay (delta-seconds, or an HTTP-date
// read against the breakers' clock), at most d, instead of the retry timer.
// Default [DefaultMaxRetryAfter] (5 minutes); 0 ignores the header; d < 0 is
// an error. Transport only.
func WithMaxRetryAfter(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if c.side != transportSide {
			return invalid("WithMaxRetryAfter applies to NewTransport only, not %s", c.side.constructor())
		}
		if d < 0 {
			return invalid("WithMaxRetryAfter(%v): must not be negative", d)
		}
		c.maxRetryAfter = d
		return nil
	})
}

// WithLogger sets where this package logs (the Warn records of requests let
// through unprotected) and, as actor.WithLogger, where the breakers log;
// an actor.WithLogger in [WithGroupOptions] overrides the latter. Default
// slog.Default(), looked up when logging. nil is an error.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil || l.Handler() == nil {
			return invalid("WithLogger: a logger with a handler is required")
		}
		c.logger = l
		return nil
	})
}

func buildConfig(s side, opts []Option) (config, error) {
	c := config{side: s, maxRetryAfter: DefaultMaxRetryAfter}
	for i, opt := range opts {
		if opt == nil {
			return config{}, invalid("%s: option %d of %d is nil", s.constructor(), i+1, len(opts))
		}
		if err := opt.apply(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

// newGroup makes the group with the defaults first, so the caller's group
// options override them.
func (c *config) newGroup() (*actor.Group[string], error) {
	opts := make([]actor.GroupOption, 0, len(c.groupOpts)+2)
	opts = append(opts, actor.WithMaxBreakers(DefaultMaxBreakers))
	if c.logger != nil {
		opts = append(opts, actor.WithLogger(c.logger))
	}
	opts = append(opts, c.groupOpts...)
	g, err := actor.NewGroup[string](opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: WithGroupOptions: %w", c.side.constructor(), err)
	}
	return g, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: httpbreaker: %s", actor.ErrInvalid, fmt.Sprintf(format, args...))
}
