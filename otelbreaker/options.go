package otelbreaker

import (
	"fmt"

	"github.com/circuitbreaker-go/circuitbreaker/actor"

	"go.opentelemetry.io/otel/attribute"
)

// An Option configures [InstrumentBreaker] or [InstrumentGroup]. Given twice,
// the last one wins. An option that does not apply to the function it is
// given to is an error from it.
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// DefaultMaxNames is how many breaker names [InstrumentGroup] reports one by
// one unless [WithMaxNames] says otherwise.
const DefaultMaxNames = 100

// OtherName is the circuitbreaker.name under which [InstrumentGroup] reports
// the breakers beyond its cap on names.
const OtherName = "_other"

// errInvalid is wrapped by every error about bad input: actor.ErrInvalid, as
// in every package of the library, so errors.Is(err, actor.ErrInvalid) holds.
var errInvalid = actor.ErrInvalid

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: otelbreaker: "+format, append([]any{errInvalid}, args...)...)
}

type options struct {
	maxNames    int
	maxNamesSet bool // WithMaxNames was given: only InstrumentGroup takes it
	attrs       []attribute.KeyValue
}

func newOptions(opts []Option) (*options, error) {
	o := &options{maxNames: DefaultMaxNames}
	for i, opt := range opts {
		if opt == nil {
			return nil, invalid("option %d of %d is nil", i+1, len(opts))
		}
		if err := opt.apply(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithMaxNames caps how many breaker names [InstrumentGroup] reports one by
// one. Default [DefaultMaxNames]; 0 means no cap; n < 0 is an error. A name
// keeps its own series from the moment its breaker is made while fewer than n
// names are reported, until the group drops its last breaker; breakers made
// while the cap is reached are reported together under [OtherName] for as
// long as they live. One series per tenant or host can swamp a metrics
// backend: the cap bounds the series to n+1 names.
//
// [InstrumentBreaker] reports one name: giving it WithMaxNames is an error.
func WithMaxNames(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return invalid("WithMaxNames(%d): must not be negative", n)
		}
		o.maxNames = n
		o.maxNamesSet = true
		return nil
	})
}

// WithAttributes adds attributes to every data point, for example to tell
// apart two groups whose breakers share names (the targets of a gRPC client
// and of an HTTP client). Default: none. An attribute named
// circuitbreaker.name, circuitbreaker.outcome, circuitbreaker.from or
// circuitbreaker.to is an error: those are the package's own.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	attrs = append([]attribute.KeyValue(nil), attrs...) // the caller may reuse its slice
	return optionFunc(func(o *options) error {
		for _, kv := range attrs {
			switch kv.Key {
			case keyName, keyOutcome, keyFrom, keyTo:
				return invalid("WithAttributes: %s is set by otelbreaker", kv.Key)
			}
			if !kv.Valid() {
				return invalid("WithAttributes: an attribute without a key")
			}
		}
		o.attrs = attrs
		return nil
	})
}
