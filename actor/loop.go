package actor

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// This file holds the loop: the sequential executor around the machine (a
// plain struct, machine.go). It takes messages (permit requests, reports,
// controls, subscriptions, timer firings, Stop) from the mailbox one at a
// time in arrival order, feeds them to the machine, arms its timer, and
// publishes its snapshot and events.
//
// # Who runs the loop: hibernation
//
// A breaker has no goroutine of its own. The loop runs on whichever
// goroutine activates it, only while messages are pending:
//
//	sender:   pending.Add(1) ──┬─ 0→1: it is THE executor ──► serve its own message,
//	                           │                              then the queue, in order;
//	                           │                              pending.Add(-1) per message;
//	                           │                              at 0: done, the breaker sleeps
//	                           └─ ≥1→more: push to the mailbox, wait for the reply
//
// pending counts the messages announced and not yet served. A sender
// announces its message (Add) before it pushes it. The sender whose Add
// took pending from 0 to 1 is the executor; only a decrement that takes it
// from 1 to 0 ends an activation. So:
//
//   - There is never more than one executor: between a 0→1 and the next 1→0
//     every Add returns at least 2.
//   - No message is ever stranded. A sender that found pending ≥ 1 counted
//     its message in before the executor could reach 0, and the executor
//     does not stop until it has served as many messages as were counted,
//     this one included. (It may find the mailbox empty for a moment: the
//     sender is between its Add and its push. It yields until the message
//     is there.)
//   - Arrival order is the mailbox's order: a lock-free stack (a push is one
//     compare-and-swap) that the executor empties at once and reverses, so
//     every batch comes out first-in first-out and batches follow each
//     other. The executor's own message comes first: it was announced when
//     nothing else was.
//   - Everything the executor owns (the machine, the timer, the snapshots,
//     the subscriber list) passes from one executor to the next through
//     pending: the 1→0 decrement of one activation is observed by the 0→1
//     increment of the next (sync/atomic operations are synchronizing), and
//     a message's fields reach the executor through the mailbox's
//     compare-and-swap. No mutex guards any of it.
//
// The executor is usually the caller itself: a failure reported on a
// sleeping breaker is applied on the reporter's goroutine, with no channel
// round trip and no goroutine switch (about the cost of the step). A caller
// that became the executor serves its own message first and then at most
// serveOthers queued ones, replying to each through its capacity-1 channel;
// if more are left it hands the loop to a fresh goroutine (a go statement
// passes the role: pending still counts the messages left), so a caller
// never works for others for long. A timer's goroutine that becomes the
// executor serves until the queue is empty.
//
// # Timers
//
// The machine's deadline is armed with clock.AfterFunc, whose function
// posts a timer message (carrying the timerSeq it was armed for, so that a
// firing for a deadline already handled is dropped) like any sender. An
// armed timer needs no goroutine until it fires (the real clock's timers live
// in the runtime; the mock's run their function in a fresh goroutine at Add,
// never inside AfterFunc), so an open breaker sleeps too; its timer keeps
// it reachable until it fires or is stopped. Due timers come first
// (semantic 5): every machine step first applies the deadline if the
// breaker's clock has reached it, whether or not the firing has arrived, so
// a late probe report returns false and the timeout is the Failure. Only
// while a deadline is armed does a step read the clock for that.
//
// # Stop
//
// Stop sets stopping, then posts a stop message and waits for its reply.
// Stop goes first: the executor checks stopping before every message and,
// the first time it sees it, shuts down (stops the timer, publishes the
// stopped snapshot, closes the subscriptions); from then on it refuses
// every message (permits get ErrStopped, reports false), callers queued
// before Stop included. Stop then waits until no executor runs (pending is
// 0), no timer function is inside the breaker (firing is 0), and the
// transitions' log records are written. Callers check the stopped snapshot
// before they post, so only callers that read it just before it changed can
// still arrive; they are refused. A timer function that runs after Stop
// sees stopping and returns.
//
// # A permit request whose context ends
//
// A caller waiting for the loop's answer to its permit request selects on
// the reply and its context. When the context ends first it marks the
// request abandoned by compare-and-swap; the executor marks it served the
// same way before it hands out anything. Exactly one wins: an abandoned
// request is skipped (nothing granted, nothing counted); a served one is
// answered promptly, and a probe it granted is released by the caller that
// gave up (semantic 10).
//
// # Logging
//
// The loop never calls a log handler. A step that made a transition
// queues its record on the breaker's logQueue; the first record of a burst
// starts one goroutine that logs the queue in order and ends when it is
// empty. A slow handler delays that goroutine, and Stop (which waits for the
// records), nothing else.
//
// # The test hook
//
// With a step hook (tests only, withGate), the loop always runs on a fresh
// goroutine and the sender waits for its reply, as with a goroutine of its
// own: a test can then hold the loop between steps while callers wait for
// it, give up, or Stop.
//
// # Why callers may skip the loop
//
// The loop publishes its state's snapshot (a fresh one, or an equal one it
// published before) after every step that changes anything, before it
// replies or publishes an event, so the snapshot a caller reads is the
// machine's state at some instant between two steps. A caller acts on it
// only where the outcome cannot depend on what the loop does next:
//
//   - closed: any number of permits may be out, so granting one from the
//     snapshot is what the loop would do; the permit carries the snapshot's
//     generation, so a transition the loop makes meanwhile makes it stale,
//     exactly as if the loop had granted it just before that transition;
//   - open, or half-open with the probe out: the loop would refuse too (a
//     due timer the loop has not handled yet may make that refusal late;
//     semantic 5 allows it: refusing from the snapshot reads no clock);
//   - for a permit of the snapshot's generation while it says closed, an
//     Ignored, or a Success when there are no consecutive failures: it
//     changes no state (ignored outcomes never do, and the run is already 0),
//     so it takes effect at that read, ordered before whatever the loop does
//     next; only its counter is bumped;
//   - a ticket of an older generation than the snapshot is stale for good,
//     because generations only grow.
//
// Everything else (failures, a success that ends a run of failures, any
// probe, a permit while half-open with the probe free) goes to the loop, and
// the caller waits for its reply. TestFastPathSuccessIsOrderedBeforeLoop
// shows the ordering.
//
// policy: with WithFailureRate, such a success is also added to the window's
// current bucket, one atomic add and no clock read; when no bucket is
// current (before the first outcome, or once the clock passed the bucket's
// end) it goes to the loop, which places it by the clock. A disabled
// breaker grants from the snapshot like a closed one and applies Ignored and
// clean Successes there; a Failure, or a Success that ends a run, goes to
// the loop, which keeps the run (ConsecutiveFailures) though nothing trips.
// window.go says why buckets
// end by a timer of their own rather than the loop's.

