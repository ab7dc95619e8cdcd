package actor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// This file holds the breaker's state machine (machine: plain methods, no
// goroutines, time passed in) and the goroutine around it (loop: it receives
// requests and timer firings, feeds them to the machine, arms its timer, and
// publishes its snapshot and events).
//
// Why callers may skip the loop. The loop publishes its state's snapshot
// (a fresh one, or an equal one it published before) after every step that
// changes anything, before it replies or publishes an event,
// so the snapshot a caller reads is the machine's state at some instant
// between two steps. A caller acts on it only where the outcome cannot depend
// on what the loop does next:
//
//   - closed: any number of permits may be out, so granting one from the
//     snapshot is what the loop would do; the permit carries the snapshot's
//     generation, so a transition the loop makes meanwhile makes it stale,
//     exactly as if the loop had granted it just before that transition;
//   - open, or half-open with the probe out: the loop would refuse too;
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

// loop is the goroutine around a machine. All fields are owned by it.
type loop struct {
	b *Breaker
	m *machine

	timer    *clock.Timer
	timerc   <-chan time.Time // nil while no timer is armed
	armedSeq uint64           // m.timerSeq the timer was armed for

	cur, prev *snapshot // the published snapshot; the one before it, while of the same generation
	subs      []*subscriber
	toLog     *Event // the current step's transition, if it made one: queued for logging after the step
}

// run is the loop. After a step that made a transition it queues the
// transition's log record (see logQueue) and hands the loop over to a fresh
// goroutine; the goroutine it leaves logs the queue if no other goroutine is
// logging it. So the loop itself never calls the log handler, and a slow one
// delays nothing but the logging. The hand-over also keeps the loop's stack
// small: the garbage collector halves a stack only while less than a quarter
// of it is in use (counting an 800-byte reserve), which a loop parked in its
// receive exceeds on a 4 KiB stack, so a loop that had grown its stack once
// (a log handler, arming a timer) would keep 4 KiB for as long as the breaker
// lives. Transitions are rare; the hand-over costs about a microsecond. There
// is still one loop goroutine at a time: the old one touches nothing of the
// loop after the go statement.
func (l *loop) run() {
	for {
		if l.b.stepHook != nil {
			l.b.stepHook() // tests only: hold the loop between steps
		}
		var req *request
		if l.timerc == nil {
			req = <-l.b.reqc // idle breakers park here
		} else {
			req = l.nextOrTimer()
		}
		switch l.handle(req) {
		case exit:
			// A timer may have made a transition just as Stop came: it is
			// published, so it is logged too (Stop waits for that).
			drain := l.toLog != nil && l.queueLog()
			b := l.b
			close(b.done) // waiting callers get ErrStopped now; Stop waits for the logging too
			if drain {
				b.logs.drain(b)
			}
			return
		case handOver:
			drain := l.queueLog()
			b := l.b
			go l.run()
			if drain {
				b.logs.drain(b)
			}
			return
		}
	}
}

// queueLog queues the current step's transition for logging, and reports
// whether the calling goroutine is to log the queue.
func (l *loop) queueLog() (drain bool) {
	ev := l.toLog
	l.toLog = nil
	if l.b.logs == nil {
		l.b.logs = new(logQueue)
	}
	return l.b.logs.push(*ev)
}

// What run does after a step.
type afterStep uint8

const (
	carryOn  afterStep = iota
	handOver           // the step made a transition: go on in a fresh goroutine
	exit               // stopped
)

// nextOrTimer waits for the next request while a timer is armed. It handles
// a timer that fires first, and returns nil then.
func (l *loop) nextOrTimer() *request {
	select {
	case req := <-l.b.reqc:
		return req
	case <-l.timerc:
		l.timerFired()
		return nil
	}
}

// handle carries out one request (nil: a timer that nextOrTimer handled).
// Once Stop has been called, it answers the request as stopped and shuts
// down instead: whatever callers were queued behind it get ErrStopped.
func (l *loop) handle(req *request) afterStep {
	if l.b.stopping.Load() {
		if req != nil {
			l.refuse(req)
		}
		l.shutdown()
		return exit
	}
	if req != nil {
		l.serve(req)
	}
	if l.toLog != nil {
		return handOver
	}
	return carryOn
}

