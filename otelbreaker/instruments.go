package otelbreaker

import (
	"fmt"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the meter the instruments are
// registered on: this package's import path.
const ScopeName = "github.com/circuitbreaker-go/circuitbreaker/otelbreaker"

// The instruments' names and the attributes they carry. They are fixed: a
// dashboard built on them keeps working.
const (
	StateInstrument       = "circuitbreaker.state"
	CallsInstrument       = "circuitbreaker.calls"
	TransitionsInstrument = "circuitbreaker.transitions"

	keyName    = attribute.Key("circuitbreaker.name")
	keyOutcome = attribute.Key("circuitbreaker.outcome")
	keyFrom    = attribute.Key("circuitbreaker.from")
	keyTo      = attribute.Key("circuitbreaker.to")
)

// instruments are the three instruments on one meter. Asking a meter for an
// instrument it already has returns the same one, so every Instrument call
// makes its own and they all report into the same streams.
type instruments struct {
	meter       metric.Meter
	state       metric.Int64ObservableGauge
	calls       metric.Int64ObservableCounter
	transitions metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	in := &instruments{meter: mp.Meter(ScopeName)}
	var err error
	if in.state, err = in.meter.Int64ObservableGauge(StateInstrument,
		metric.WithDescription("The breaker's state: 0 closed, 1 half-open, 2 open, 3 forced-open, 4 disabled."),
		metric.WithUnit("{state}"),
	); err != nil {
		return nil, fmt.Errorf("otelbreaker: %s: %w", StateInstrument, err)
	}
	if in.calls, err = in.meter.Int64ObservableCounter(CallsInstrument,
		metric.WithDescription("Calls through the breaker by outcome: success, failure and ignored are reported outcomes; rejected calls were refused."),
		metric.WithUnit("{call}"),
	); err != nil {
		return nil, fmt.Errorf("otelbreaker: %s: %w", CallsInstrument, err)
	}
	if in.transitions, err = in.meter.Int64Counter(TransitionsInstrument,
		metric.WithDescription("State transitions of the breaker, by the states it left and entered."),
		metric.WithUnit("{transition}"),
	); err != nil {
		return nil, fmt.Errorf("otelbreaker: %s: %w", TransitionsInstrument, err)
	}
	return in, nil
}

// outcomes are the values of circuitbreaker.outcome, in the order of
// series.callSets and tally.
var outcomes = [...]string{"success", "failure", "ignored", "rejected"}

// tally is the part of actor.Counts that circuitbreaker.calls reports.
type tally [len(outcomes)]uint64

func tallyOf(c actor.Counts) tally {
	return tally{c.Successes, c.Failures, c.Ignored, c.Rejected}
}

func (t *tally) add(u tally) {
	for i := range t {
		t[i] += u[i]
	}
}

// series holds the attribute sets of one reported name, made once so that a
// collection allocates nothing for them.
type series struct {
	name     string
	extra    []attribute.KeyValue // from WithAttributes
	stateSet attribute.Set
	callSets [len(outcomes)]attribute.Set
}

func newSeries(name string, extra []attribute.KeyValue) *series {
	s := &series{name: name, extra: extra}
	s.stateSet = s.set()
	for i, o := range outcomes {
		s.callSets[i] = s.set(keyOutcome.String(o))
	}
	return s
}

func (s *series) set(kvs ...attribute.KeyValue) attribute.Set {
	all := make([]attribute.KeyValue, 0, 1+len(s.extra)+len(kvs))
	all = append(all, keyName.String(s.name))
	all = append(all, s.extra...)
	all = append(all, kvs...)
	return attribute.NewSet(all...)
}

// observe reports one state and one tally under s's name.
func (s *series) observe(o metric.Observer, in *instruments, state actor.State, t tally) {
	o.ObserveInt64(in.state, int64(state), metric.WithAttributeSet(s.stateSet))
	s.observeCalls(o, in, t)
}

func (s *series) observeCalls(o metric.Observer, in *instruments, t tally) {
	for i, n := range t {
		o.ObserveInt64(in.calls, int64(n), metric.WithAttributeSet(s.callSets[i]))
	}
}

// transitionSet is the attribute set of one transition. Transitions are rare,
// so it is made when needed.
func (s *series) transitionSet(ev actor.Event) attribute.Set {
	return s.set(keyFrom.String(ev.From.String()), keyTo.String(ev.To.String()))
}

// testHookCounted is called by a counting goroutine after it counted a
// transition, so that tests can wait for it; read when the goroutine starts.
var testHookCounted = func() {}
