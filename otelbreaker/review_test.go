package otelbreaker

import (
	"errors"
	"testing"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Bad input matches actor.ErrInvalid, as in every package of the library.
func TestBadInputWrapsErrInvalid(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	if _, err := InstrumentBreaker(nil, mp); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("nil breaker: %v does not wrap actor.ErrInvalid", err)
	}
	if _, err := InstrumentGroup[string](nil, mp, WithMaxNames(-1)); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("nil group: %v does not wrap actor.ErrInvalid", err)
	}
}
