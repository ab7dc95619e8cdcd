package actor

import (
	"sync"
	"sync/atomic"
	"time"
)

// The messages the loop serves. Every message goes through the breaker's
// mailbox (see loop.go), in arrival order: permit requests, reports,
// controls, subscriptions, timer firings and Stop. A message that needs an
// answer carries a reply channel of capacity 1, so the executor's reply
// never blocks; a sender that ran the loop itself finds its own reply
// already there (or, for a report it applied inline, needs no message at
// all).

type requestKind uint8

const (
	permitReq      requestKind = iota + 1 // half-open with the probe free: only the loop may hand it out
	reportReq                             // an outcome (or a release) that may change state
	subscribeReq                          // add sub
	unsubscribeReq                        // remove sub and close its channel
	stopReq                               // Breaker.stopping is set: shut down if not yet done
	controlReq                            // Trip (and the operator's controls): a transition from outside
	timerReq                              // the timer armed for seq fired
)

// controlOp says what a controlReq asks of the machine.
type controlOp uint8

const (
	tripOp      controlOp = iota + 1 // open a closed breaker as if its own rule had fired
	forceOpenOp                      // any state -> forced open
	disableOp                        // any state -> disabled
	resetOp                          // any state -> closed, clearing the run, the window and the backoff
)

// A permit request's state, so that a caller that gives up and the executor
// agree on whether it was served (see loop.go).
const (
	queued    uint32 = iota
	served           // the executor took it: an answer is on its way
	abandoned        // its caller gave up first: skipped
)

type request struct {
	next *request // the mailbox's link; written by the sender before its push, read by the executor
	kind requestKind

	ticket  ticket        // reportReq
	outcome Outcome       // reportReq
	openFor time.Duration // reportReq: the dependency's own open period (Retry-After); 0: the retry timer
	applied bool          // reportReq: the answer
	// answered is locked by a report's sender before it posts it and
	// unlocked by the executor once applied is set: the sender waits by
	// locking it again. Not a channel: report requests are recycled
	// through a sync.Pool, and a channel made inside a testing/synctest
	// bubble must not be used outside it (a sync.Mutex belongs to no
	// bubble).
	answered sync.Mutex

	op     controlOp // controlReq
	reason string    // controlReq: Event.Reason

	seq uint64 // timerReq: the timerSeq the timer was armed for

	sub *subscriber // subscribeReq, unsubscribeReq

	state   atomic.Uint32    // permitReq: queued, served or abandoned
	permitc chan permitReply // permitReq

	reply chan bool // controlReq: true unless stopped; subscriptions, stopReq: served
}

// permitReply is a granted ticket, a refusal, or word that the breaker is
// stopped.
type permitReply struct {
	ticket  ticket
	refusal *OpenError // nil: granted
	stopped bool
}

// release is the outcome a caller reports for a probe it was granted but
// gave up on (its context was done while it waited): the probe is freed,
// nothing is counted.
const release Outcome = -1

// reports recycles report requests. A request goes back only once its
// answer has been read (the executor does not touch it after answering).
var reports = sync.Pool{New: func() any { return &request{kind: reportReq} }}