// serveOthers bounds how many queued messages a caller that became the
// executor serves after its own before it hands the loop to a fresh
// goroutine. Serving a few inline is cheaper than a goroutine (those
// callers are waiting anyway); the bound keeps a caller from working for
// others for long under a storm of failures. Measured with mixed traffic
// from 16 goroutines on 2 CPUs (a shared, noisy machine): handing over at
// once (0) cost 155-173 ns/op, 8 cost 45-115, 64 cost 112-119.
const serveOthers = 8

// post hands req to the loop. If the breaker was idle, the calling goroutine
// becomes the executor and runs the loop before post returns (with the test
// hook, a fresh goroutine does); otherwise req waits in the mailbox. Either
// way req is served exactly once, and its reply (if it has a channel) is
// sent there.
func (b *Breaker) post(req *request) {
	if b.pending.Add(1) != 1 {
		b.push(req)
		return
	}
	if b.stepHook != nil {
		b.push(req)
		go b.run(nil, nil, -1)
		return
	}
	b.run(req, nil, serveOthers)
}

// push puts req on the mailbox. Only after pending counts it.
func (b *Breaker) push(req *request) {
	for {
		head := b.mailbox.Load()
		req.next = head
		if b.mailbox.CompareAndSwap(head, req) {
			return
		}
	}
}

// take empties the mailbox and returns its messages oldest first.
func (b *Breaker) take() *request {
	var fifo *request
	for req := b.mailbox.Swap(nil); req != nil; {
		next := req.next
		req.next = fifo
		fifo, req = req, next
	}
	return fifo
}

// run is the loop: the executor serves first (if not nil), then batch (a
// list already taken from the mailbox, oldest first), then queued messages
// in arrival order, one pending count each, until pending is 0. others < 0:
// no bound; otherwise, after first, it serves at most others more and then
// hands the rest to a fresh goroutine.
func (b *Breaker) run(first, batch *request, others int) {
	req := first
	for {
		if req == nil {
			for batch == nil {
				if batch = b.take(); batch == nil {
					runtime.Gosched() // a sender between its Add and its push
				}
			}
			req, batch = batch, batch.next
			req.next = nil
		}
		if b.stepHook != nil {
			b.stepHook() // tests only: hold the step about to run
		}
		b.serve(req)
		if b.pending.Add(-1) == 0 {
			return // nothing queued: the breaker sleeps
		}
		req = nil
		if others == 0 {
			go b.run(nil, batch, -1) // the rest: pending still counts it
			return
		}
		others--
	}
}

