package actortest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/actor/actortest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newBreaker(t *testing.T, opts ...actor.Option) (*actor.Breaker, *clock.Mock) {
	t.Helper()
	mock := clock.NewMock()
	quiet := actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := actor.New(append([]actor.Option{actor.WithName("t"), actor.WithClock(mock), quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b, mock
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as testing.T's does.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// failure runs f with a recorder and returns what it failed with ("" if it
// did not fail).
func failure(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the helper hung")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

// shortTimeout makes the package's waits short for one test.
func shortTimeout(t *testing.T) {
	old := actortest.Timeout
	actortest.Timeout = 50 * time.Millisecond
	t.Cleanup(func() { actortest.Timeout = old })
}

func TestOpenHalfOpenClose(t *testing.T) {
	b, mock := newBreaker(t, actor.WithRetryTimer(time.Minute), actor.WithAllowedFails(4))
	if ev := actortest.Open(t, b); ev.To != actor.StateOpen || ev.Reason != "4 consecutive failures" {
		t.Fatalf("Open = %+v", ev)
	}
	if ev := actortest.Open(t, b); ev != (actor.Event{}) {
		t.Fatalf("Open on an open breaker = %+v, want nothing", ev)
	}
	if ev := actortest.HalfOpen(t, b, mock); ev.From != actor.StateOpen || ev.To != actor.StateHalfOpen {
		t.Fatalf("HalfOpen = %+v", ev)
	}
	if ev := actortest.Close(t, b, mock); ev.From != actor.StateHalfOpen || ev.To != actor.StateClosed {
		t.Fatalf("Close = %+v", ev)
	}
	// From closed to half-open in one call, then closed again.
	if ev := actortest.HalfOpen(t, b, mock); ev.To != actor.StateHalfOpen {
		t.Fatalf("HalfOpen from closed = %+v", ev)
	}
	actortest.Close(t, b, mock)
	if got := b.State(); got != actor.StateClosed {
		t.Fatalf("State() = %v", got)
	}
	actortest.NoGoroutines(t)
}

func TestWaitState(t *testing.T) {
	b, _ := newBreaker(t, actor.WithRetryTimer(time.Second), actor.WithAllowedFails(1))
	if ev := actortest.WaitState(t, b, actor.StateClosed); ev != (actor.Event{}) {
		t.Fatalf("WaitState(closed) on a closed breaker = %+v", ev)
	}
	// The transition comes from another goroutine, while WaitState waits or
	// (the goroutine won the race) before it looked: then it returns the
	// zero Event, with the breaker already half-open. Both are right; the
	// test needs the first to have happened at least once.
	waited := 0
	for range 50 {
		b, mock := newBreaker(t, actor.WithRetryTimer(time.Second), actor.WithAllowedFails(1))
		p, err := b.Permit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.ReportOutcome(actor.Failure)
		added := make(chan struct{})
		go func() {
			defer close(added)
			mock.Add(time.Second)
		}()
		ev := actortest.WaitState(t, b, actor.StateHalfOpen)
		<-added
		switch {
		case ev.To == actor.StateHalfOpen && ev.Reason == "retry timer elapsed":
			waited++
		case ev == (actor.Event{}) && b.State() == actor.StateHalfOpen:
		default:
			t.Fatalf("WaitState(half-open) = %+v, state %v", ev, b.State())
		}
		if waited == 3 {
			return
		}
	}
	t.Fatalf("WaitState saw the transition come while it waited %d times in 50, want 3", waited)
}

func TestFailuresAreClearAndFast(t *testing.T) {
	shortTimeout(t)
	t.Run("a state that never comes", func(t *testing.T) {
		b, _ := newBreaker(t, actor.WithAllowedFails(1))
		msg := failure(t, func(tb testing.TB) { actortest.WaitState(tb, b, actor.StateOpen) })
		if !strings.Contains(msg, `breaker "t" is closed after 50ms, want open`) {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("stopped while waiting", func(t *testing.T) {
		b, _ := newBreaker(t)
		msg := failure(t, func(tb testing.TB) {
			go b.Stop()
			actortest.WaitState(tb, b, actor.StateOpen)
		})
		if !strings.Contains(msg, "stopped") && !strings.Contains(msg, "is closed after") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("Close with another caller's probe out", func(t *testing.T) {
		b, mock := newBreaker(t, actor.WithRetryTimer(time.Second))
		actortest.HalfOpen(t, b, mock)
		if _, err := b.Permit(context.Background()); err != nil {
			t.Fatal(err)
		}
		msg := failure(t, func(tb testing.TB) { actortest.Close(tb, b, mock) })
		if !strings.Contains(msg, "another caller's probe out") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("a goroutine left", func(t *testing.T) {
		h := &holdHandler{release: make(chan struct{})}
		b, _ := newBreaker(t, actor.WithLogger(slog.New(h)), actor.WithAllowedFails(1))
		p, _ := b.Permit(context.Background())
		p.ReportOutcome(actor.Failure) // its record is logged by a goroutine that hangs
		msg := failure(t, actortest.NoGoroutines)
		close(h.release)
		if !strings.Contains(msg, "1 goroutines of breakers left") || !strings.Contains(msg, "logQueue") {
			t.Fatalf("message %q", msg)
		}
	})
}

// holdHandler is a log handler that hangs until released.
type holdHandler struct{ release chan struct{} }

func (h *holdHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *holdHandler) Handle(context.Context, slog.Record) error {
	<-h.release
	return nil
}
func (h *holdHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *holdHandler) WithGroup(string) slog.Handler      { return h }
