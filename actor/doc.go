// Package actor is a circuit breaker built as an actor: each [Breaker] has
// one sequential event loop that owns the breaker's state. The loop runs
// only while it has work, on the goroutine that brought it (an idle breaker
// has no goroutine at all).
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
// The loop is the only writer of the state machine (state, generation,
// consecutive failures, the probe). Callers hand it messages through a
// lock-free mailbox; timers come from a [clock.Clock] (AfterFunc) and post
// to the mailbox too, so tests drive time with clock.NewMock (or a
// testing/synctest bubble) and need no sleeps. No mutex guards breaker
// state.
//
// Idle breakers hibernate: the loop has no goroutine of its own. The
// caller whose message finds the breaker idle runs the loop itself: its own
// step first, then whatever other callers queued meanwhile (a few, then it
// hands the rest to a fresh goroutine), and the breaker sleeps again when
// the mailbox is empty. An open breaker sleeps too: its retry timer lives
// in the clock and wakes it. So [New] starts no goroutine, a breaker costs
// a few hundred bytes however long it idles, it needs no [Breaker.Stop],
// and one that is no longer referenced is garbage collected (its
// subscriptions are then closed). loop.go explains why there is never more
// than one executor and why no message can be stranded.
//
// The loop publishes an immutable snapshot of the state after every step.
// The hot path reads that snapshot and does not wait for the loop: in the
// closed state a permit is granted from the snapshot, an open breaker refuses
// from it (one shared [*OpenError] per open period: no clock read, no
// allocation), and a success reported while the snapshot says "closed, no
// failures" is applied at that read, since it cannot change any state. Only
// what can change the state goes to the loop: failures, a success that ends
// a run of failures, and everything in half-open. See loop.go for why this
// cannot change any outcome.
//
// A clean [Call] in the closed state writes one counter. A breaker busy
// from several CPUs at once (thousands of clean calls a second) moves that
// counter to one per P, 128 bytes apart, so that the CPUs do not pass its
// cache line back and forth on every call; it then costs GOMAXPROCS × 128
// bytes more (at most 8 KiB). To tell, every 256th clean call notes the P
// it runs on and the runtime's monotonic time (never the breaker's clock),
// which costs a breaker 64 bytes from its 256th clean call on. See
// spread.go.
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
//     counts as a failure. Due timers come first: once the breaker's clock
//     has reached a deadline, the next step applies it before anything
//     else, so a probe reported late is refused even if the timer's firing
//     has not arrived yet.
//   - A caller that gave up is not blamed: an error reported while the
//     call's context is done with context.Canceled is Ignored, whatever it
//     says and before any classifier. An expired deadline stays a Failure:
//     the dependency did not answer in the time it was given.
//   - A panic in fn, in a [Validate] function or in the classifier counts as
//     one Failure (in [Call] and in [Permit.Report] alike) and goes on with
//     its own value: no permit is left outstanding by a panic.
//   - Reports from permits granted before the latest transition are stale
//     and change nothing; a permit counts at most once.
//   - When [Permit.Report] returns, its effect is visible: if it tripped the
//     breaker, State says open, the next Permit is refused and the Open event
//     is already receivable. A timer-driven transition arms its next timer
//     before it publishes its event.
//   - Subscribers never block the loop. Each has a buffer of
//     [SubscriberBuffer] events; one that falls further behind loses the
//     oldest, and the gap shows in [Event].Seq.
//   - [Breaker.Stop] returns once no goroutine of the breaker remains and no
//     step is executing; then every Permit and Call returns [ErrStopped] and
//     subscriptions are closed. An idle breaker needs no Stop.
//   - [Breaker.Counts] is exact once the calls it counts have returned (a
//     [Call] counts its request when it returns: one atomic add per clean
//     call).
//   - Bad input (invalid options, nil permits, nil functions, a nil context)
//     gets an error or a documented behaviour, never a panic.
//
// # Logging
//
// The breaker logs through log/slog (the logger of [WithLogger], by default
// slog.Default()), always with the attribute "breaker" set to its name:
//
//   - transitions are logged by a goroutine the breaker starts for the
//     purpose (one at a time, in order, ending when nothing is left to log;
//     never the loop): Warn when the breaker opens, Info when it moves to
//     half-open and when it closes, after the transition is published;
//   - the goroutine that reports an outcome (the caller of Permit.Report or
//     Call) logs its classification: Info for an error ignored because of
//     [WithAllowedErrors], [WithFailureErrors] or a [WithClassifier] that said
//     Ignored, Debug for a counted failure and for an ignored
//     context.Canceled (or any error of a caller whose context was
//     canceled).
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
