package actor

import (
	"sync"
	"time"
)

// The messages the loop receives. Every request arrives on one channel,
// Breaker.reqc, in arrival order: while no timer is armed the loop waits on
// that channel alone, a plain receive rather than a select, which keeps the
// round trip of a failure report short. Timer firings arrive on the armed
// clock.Timer's channel.
//
// Requests travel as pointers: a receive copies one word, and the frame of a
// loop parked in its receive stays small (an idle breaker is mostly its
// stack). A request that needs an answer carries a reply channel of
// capacity 1, so the loop's reply never blocks.

type requestKind uint8

const (
	permitReq      requestKind = iota + 1 // half-open with the probe free: only the loop may hand it out
	reportReq                             // an outcome (or a release) that may change state
	subscribeReq                          // add sub
	unsubscribeReq                        // remove sub, close its channel, then close done
	stopReq                               // wake the loop: Breaker.stopping is set
	controlReq                            // Trip (and the operator's controls): a transition from outside
)

// controlOp says what a controlReq asks of the machine.
type controlOp uint8

const (
	tripOp      controlOp = iota + 1 // open a closed breaker as if its own rule had fired
	forceOpenOp                      // any state -> forced open
	disableOp                        // any state -> disabled
	resetOp                          // any state -> closed, clearing the run, the window and the backoff
)

type request struct {
	kind requestKind

	ticket  ticket        // reportReq
	outcome Outcome       // reportReq
	openFor time.Duration // reportReq: the dependency's own open period (Retry-After); 0: the retry timer

	op     controlOp // controlReq
	reason string    // controlReq: Event.Reason

	sub  *subscriber   // subscribeReq, unsubscribeReq
	done chan struct{} // unsubscribeReq: closed once sub's channel is closed

	permitReply chan permitReply // permitReq
	reply       chan bool        // reportReq: true if applied; controlReq: true unless stopped
}

// permitReply is a granted ticket, a refusal, or word that the breaker is
// stopping.
type permitReply struct {
	ticket  ticket
	refusal *OpenError // nil: granted
	stopped bool
}

// release is the outcome a caller reports for a probe it was granted but
// gave up on (its context was done while it waited): the probe is freed,
// nothing is counted.
const release Outcome = -1

// reports recycles report requests with their reply channels. A request
// goes back only once its reply has been received (the loop does not touch
// it after replying), so its channel is always empty when reused.
var reports = sync.Pool{New: func() any {
	return &request{kind: reportReq, reply: make(chan bool, 1)} // buffered: the loop's reply never blocks
}}
