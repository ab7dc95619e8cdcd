package actor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// guard is how long a test waits for something the breaker must do promptly
// before it fails instead of hanging. Generous: -race on a loaded machine.
const guard = 10 * time.Second

// start returns a running breaker on a mock clock that logs nowhere (unless
// opts give a logger), stopped when the test ends.
func start(t testing.TB, opts ...Option) (*Breaker, *clock.Mock) {
	t.Helper()
	mock := clock.NewMock()
	quiet := WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := New(append([]Option{WithName("test"), WithClock(mock), quiet}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Stop)
	return b, mock
}

// subscribe subscribes for the rest of the test.
func subscribe(t testing.TB, b *Breaker) <-chan Event {
	t.Helper()
	events, cancel := b.Subscribe()
	t.Cleanup(cancel)
	return events
}

// next receives the next event, or fails the test after the guard time.
func next(t testing.TB, events <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("events channel closed, want an event")
		}
		return ev
	case <-time.After(guard):
		t.Fatalf("no event within %v", guard)
	}
	return Event{}
}

// expectTransition receives the next event and checks where it went.
func expectTransition(t testing.TB, events <-chan Event, from, to State) Event {
	t.Helper()
	ev := next(t, events)
	if ev.From != from || ev.To != to {
		t.Fatalf("event %d: %v -> %v (%q), want %v -> %v", ev.Seq, ev.From, ev.To, ev.Reason, from, to)
	}
	return ev
}

// noEvent checks that no event is waiting right now. After a Report or
// Permit returns, anything it caused is already receivable (semantic 7), so
// no waiting is needed to see its absence.
func noEvent(t testing.TB, events <-chan Event) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %d: %v -> %v (%q)", ev.Seq, ev.From, ev.To, ev.Reason)
	default:
	}
}

func permit(t testing.TB, b *Breaker) *Permit {
	t.Helper()
	p, err := b.Permit(context.Background())
	if err != nil {
		t.Fatalf("Permit: %v", err)
	}
	return p
}

// refused asks for a permit that must be refused, and returns the refusal.
func refused(t testing.TB, b *Breaker) *OpenError {
	t.Helper()
	p, err := b.Permit(context.Background())
	if err == nil {
		t.Fatalf("Permit granted (probe=%v) in state %v, want a refusal", p.Probe(), b.State())
	}
	var oe *OpenError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOpen) {
		t.Fatalf("Permit error %v (%T), want an *OpenError matching ErrOpen", err, err)
	}
	if p != nil {
		t.Fatalf("refused Permit returned a permit")
	}
	return oe
}

// report reports o on a fresh permit and checks that it was applied.
func report(t testing.TB, b *Breaker, o Outcome) {
	t.Helper()
	if !permit(t, b).ReportOutcome(o) {
		t.Fatalf("ReportOutcome(%v) = false, want true", o)
	}
}

// trip opens a closed breaker with n failures and returns the Open event.
func trip(t testing.TB, b *Breaker, events <-chan Event, n int) Event {
	t.Helper()
	for range n {
		report(t, b, Failure)
	}
	return expectTransition(t, events, StateClosed, StateOpen)
}

func wantState(t testing.TB, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

func wantCounts(t testing.TB, b *Breaker, want Counts) {
	t.Helper()
	if got := b.Counts(); got != want {
		t.Fatalf("Counts() = %+v\n                 want %+v", got, want)
	}
}

// within fails the test if f does not return within the guard time.
func within(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatalf("%s did not return within %v", what, guard)
	}
}

// logRecord is one captured log record.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// capture is a slog.Handler that keeps every record, at every level. While
// held, it is a slow handler: it holds the goroutine that logs a given
// message (for a transition, the goroutine that logs it, never the loop)
// until released.
type capture struct {
	mu      sync.Mutex
	records []logRecord
	holdMsg string        // the message to hold on
	block   chan struct{} // non-nil while held
}

