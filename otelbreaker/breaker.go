package otelbreaker

import (
	"context"
	"sync"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel/metric"
)

// InstrumentBreaker reports b on the meter provider mp: its state, its calls
// by outcome and its transitions, under circuitbreaker.name = b.Name(). A nil
// mp means the global one, otel.GetMeterProvider(). It starts one goroutine
// that counts b's transitions.
//
// stop unregisters the callback and ends the goroutine, and returns once it
// has; it is safe to call more than once. Stopping b ends the goroutine too,
// but the callback keeps reporting b's last values until stop is called.
//
// A nil b, an invalid option and [WithMaxNames] are errors.
func InstrumentBreaker(b *actor.Breaker, mp metric.MeterProvider, opts ...Option) (stop func(), err error) {
	if b == nil {
		return nil, invalid("InstrumentBreaker: nil *actor.Breaker")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.maxNamesSet {
		return nil, invalid("WithMaxNames is for InstrumentGroup: InstrumentBreaker reports one name")
	}
	in, err := newInstruments(mp)
	if err != nil {
		return nil, err
	}
	s := newSeries(b.Name(), o.attrs)
	reg, err := in.meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		s.observe(obs, in, b.State(), tallyOf(b.Counts()))
		return nil
	}, in.state, in.calls)
	if err != nil {
		return nil, err
	}

	events, cancel := b.Subscribe()
	done := make(chan struct{}) // closed by the counting goroutine when it ends
	counted := testHookCounted
	go func() {
		defer close(done)
		for ev := range events { // closed by cancel, or by b.Stop
			in.transitions.Add(context.Background(), 1, metric.WithAttributeSet(s.transitionSet(ev)))
			counted()
		}
	}()

	var once sync.Once
	return func() {
		once.Do(func() {
			_ = reg.Unregister() // the SDK's Unregister fails only when called twice; once guards that
			cancel()
			<-done
		})
	}, nil
}
