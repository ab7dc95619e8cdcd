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