func (l *loop) serve(req *request) {
	b, m := l.b, l.m
	switch req.kind {
	case permitReq:
		now := b.clock.Now()
		t, refusal := m.acquire(now)
		l.commit(now, nil)
		req.permitReply <- permitReply{ticket: t, refusal: refusal}

	case reportReq:
		var now time.Time // read only when it matters: a clock read costs as much as the rest of the step
		if m.needsTime(req.ticket, req.outcome) {
			now = b.clock.Now()
		}
		applied, ev := m.settle(now, req.ticket, req.outcome, req.openFor)
		if applied && req.outcome != release {
			b.counts.applied(req.outcome)
		}
		l.commit(now, ev)
		req.reply <- applied

	case controlReq:
		now := b.clock.Now()
		ev := m.control(now, req.op, req.reason)
		l.commit(now, ev)
		req.reply <- true

	case subscribeReq:
		l.subs = append(l.subs, req.sub)

	case unsubscribeReq:
		for i, s := range l.subs {
			if s == req.sub {
				close(s.ch)
				l.subs = append(l.subs[:i], l.subs[i+1:]...)
				break
			}
		}
		close(req.done)
	}
}

func (l *loop) timerFired() {
	l.timer, l.timerc = nil, nil
	ev, failed := l.m.timerFired()
	if failed {
		l.b.counts.failures.Add(1)
	}
	l.commit(l.b.clock.Now(), ev)
}

// commit makes a step visible, in the order semantic 7 needs: arm the timer,
// then publish the snapshot, then the event. The caller replies after it.
func (l *loop) commit(now time.Time, ev *Event) {
	if l.m.timerSeq != l.armedSeq {
		l.arm(now)
	}
	if next := l.m.snapshot(); next != *l.cur {
		// A published snapshot is never written, so one published before
		// can be published again: a run of failures that a success ends
		// goes back to the previous snapshot without allocating.
		if l.prev != nil && *l.prev == next {
			l.cur, l.prev = l.prev, l.cur
		} else {
			s := new(snapshot)
			*s = next
			l.cur, l.prev = s, l.cur
		}
		if l.prev.gen != l.cur.gen {
			l.prev = nil // generations only grow: it cannot come back
		}
		l.b.snap.Store(l.cur)
	}
	if ev != nil {
		l.toLog = ev
		if l.b.onEvent != nil {
			l.b.onEvent(*ev)
		}
		for _, s := range l.subs {
			s.offer(*ev)
		}
	}
}

// arm replaces the timer with a fresh one for m.deadline (or none). A fresh
// timer per arming, never Reset: a mock timer that has fired must not be
// reused.
func (l *loop) arm(now time.Time) {
	l.armedSeq = l.m.timerSeq
	if l.timer != nil {
		l.timer.Stop()
		l.timer, l.timerc = nil, nil
	}
	if l.m.deadline.IsZero() {
		return
	}
	// At least 1ns: a mock clock fires a timer that is already due inside
	// Timer, which races with a concurrent Add firing it too.
	d := max(l.m.deadline.Sub(now), time.Nanosecond)
	l.timer = l.b.clock.Timer(d)
	l.timerc = l.timer.C
}

// refuse answers a request that arrives once Stop has been called.
func (l *loop) refuse(req *request) {
	switch req.kind {
	case permitReq:
		req.permitReply <- permitReply{stopped: true}
	case reportReq, controlReq:
		req.reply <- false
	case subscribeReq:
		close(req.sub.ch) // Subscribe returns a closed channel
	case unsubscribeReq:
		l.serve(req) // closes it now rather than in shutdown
	}
}

// shutdown publishes the final snapshot and closes every subscription.
func (l *loop) shutdown() {
	if l.timer != nil {
		l.timer.Stop()
	}
	final := l.m.snapshot()
	final.stopped = true
	final = derive(final)
	l.b.snap.Store(&final)
	for _, s := range l.subs {
		close(s.ch)
	}
	l.subs = nil
}

// logQueue carries transition records from the loop to the goroutine that
// logs them, one goroutine at a time, in order. The loop only appends under
// mu; it never waits for a handler. A record waits in the queue (about 80
// bytes) for as long as the handler takes with the records before it.
type logQueue struct {
	mu      sync.Mutex
	pending []Event
	running bool           // a goroutine is logging (in drain)
	wg      sync.WaitGroup // counts the goroutine in drain; Stop waits for it
}

// push queues ev and reports whether the caller is to run drain: no other
// goroutine is logging. Called only by loop goroutines, so every wg.Add
// happens before the loop exits, and Stop's wg.Wait after that.
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
