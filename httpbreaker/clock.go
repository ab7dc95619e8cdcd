package httpbreaker

import (
	"context"
	"log/slog"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// clockNow returns a reader of the clock the group's breakers run on
// (actor.WithClock among groupOpts, else the real clock), to read
// Retry-After dates against it (semantic 24).
//
// actor.Group does not expose its clock, so this asks a breaker: one made
// with the group's breaker options is opened for a century, and its refusal
// is kept. A refusal's RetryAfter() is Until minus its breaker's clock's
// now, so Until - RetryAfter() is that clock's now (for the next hundred
// years). The breaker is stopped at once; its refusal needs no goroutine.
// TODO: replace with the group's clock once actor.Group offers it.
func clockNow(groupOpts []actor.GroupOption) (func() time.Time, error) {
	var opts []actor.Option
	for _, o := range groupOpts {
		if bo, ok := o.(actor.Option); ok {
			opts = append(opts, bo)
		}
	}
	const century = 100 * 365 * 24 * time.Hour
	opts = append(opts, actor.WithAllowedFails(1), actor.WithRetryTimer(century),
		actor.WithLogger(slog.New(slog.DiscardHandler)))
	b, err := actor.New(opts...)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	ctx := context.Background()
	p, err := b.Permit(ctx)
	if err != nil {
		return nil, err
	}
	p.ReportOutcome(actor.Failure)
	_, err = b.Permit(ctx)
	oe, ok := err.(*actor.OpenError)
	if !ok || oe.Until.IsZero() {
		return time.Now, nil // cannot happen with the options above; the real clock is the default
	}
	return func() time.Time { return oe.Until.Add(-oe.RetryAfter()) }, nil
}