// serve carries out one message. Once Stop has been called, it shuts the
// breaker down (the first time) and refuses the message instead: whatever
// callers were queued get ErrStopped, not an answer from a breaker about
// to stop.
func (b *Breaker) serve(req *request) {
	if b.stopping.Load() {
		if !b.isDown() {
			b.shutdown()
		}
		b.refuse(req)
		return
	}
	switch req.kind {
	case permitReq:
		if !req.state.CompareAndSwap(queued, served) {
			return // abandoned: its caller gave up and went
		}
		now := b.m.clock.Now()
		b.applyDue(now)
		t, refusal := b.m.acquire(now)
		b.commit(now, nil)
		req.permitc <- permitReply{ticket: t, refusal: refusal}

	case reportReq:
		req.applied = b.settleStep(req.ticket, req.outcome, req.openFor)
		req.answered.Unlock()

	case controlReq:
		now := b.m.clock.Now()
		b.applyDue(now)
		ev := b.m.control(now, req.op, req.reason)
		b.commit(now, ev)
		req.reply <- true

	case timerReq:
		if req.seq == b.armedSeq && b.timer != nil {
			b.timer = nil
			b.timerFired()
		}

	case subscribeReq:
		b.addSub(req.sub)
		req.reply <- true

	case unsubscribeReq:
		b.removeSub(req.sub)
		req.reply <- true

	case stopReq:
		// Not stopping: a stop message always comes after stopping is set.
		req.reply <- true
	}
	b.afterStep()
}

// settleStep applies an outcome (or a release) for a ticket: the report's
// step, also run inline by a reporter that activated a sleeping breaker.
func (b *Breaker) settleStep(t ticket, o Outcome, openFor time.Duration) bool {
	var now time.Time // read only when it matters: a clock read costs as much as the rest of the step
	if !b.m.deadline.IsZero() || b.m.needsTime(t, o) {
		now = b.m.clock.Now()
		b.applyDue(now)
	}
	applied, ev := b.m.settle(now, t, o, openFor)
	if applied && o != release {
		b.counts.applied(o)
	}
	b.commit(now, ev)
	return applied
}

// applyDue applies the armed deadline first if the breaker's clock has
// reached it, whether or not its timer's firing has arrived (semantic 5:
// due timers come first).
func (b *Breaker) applyDue(now time.Time) {
	if b.m.deadline.IsZero() || now.Before(b.m.deadline) {
		return
	}
	if b.timer != nil {
		b.timer.Stop() // its firing, if already on its way, is dropped as stale
		b.timer = nil
	}
	b.timerFired()
}

func (b *Breaker) timerFired() {
	ev, failed := b.m.timerFired()
	if failed {
		b.counts.failures.Add(1)
	}
	b.commit(b.m.clock.Now(), ev)
}

// fire is the timer's function: it posts the firing for the deadline armed
// as seq. firing lets Stop wait for it; one that finds the breaker stopping
// just returns.
func (b *Breaker) fire(seq uint64) {
	b.firing.Add(1)
	defer b.firing.Add(-1)
	if b.stopping.Load() {
		return
	}
	b.post(&request{kind: timerReq, seq: seq})
}

// commit makes a step visible, in the order semantic 7 needs: arm the timer,
// then publish the snapshot, then the event. The caller replies after it.
func (b *Breaker) commit(now time.Time, ev *Event) {
	if b.m.timerSeq != b.armedSeq {
		b.arm(now)
	}
	if b.counts.consecutive.Load() != b.m.failures {
		b.counts.consecutive.Store(b.m.failures)
	}
	if next := b.m.snapshot(); next != *b.cur {
		// A published snapshot is never written, so one published before
		// can be published again: a run of failures that a success ends
		// goes back to the previous snapshot without allocating.
		if b.prev != nil && *b.prev == next {
			b.cur, b.prev = b.prev, b.cur
		} else {
			s := new(snapshot)
			*s = next
			b.cur, b.prev = s, b.cur
		}
		if b.prev.gen != b.cur.gen {
			b.prev = nil // generations only grow: it cannot come back
		}
		b.snap.Store(b.cur)
	}
	if ev != nil {
		// Group hooks (onEvent) go with the subscribers: on the executing
		// goroutine, never blocking.
		if b.onEvent != nil {
			b.onEvent(*ev)
		}
		b.subs.offer(*ev)
		if b.logs == nil {
			b.logs = new(logQueue)
		}
		if b.logs.push(*ev) {
			b.logs.start = true
		}
	}
}

