package otelbreaker

import (
	"context"
	"sync"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// InstrumentGroup reports every breaker of g on the meter provider mp, as
// [InstrumentBreaker] does for one, under circuitbreaker.name = the
// breaker's Name() (fmt.Sprint of its key unless its options name it).
// Breakers the group makes later are reported from the moment they are made;
// those it drops (idle) or forgets (Remove) are no longer reported. A nil mp
// means the global one, otel.GetMeterProvider(). It starts one goroutine that
// counts the group's transitions.
//
// The number of names is capped ([WithMaxNames], default [DefaultMaxNames]);
// breakers made while the cap is reached are reported together under
// [OtherName]. Breakers that share a name (the cap's [OtherName], or keys that
// per-key options name alike) are reported as one series: the calls summed,
// and the state gauge showing the highest state number among them (so an open
// member shows 2 even if the others are closed).
//
// Counters stay monotonic: when a breaker of a series that goes on (such as
// [OtherName]) is dropped, its last Counts are kept and added to the series
// from then on. When a name's last breaker is dropped its series ends; if its
// key comes back, the fresh breaker's series starts again from 0, which
// Prometheus' rate() and increase() read as a counter reset. Calls made
// through a dropped breaker by a caller that still holds it are not reported.
//
// The transitions counter is synchronous: the OpenTelemetry SDK keeps its
// series for every name that ever had a transition (see the SDK's cardinality
// limit, sdk/metric.WithCardinalityLimit).
//
// stop unregisters the callback, stops following the group, ends the
// goroutine and returns once it has; it is safe to call more than once.
// Stopping g ends the goroutine too. A nil g and an invalid option are errors.
func InstrumentGroup[K comparable](g *actor.Group[K], mp metric.MeterProvider, opts ...Option) (stop func(), err error) {
	if g == nil {
		return nil, invalid("InstrumentGroup: nil *actor.Group")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	in, err := newInstruments(mp)
	if err != nil {
		return nil, err
	}
	gi := &groupInstruments[K]{
		in:       in,
		extra:    o.attrs,
		maxNames: o.maxNames,
		members:  make(map[K]*member),
		series:   make(map[string]*groupSeries),
	}
	reg, err := in.meter.RegisterCallback(gi.observe, in.state, in.calls)
	if err != nil {
		return nil, err
	}
	// Subscribe before following the group so that no transition of a member
	// falls between the two; an event of a key not (yet) followed is counted
	// under its name or OtherName (see name).
	events, cancelEvents := g.Subscribe()
	cancelWatch := g.Watch(gi.made, gi.dropped)

	done := make(chan struct{}) // closed by the counting goroutine when it ends
	counted := testHookCounted
	go func() {
		defer close(done)
		for ev := range events { // closed by cancelEvents, or by g.Stop
			s := gi.transitionSeries(ev.Key, ev.Breaker)
			in.transitions.Add(context.Background(), 1, metric.WithAttributeSet(s.transitionSet(ev.Event)))
			counted()
		}
	}()

	var once sync.Once
	return func() {
		once.Do(func() {
			cancelWatch()
			_ = reg.Unregister() // fails only when called twice; once guards that
			cancelEvents()
			<-done
		})
	}, nil
}

// groupInstruments follows one group. mu guards what follows it: the group's
// hooks (made, dropped), the SDK's collection (observe) and the counting
// goroutine take it, briefly, and never call the group while holding it.
// Breakers' State and Counts are lock-free reads.
type groupInstruments[K comparable] struct {
	in       *instruments
	extra    []attribute.KeyValue
	maxNames int // 0: no cap

	mu      sync.Mutex
	members map[K]*member           // the group's breakers, by key
	series  map[string]*groupSeries // by reported name, OtherName included
	named   int                     // series other than OtherName
}

// member is one breaker of the group and the series it reports under, chosen
// when it is made and kept for its life so its counts never move between
// series.
type member struct {
	b *actor.Breaker
	s *groupSeries
}

// groupSeries is one reported name and what it has kept of its members that
// were dropped.
type groupSeries struct {
	*series
	members int   // members reporting under it now
	retired tally // the last Counts of its members that were dropped

	// Filled by observe, under mu.
	sum   tally
	state actor.State
}

// made is the group's hook for a breaker it made (or had when Watch was
// called).
func (gi *groupInstruments[K]) made(key K, b *actor.Breaker) {
	gi.mu.Lock()
	defer gi.mu.Unlock()
	if m, ok := gi.members[key]; ok {
		if m.b == b {
			return
		}
		gi.forget(key, m) // a drop we did not hear of
	}
	name := b.Name()
	s := gi.series[name]
	if s == nil {
		if name != OtherName && gi.maxNames > 0 && gi.named >= gi.maxNames {
			name = OtherName
			s = gi.series[name]
		}
		if s == nil {
			s = &groupSeries{series: newSeries(name, gi.extra)}
			gi.series[name] = s
			if name != OtherName {
				gi.named++
			}
		}
	}
	s.members++
	gi.members[key] = &member{b: b, s: s}
}

// dropped is the group's hook for a breaker it dropped or forgot.
func (gi *groupInstruments[K]) dropped(key K, b *actor.Breaker) {
	gi.mu.Lock()
	defer gi.mu.Unlock()
	if m, ok := gi.members[key]; ok && m.b == b {
		gi.forget(key, m)
	}
}

// forget ends key's membership; its counts stay in its series while the
// series lives. Called with mu held.
func (gi *groupInstruments[K]) forget(key K, m *member) {
	delete(gi.members, key)
	s := m.s
	s.retired.add(tallyOf(m.b.Counts()))
	s.members--
	if s.members == 0 && s.name != OtherName {
		delete(gi.series, s.name)
		gi.named--
	}
}

// observe is the collection callback.
func (gi *groupInstruments[K]) observe(_ context.Context, o metric.Observer) error {
	gi.mu.Lock()
	defer gi.mu.Unlock()
	for _, s := range gi.series {
		s.sum, s.state = s.retired, actor.StateClosed
	}
	for _, m := range gi.members {
		s := m.s
		s.sum.add(tallyOf(m.b.Counts()))
		if st := m.b.State(); st > s.state {
			s.state = st
		}
	}
	for _, s := range gi.series {
		if s.members > 0 {
			o.ObserveInt64(gi.in.state, int64(s.state), metric.WithAttributeSet(s.stateSet))
		}
		s.observeCalls(o, gi.in, s.sum)
	}
	return nil
}

// transitionSeries says under which name a transition of key's breaker is
// counted: its member's series; for a breaker not followed (one that was
// dropped but is still used by a caller that holds it), its own name if that
// has a series, else OtherName.
func (gi *groupInstruments[K]) transitionSeries(key K, name string) *series {
	gi.mu.Lock()
	defer gi.mu.Unlock()
	if m, ok := gi.members[key]; ok {
		return m.s.series
	}
	if s, ok := gi.series[name]; ok {
		return s.series
	}
	if s, ok := gi.series[OtherName]; ok {
		return s.series
	}
	return newSeries(OtherName, gi.extra)
}
