package actor

// The messages the loop receives. Each request that needs an answer carries
// a reply channel of capacity 1, so the loop's reply never blocks.
// Timer firings arrive on the armed clock.Timer's channel; Stop is a bare
// signal on Breaker.stop.

// permitRequest asks for a permit when the snapshot cannot answer alone:
// half-open with the probe free, where only the loop may hand out the probe.
type permitRequest struct {
	reply chan permitReply
}

// permitReply is a granted ticket, or a refusal.
type permitReply struct {
	ticket  ticket
	refusal *OpenError // nil: granted
}

// release is the outcome a caller reports for a probe it was granted but
// gave up on (its context was done while it waited): the probe is freed,
// nothing is counted.
const release Outcome = -1

// reportRequest applies an outcome (or a release) for a ticket.
type reportRequest struct {
	ticket  ticket
	outcome Outcome
	reply   chan bool // true: applied
}

// subscribeRequest adds a subscriber, or with cancel set removes it and
// closes its channel before closing done.
type subscribeRequest struct {
	sub    *subscriber
	cancel bool
	done   chan struct{} // cancel only: closed once the channel is closed
}
