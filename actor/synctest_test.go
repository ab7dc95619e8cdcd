//go:build go1.25

package actor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// TestSynctestRecipe is the README's recipe for testing code that uses a
// breaker on the real clock, without injecting a clock: testing/synctest
// (Go 1.25) runs the test in a bubble whose time is fake. The breaker's
// timers are the real clock's time.AfterFunc, so they run on the bubble's
// time: a 30s retry timer fires as soon as every goroutine in the bubble
// is blocked, with no real waiting.
func TestSynctestRecipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		b, err := actor.New(actor.WithAllowedFails(1), actor.WithRetryTimer(30*time.Second), actor.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		events, cancel := b.Subscribe()
		defer cancel()
		ctx := context.Background()
		errDown := errors.New("dependency down")

		start := time.Now() // the bubble's clock
		_, err = actor.Call(ctx, b, func(context.Context) (int, error) { return 0, errDown })
		if err != errDown {
			t.Fatal(err)
		}
		if ev := <-events; ev.To != actor.StateOpen {
			t.Fatalf("event %+v, want open", ev)
		}
		if _, err := actor.Call(ctx, b, func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, actor.ErrOpen) {
			t.Fatalf("Call while open = %v, want ErrOpen", err)
		}

		// Every goroutine is blocked: the bubble's time jumps to the
		// retry timer, which fires.
		ev := <-events
		if ev.To != actor.StateHalfOpen || ev.At.Sub(start) != 30*time.Second {
			t.Fatalf("event %+v, want half-open 30s after the trip", ev)
		}
		if _, err := actor.Call(ctx, b, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		if ev := <-events; ev.To != actor.StateClosed {
			t.Fatalf("event %+v, want closed", ev)
		}
		synctest.Wait() // the goroutine that logged the transitions is done
	})
}
