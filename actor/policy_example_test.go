package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

var errUnavailable = errors.New("503 service unavailable")

// A busy service trips on the rate of failures, not on a run of them: here
// at least 20 calls in the last 10 seconds with 40% or more failing. Scattered
// errors, even a few in a row, leave it closed.
func ExampleWithFailureRate() {
	b, err := actor.New(actor.WithName("search"), actor.WithFailureRate(0.4, 20, 10*time.Second),
		actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	events, cancel := b.Subscribe()
	defer cancel()

	call := func(fail bool) {
		actor.Call(context.Background(), b, func(context.Context) (string, error) {
			if fail {
				return "", errUnavailable
			}
			return "ok", nil
		})
	}
	for i := range 30 {
		call(i%10 == 0 || i == 11) // 4 failures, two of them in a row
	}
	fmt.Println("after 4 failures in 30 calls:", b.State())
	for range 20 {
		call(true)
	}
	ev := <-events
	fmt.Println(ev.To, "because", ev.Reason)
	// Output:
	// after 4 failures in 30 calls: closed
	// open because failure rate 40.9% (18 of 44) over 10s
}

// Backoff and jitter: each time the breaker opens again without having
// closed, it stays open twice as long (up to a minute), and each period is
// drawn from its last quarter so that many breakers that opened together do
// not all probe at the same instant.
func ExampleWithBackoff() {
	mock := clock.NewMock() // the example's clock; production uses the real one
	b, err := actor.New(actor.WithClock(mock), actor.WithAllowedFails(1), actor.WithRetryTimer(10*time.Second),
		actor.WithBackoff(time.Minute), actor.WithJitter(0.25),
		actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	events, cancel := b.Subscribe()
	defer cancel()

	p, _ := b.Permit(context.Background())
	p.ReportOutcome(actor.Failure)
	<-events // open
	for opening := 1; opening <= 5; opening++ {
		_, err := b.Permit(context.Background())
		var oe *actor.OpenError
		errors.As(err, &oe)
		d := oe.RetryAfter()
		full := min(10*time.Second<<(opening-1), time.Minute)
		fmt.Printf("opening %d: open for %v of %v\n", opening, roughly(d, full), full)
		mock.Add(d)
		<-events // half-open, exactly at oe.Until
		probe, _ := b.Permit(context.Background())
		probe.ReportOutcome(actor.Failure) // still failing: open again
		<-events
	}
	// Output:
	// opening 1: open for 75-100% of 10s
	// opening 2: open for 75-100% of 20s
	// opening 3: open for 75-100% of 40s
	// opening 4: open for 75-100% of 1m0s
	// opening 5: open for 75-100% of 1m0s
}

func roughly(d, full time.Duration) string {
	if d >= full*3/4 && d <= full {
		return "75-100%"
	}
	return d.String()
}

// The kill switch: an operator forces a breaker open (every call refused at
// once, no retry timer, until Reset), or disables it when it refuses wrongly
// (every call goes through and is counted, nothing trips). Reset hands
// control back to the breaker's own rules.
func ExampleBreaker_ForceOpen() {
	b, err := actor.New(actor.WithName("payments"), actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	events, cancel := b.Subscribe()
	defer cancel()

	charge := func(context.Context) (string, error) { return "charged", nil }

	b.ForceOpen()
	_, err = actor.Call(context.Background(), b, charge)
	var oe *actor.OpenError
	fmt.Println(errors.As(err, &oe), oe.State, oe.RetryAfter())

	b.Disable()
	for range 5 {
		actor.Call(context.Background(), b, func(context.Context) (string, error) { return "", errUnavailable })
	}
	fmt.Println(b.State(), b.Counts().Failures)

	b.Reset()
	for range 3 {
		ev := <-events
		fmt.Printf("%v -> %v (%s, external %v)\n", ev.From, ev.To, ev.Reason, ev.External)
	}
	// Output:
	// true forced-open 0s
	// disabled 5
	// closed -> forced-open (forced open, external true)
	// forced-open -> disabled (disabled, external true)
	// disabled -> closed (reset, external true)
}
