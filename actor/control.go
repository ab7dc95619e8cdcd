package actor

// Transitions asked for from outside the breaker's own rules: their events
// have External set.

// Trip opens a closed breaker as if its own rule had fired: the usual retry
// timer (and backoff), then half-open and a probe of its own, with
// Event.Reason = reason (a default when reason is empty) and Event.External
// set. It does nothing when the breaker is not closed. Like Report, it is
// synchronous: when it returns, the breaker is open, its event receivable and
// its timer armed. It returns [ErrStopped] after Stop. Trip is how a shared
// view (see the redisbreaker module) opens a replica's breaker without
// waiting for its own failures.
func (b *Breaker) Trip(reason string) error {
	if reason == "" {
		reason = "tripped from outside"
	}
	return b.control(tripOp, reason)
}

// ForceOpen is the operator's kill switch: it moves the breaker, from any
// state, to [StateForcedOpen], where every permit is refused with an
// [*OpenError] whose State is StateForcedOpen and whose Until is zero (no
// timer runs, so RetryAfter is 0), counted in Counts.Rejected, until [Breaker.Reset]
// (or [Breaker.Disable]). Reports of permits granted before it are stale. It
// publishes one event (Reason "forced open", External set) when the state
// changes, none when the breaker is already forced open. Like Report, it is
// synchronous: when it returns, State says forced-open and the next Permit is
// refused. It returns [ErrStopped] after Stop, and an error wrapping
// [ErrInvalid] for a nil Breaker.
func (b *Breaker) ForceOpen() error { return b.control(forceOpenOp, "forced open") }

// Disable is the operator's switch for a breaker that refuses wrongly: it
// moves the breaker, from any state, to [StateDisabled], where every permit
// is granted (from the snapshot, as in the closed state) and every outcome is
// counted in Counts, but nothing trips and no timer runs, until
// [Breaker.Reset] (or [Breaker.ForceOpen]). Counts.ConsecutiveFailures goes
// on counting the run of failures since the last success (the run it had
// when disabled included), so an operator sees whether the dependency has
// recovered before calling Reset, which clears it; a failure while disabled
// therefore goes to the breaker's loop, as in closed, rather than being one
// atomic add. Reports of permits granted before it are stale. It publishes
// one event (Reason "disabled", External set) when the state changes.
// Synchronous like ForceOpen; [ErrStopped] after Stop.
func (b *Breaker) Disable() error { return b.control(disableOp, "disabled") }

// Reset moves the breaker, from any state, to closed (Reason "reset",
// External set), and clears the consecutive failures, the failure-rate window
// and the backoff; Counts stay as they are but for ConsecutiveFailures, which
// goes to 0. Reports of permits granted before the transition are stale. On
// a closed breaker it publishes nothing and starts no new generation (permits
// already granted stay valid), but still clears. Synchronous like ForceOpen;
// [ErrStopped] after Stop.
func (b *Breaker) Reset() error { return b.control(resetOp, "reset") }

// control asks the loop for an external transition and waits until it is
// visible.
func (b *Breaker) control(op controlOp, reason string) error {
	if !b.usable() {
		return errNilBreaker
	}
	if b.snap.Load().stopped {
		return ErrStopped
	}
	req := &request{kind: controlReq, op: op, reason: reason, reply: make(chan bool, 1)} // buffered: the loop's reply never blocks
	if !b.send(req) || !<-req.reply {
		return ErrStopped
	}
	return nil
}
