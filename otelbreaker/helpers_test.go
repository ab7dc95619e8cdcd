package otelbreaker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait in real time, so a broken test fails instead of
// hanging.
const guard = 10 * time.Second

var errBoom = errors.New("boom")

// newReader returns an SDK meter provider that reports to a ManualReader.
func newReader(t testing.TB) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

// countTransitions makes the counting goroutines of Instrument calls made
// after it signal each counted transition on the returned channel.
func countTransitions(t *testing.T) <-chan struct{} {
	t.Helper()
	c := make(chan struct{}, 64) // buffered: the goroutine never waits for the test
	testHookCounted = func() { c <- struct{}{} }
	t.Cleanup(func() { testHookCounted = func() {} })
	return c
}

func waitCounted(t *testing.T, c <-chan struct{}, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c:
		case <-time.After(guard):
			t.Fatalf("counted %d of %d transitions", i, n)
		}
	}
}

func waitEvent(t *testing.T, events <-chan actor.Event, to actor.State) actor.Event {
	t.Helper()
	select {
	case ev := <-events:
		if ev.To != to {
			t.Fatalf("event %+v, want a transition to %v", ev, to)
		}
		return ev
	case <-time.After(guard):
		t.Fatalf("no transition to %v", to)
	}
	panic("unreachable")
}

// collected is one collection by instrument name, then by the attribute set's
// encoding.
type collected map[string]map[string]int64

// point is the key of one data point: its attributes, sorted by key.
func point(kvs ...attribute.KeyValue) string {
	s := attribute.NewSet(kvs...)
	return s.Encoded(attribute.DefaultEncoder())
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Fatalf("scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			points := map[string]int64{}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					points[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Fatalf("%s: monotonic %v, temporality %v; want a cumulative counter", m.Name, d.IsMonotonic, d.Temporality)
				}
				for _, p := range d.DataPoints {
					points[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			default:
				t.Fatalf("%s: data %T", m.Name, m.Data)
			}
			out[m.Name] = points
		}
	}
	return out
}

func name(n string) attribute.KeyValue { return keyName.String(n) }

func outcome(o string) attribute.KeyValue { return keyOutcome.String(o) }

func transition(from, to actor.State) []attribute.KeyValue {
	return []attribute.KeyValue{keyFrom.String(from.String()), keyTo.String(to.String())}
}

// want checks that instrument has the value v at the point made of kvs.
func (c collected) want(t *testing.T, instrument string, v int64, kvs ...attribute.KeyValue) {
	t.Helper()
	got, ok := c[instrument][point(kvs...)]
	if !ok {
		t.Errorf("%s{%s}: missing; have %v", instrument, point(kvs...), c[instrument])
		return
	}
	if got != v {
		t.Errorf("%s{%s} = %d, want %d", instrument, point(kvs...), got, v)
	}
}

// wantNone checks that instrument has no point with the name n.
func (c collected) wantNone(t *testing.T, instrument, n string) {
	t.Helper()
	for p := range c[instrument] {
		if containsName(p, n) {
			t.Errorf("%s: a point for name %q remains: %s", instrument, n, p)
		}
	}
}

func containsName(encoded, n string) bool {
	prefix := string(keyName) + "=" + n
	for _, part := range strings.Split(encoded, ",") {
		if part == prefix {
			return true
		}
	}
	return false
}

// calls makes n calls through b that return err (or are refused).
func calls(t *testing.T, b *actor.Breaker, n int, err error) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, got := actor.Call(context.Background(), b, func(context.Context) (struct{}, error) { return struct{}{}, err })
		if got != err && !errors.Is(got, actor.ErrOpen) {
			t.Fatalf("call %d: %v", i, got)
		}
	}
}

// quiet keeps breakers' transition logs out of the test output.
var quiet = slog.New(slog.DiscardHandler)

func newBreaker(t *testing.T, opts ...actor.Option) *actor.Breaker {
	t.Helper()
	b, err := actor.New(append([]actor.Option{actor.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}
