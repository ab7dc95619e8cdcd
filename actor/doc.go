// Package actor is a circuit breaker built as an actor: each [Breaker] is one
// goroutine that owns the breaker's state and runs one sequential event loop.
//
// A circuit breaker protects a service from a failing dependency. After a run
// of failures it opens and refuses calls at once; when its retry timer
// elapses it lets a single probe through (half-open); the probe's outcome
// closes it again or re-opens it.
//
// # Using it
//
// Wrap a function with [Call] (or [Wrap] it once and call the result):
//
//	user, err := actor.Call(ctx, b, fetchUser, actor.Validate(func(r *http.Response) bool {
//		return r.StatusCode < 500
//	}))
//	if errors.Is(err, actor.ErrOpen) {
//		// refused fast: fn did not run
//	}
//
// or ask for a [Permit] and report the outcome yourself with [Permit.Report]
// or [Permit.ReportOutcome]. State changes arrive as [Event] values on the
// channel returned by [Breaker.Subscribe].
//
// # The actor design
//
// The loop goroutine is the only writer of the state machine (state,
// generation, consecutive failures, the probe). Callers talk to it through
// channels; timers come from a [clock.Clock] and post to the loop, so tests
// drive time with clock.NewMock and need no sleeps. No mutex guards breaker
// state. After a transition the loop queues the transition's log record and
// carries on in a fresh goroutine; the goroutine it leaves logs the queue.
// So the loop never calls a log handler, and its stack stays at the 2 KiB
// minimum (the garbage collector does not shrink a grown stack back while a
// quarter of it is in use, as it is for a goroutine parked in a receive).
// There is one loop goroutine at any time.
//
// The loop publishes an immutable snapshot of the state after every step.
// The hot path reads that snapshot and does not wait for the loop: in the
// closed state a permit is granted from the snapshot, an open breaker refuses
// from it, and a success reported while the snapshot says "closed, no
// failures" is applied at that read, since it cannot change any state. Only
// what can change the state goes to the loop: failures, a success that ends
// a run of failures, and everything in half-open. See loop.go for why this
// cannot change any outcome.
//
// # Guarantees
//
//   - The AllowedFails-th consecutive failure opens the breaker; a success
//     resets the run; ignored outcomes change nothing.
//   - Open refuses every permit with an [*OpenError] whose RetryAfter is the
//     time left on the breaker's clock; fn does not run.
//   - The retry timer moves the breaker to half-open when it fires, not on
//     the next call, and the event is published at that moment.
//   - In half-open exactly one permit (the probe) is outstanding at a time,
//     whatever the concurrency. A probe not reported within the probe timeout
//     counts as a failure.
//   - Reports from permits granted before the latest transition are stale
//     and change nothing; a permit counts at most once.
//   - When [Permit.Report] returns, its effect is visible: if it tripped the
//     breaker, State says open, the next Permit is refused and the Open event
//     is already receivable. A timer-driven transition arms its next timer
//     before it publishes its event.
//   - Subscribers never block the loop. Each has a buffer of
//     [SubscriberBuffer] events; one that falls further behind loses the
//     oldest, and the gap shows in [Event].Seq.
//   - [Breaker.Stop] returns after the loop goroutine has exited; then every
//     Permit and Call returns [ErrStopped] and subscriptions are closed.
//   - Bad input (invalid options, nil permits, nil functions, a nil context)
//     gets an error or a documented behaviour, never a panic.
//
// # Logging
//
// The breaker logs through log/slog (the logger of [WithLogger], by default
// slog.Default()), always with the attribute "breaker" set to its name:
//
//   - transitions are logged by a goroutine of the breaker other than the
//     loop (the one the loop leaves when it hands over after a transition),
//     one at a time and in order: Warn when the breaker opens, Info when it
//     moves to half-open and when it closes, after the transition is
//     published and its cause answered;
//   - the goroutine that reports an outcome (the caller of Permit.Report or
//     Call) logs its classification: Info for an error ignored because of
//     [WithAllowedErrors], [WithFailureErrors] or a [WithClassifier] that said
//     Ignored, Debug for a counted failure and for an ignored
//     context.Canceled.
//
// A slow log handler delays only the goroutine that logs: a caller that logs
// a classification is delayed itself, and a slow transition record delays
// the records queued after it (they wait in memory, about 80 bytes each),
// never the loop. Failure reports, half-open permits, timer transitions and
// subscriptions go on while a handler hangs. Only [Breaker.Stop] waits for
// it: it returns once every transition is logged, so that no goroutine of the
// breaker outlives it. So a log handler must not call Stop of the breaker it
// logs for.
package actor