// hold makes every transition record wait until release is called.
func (c *capture) hold() (release func()) { return c.holdOn("") }

// holdOn makes records with exactly this message ("" for every transition)
// wait until release is called.
func (c *capture) holdOn(msg string) (release func()) {
	block := make(chan struct{})
	c.mu.Lock()
	c.holdMsg, c.block = msg, block
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.block = nil
			c.mu.Unlock()
			close(block)
		})
	}
}

// gate holds a breaker's steps, as if the breaker were busy: callers that
// need a step then wait for it, and callers the snapshot answers do not.
// Give it to New with withGate: the breaker's loop then always runs on a
// goroutine of its own (see loop.go), which the gate holds.
type gate struct {
	mu   sync.Mutex
	when func() bool   // shut at the first step at which this is true
	shut chan struct{} // non-nil while shut; closed to open
	held chan struct{} // closed once a step waits at the gate
}

func withGate(g *gate) Option {
	return optionFunc(func(o *options) error {
		o.stepHook = g.step
		return nil
	})
}

// step runs before each step, on the goroutine about to run it.
func (g *gate) step() {
	g.mu.Lock()
	shut, held := g.shut, g.held
	if shut == nil || (g.when != nil && !g.when()) {
		g.mu.Unlock()
		return
	}
	g.when = nil // from now on every step waits, until open
	select {
	case <-held:
	default:
		close(held)
	}
	g.mu.Unlock()
	<-shut
}

// shutWhen shuts the gate for every step that starts once when() is true
// (nil: the next step), until open is called. It then runs cause, which is
// to make when() true (a step already past the gate is not held), and
// returns: from then on the next step waits at the gate. open is safe to
// call twice, and is called when the test ends.
func (g *gate) shutWhen(t testing.TB, when func() bool, cause func()) (open func()) {
	t.Helper()
	shut, held := make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.when, g.shut, g.held = when, shut, held
	g.mu.Unlock()
	var once sync.Once
	open = func() {
		once.Do(func() {
			g.mu.Lock()
			g.shut, g.when = nil, nil
			g.mu.Unlock()
			close(shut)
		})
	}
	t.Cleanup(open)
	cause()
	return open
}

func slogLogger(h slog.Handler) *slog.Logger { return slog.New(h) }

// heldHalfOpen returns a breaker (retry timer 1s) that is half-open with the
// probe free and its loop held between steps until release (called at the
// latest when the test ends): a Permit must wait for the loop to hand out
// the probe.
func heldHalfOpen(t testing.TB) (b *Breaker, events <-chan Event, release func()) {
	t.Helper()
	g := &gate{}
	b, mock := start(t, withGate(g), WithRetryTimer(time.Second))
	events = subscribe(t, b)
	trip(t, b, events, 3)
	release = g.shutWhen(t, func() bool { return b.State() == StateHalfOpen }, func() {
		mock.Add(time.Second)
		expectTransition(t, events, StateOpen, StateHalfOpen)
	})
	return b, events, release
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }

func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	block := c.block
	if _, transition := rec.attrs["from"]; !transition || (c.holdMsg != "" && r.Message != c.holdMsg) {
		block = nil
	}
	c.mu.Unlock()
	if block != nil {
		<-block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, rec)
	return nil
}

func (c *capture) all() []logRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logRecord(nil), c.records...)
}

var (
	errBoom      = errors.New("boom")
	errNotFound  = errors.New("not found")
	errRateLimit = errors.New("rate limited")
)

// stopWithin stops b, for a deferred call: if Stop does not return within
// the guard time (a loop that hangs), it marks the test failed instead of
// hanging it, and leaves the Stop behind.
func stopWithin(t testing.TB, b *Breaker) {
	t.Helper()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		b.Stop()
	}()
	select {
	case <-stopped:
	case <-time.After(guard):
		t.Errorf("Stop did not return within %v", guard)
	}
}