// afterStep starts the goroutine that logs the step's transitions, if
// they are the first of a burst: after the step, so that the record is
// logged after the transition is published and its cause answered.
func (b *Breaker) afterStep() {
	if b.logs != nil && b.logs.start {
		b.logs.start = false
		go b.logs.drain(b)
	}
}

// arm replaces the timer with a fresh one for m.deadline (or none). A fresh
// timer per arming, never Reset.
func (b *Breaker) arm(now time.Time) {
	b.armedSeq = b.m.timerSeq
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if b.m.deadline.IsZero() {
		return
	}
	seq := b.armedSeq
	b.timer = b.m.clock.AfterFunc(b.m.deadline.Sub(now), func() { b.fire(seq) })
}

// refuse answers a message that arrives once Stop has been called.
func (b *Breaker) refuse(req *request) {
	switch req.kind {
	case permitReq:
		if req.state.CompareAndSwap(queued, served) {
			req.permitc <- permitReply{stopped: true}
		}
	case reportReq:
		req.applied = false
		req.answered.Unlock()
	case controlReq, stopReq:
		req.reply <- false
	case subscribeReq, unsubscribeReq:
		req.sub.close() // Subscribe after Stop returns a closed channel
		req.reply <- false
	}
}

// shutdown stops the timer, publishes the final snapshot and closes every
// subscription.
func (b *Breaker) shutdown() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	final := b.m.snapshot()
	final.stopped = true
	final = derive(final)
	b.snap.Store(&final)
	b.subs.closeAll()
}

// isDown reports whether shutdown has run: only it publishes a stopped
// snapshot. Executor only.
func (b *Breaker) isDown() bool { return b.snap.Load().stopped }

// quiesce waits, after Stop's message was served, until no executor runs
// and no timer function is inside the breaker. Only callers that read the
// snapshot just before it said stopped can still post, once each, and a
// refusal takes a moment: this spins briefly at most.
func (b *Breaker) quiesce() {
	for b.pending.Load() != 0 || b.firing.Load() != 0 {
		runtime.Gosched()
	}
}

// logQueue carries transition records from the loop to the goroutine that
// logs them, one goroutine at a time, in order. The loop only appends under
// mu; it never waits for a handler. A record waits in the queue (about 80
// bytes) for as long as the handler takes with the records before it.
type logQueue struct {
	mu      sync.Mutex
	pending []Event
	running bool           // a goroutine is logging (in drain)
	start   bool           // owned by the executor, not mu: the step queued the first record of a burst; afterStep starts drain
	wg      sync.WaitGroup // counts the goroutine in drain; Stop waits for it
}

// push queues ev and reports whether the caller is to start drain: no other
// goroutine is logging. Called only by the executor, so every wg.Add
// happens before Stop's message is served, and Stop's wg.Wait after that.
func (q *logQueue) push(ev Event) (drain bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, ev)
	if q.running {
		return false
	}
	q.running = true
	q.wg.Add(1)
	return true
}

// drain logs queued records until the queue is empty.
func (q *logQueue) drain(b *Breaker) {
	emptied := false
	defer func() {
		if !emptied {
			// The handler ended the goroutine (runtime.Goexit): the next
			// transition starts a new logger, which logs what is left.
			q.mu.Lock()
			q.running = false
			q.mu.Unlock()
		}
		q.wg.Done()
	}()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			// Under the lock that push takes: a record queued after this
			// finds running false and is logged by its own pusher.
			q.pending, q.running, emptied = nil, false, true
			q.mu.Unlock()
			return
		}
		ev := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()
		logTransition(b, &ev)
	}
}

// logTransition logs ev: Warn for opening, Info otherwise.
func logTransition(b *Breaker, ev *Event) {
	level := slog.LevelInfo
	if ev.To == StateOpen {
		level = slog.LevelWarn
	}
	logger := b.log()
	ctx := context.Background()
	if !logger.Enabled(ctx, level) {
		return
	}
	logger.LogAttrs(ctx, level, "circuit breaker "+transitionVerb(ev.To),
		slog.String("breaker", ev.Breaker),
		slog.String("from", ev.From.String()),
		slog.String("reason", ev.Reason),
		slog.Uint64("seq", ev.Seq),
	)
}

func transitionVerb(to State) string {
	switch to {
	case StateOpen:
		return "opened"
	case StateHalfOpen:
		return "half-opened"
	}
	return "closed"
}
