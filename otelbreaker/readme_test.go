package otelbreaker

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.opentelemetry.io/otel/attribute"
)

// TestOutageDashboard drives one outage through an instrumented breaker and
// renders what a dashboard shows at each step: the table in the README's
// Metrics section, which must match it.
func TestOutageDashboard(t *testing.T) {
	r, mp := newReader(t)
	counted := countTransitions(t)
	mock := clock.NewMock()
	b := newBreaker(t, actor.WithName("payments"), actor.WithClock(mock))
	stop, err := InstrumentBreaker(b, mp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	events, cancel := b.Subscribe()
	defer cancel()

	start := mock.Now()
	var rows []string
	row := func(what string) {
		c := collect(t, r)
		p := name("payments")
		v := func(instrument string, kvs ...attribute.KeyValue) int64 {
			return c[instrument][point(append(kvs, p)...)]
		}
		tr := func(from, to actor.State) int64 { return v(TransitionsInstrument, transition(from, to)...) }
		at := mock.Now().Sub(start)
		rows = append(rows, fmt.Sprintf("| %d:%02d | %s | %d | %d | %d | %d | %d | %d | %d | %d |",
			int(at.Minutes()), int(at.Seconds())%60, what,
			v(StateInstrument),
			v(CallsInstrument, outcome("success")), v(CallsInstrument, outcome("failure")), v(CallsInstrument, outcome("rejected")),
			tr(actor.StateClosed, actor.StateOpen), tr(actor.StateOpen, actor.StateHalfOpen),
			tr(actor.StateHalfOpen, actor.StateOpen), tr(actor.StateHalfOpen, actor.StateClosed)))
	}
	// traffic is ten calls a second for d, each answered by err (refused
	// while the breaker is open).
	traffic := func(d time.Duration, err error) {
		for i := 0; i < int(d/time.Second)*10; i++ {
			calls(t, b, 1, err)
			if i%10 == 9 {
				mock.Add(time.Second)
			}
		}
	}

	traffic(10*time.Second, nil)
	row("healthy: 10 calls a second")
	calls(t, b, 3, errBoom)
	waitEvent(t, events, actor.StateOpen)
	waitCounted(t, counted, 1)
	row("the dependency fails: 3 failures open the breaker")
	traffic(29*time.Second, errBoom)
	row("open: every call is refused at once")
	mock.Add(time.Second)
	waitEvent(t, events, actor.StateHalfOpen)
	waitCounted(t, counted, 1)
	row("retry timer: half-open")
	calls(t, b, 1, errBoom)
	waitEvent(t, events, actor.StateOpen)
	waitCounted(t, counted, 1)
	row("the probe fails: open again")
	traffic(30*time.Second, errBoom)
	waitEvent(t, events, actor.StateHalfOpen)
	waitCounted(t, counted, 1)
	calls(t, b, 1, nil)
	waitEvent(t, events, actor.StateClosed)
	waitCounted(t, counted, 1)
	row("the next probe succeeds: closed")
	traffic(20*time.Second, nil)
	row("healthy again")

	table := strings.Join(rows, "\n")
	t.Logf("\n%s", table)
	readme, err := os.ReadFile("../README.md")
	if os.IsNotExist(err) {
		t.Skip("no README.md: not run from the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), table) {
		t.Errorf("README.md's Metrics table does not match what the instruments report:\n%s", table)
	}
}
