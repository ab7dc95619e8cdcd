package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// Counts are a breaker's statistics, cumulative for its whole life:
// transitions do not reset them.
type Counts struct {
	Requests  uint64 // permits granted (probes included)
	Rejected  uint64 // permits refused because the breaker was open or its probe was out
	Successes uint64 // reports applied as Success
	Failures  uint64 // reports applied as Failure, and probes that timed out
	Ignored   uint64 // reports applied as Ignored
	// ConsecutiveFailures is the current run of failures since the last
	// success; 0 after the breaker closes.
	ConsecutiveFailures uint64
}

// Event is one state transition, as delivered by [Breaker.Subscribe].
type Event struct {
	Seq      uint64    // 1, 2, 3, ... per breaker, one per transition; a gap means this subscriber lost events
	Breaker  string    // the breaker's name
	From, To State     // the transition
	At       time.Time // the breaker clock's time of the transition; for a timer-driven one, when the timer was due
	Reason   string    // human-readable: "3 consecutive failures", "retry timer elapsed", "probe succeeded", ...
	// External is true when the transition came from outside the breaker's
	// own rules and timers: Trip, ForceOpen, Disable or Reset.
	External bool
}

var (
	// ErrOpen is matched by errors.Is for every refusal: the breaker was open,
	// or half-open with its probe out. The refusal itself is an [*OpenError].
	ErrOpen = errors.New("circuitbreaker: breaker is open")
	// ErrStopped is returned by Permit and Call once the breaker is stopped.
	ErrStopped = errors.New("circuitbreaker: breaker is stopped")
	// ErrInvalid is wrapped by every error about bad input: an invalid option
	// given to New, a nil Breaker or function given to Call.
	ErrInvalid = errors.New("circuitbreaker: invalid argument")
)

// OpenError is the error of a refused permit. errors.Is(err, ErrOpen) is true
// for it. Refusals within one open period (or while one probe is out) share
// one *OpenError: do not modify it.
type OpenError struct {
	Breaker string // the breaker's name
	State   State  // StateOpen; StateHalfOpen when the probe is out; StateForcedOpen
	// Until is when the breaker expects to let a call through again, on the
	// breaker's clock: when the retry timer is due (open) or the probe's
	// deadline (half-open). Zero when forced open: no timer runs.
	Until time.Time

	clock  clock.Clock   // the breaker's; nil: time.Now
	period time.Duration // the open period (or probe timeout) that made the refusal; 0: no cap
}

// RetryAfter returns how long is left until Until, on the breaker's clock,
// read when called: never negative, never more than the period that made the
// refusal (so a clock stepped back does not stretch it), and 0 when Until is
// zero. An OpenError not made by a breaker measures against time.Now().
func (e *OpenError) RetryAfter() time.Duration {
	if e == nil || e.Until.IsZero() {
		return 0
	}
	var d time.Duration
	if e.clock != nil {
		d = e.clock.Until(e.Until)
	} else {
		d = time.Until(e.Until)
	}
	if e.period > 0 && d > e.period {
		d = e.period
	}
	return max(d, 0)
}

// Error says which breaker refused and until when. It depends only on
// Breaker, State and Until, so it does not change as time passes.
func (e *OpenError) Error() string {
	name := ""
	if e.Breaker != "" {
		name = " " + strconv.Quote(e.Breaker)
	}
	until := e.Until.Round(0).Format(time.RFC3339Nano)
	switch e.State {
	case StateHalfOpen:
		return fmt.Sprintf("circuitbreaker: breaker%s is half-open and its probe is out until %s", name, until)
	case StateForcedOpen:
		return fmt.Sprintf("circuitbreaker: breaker%s is forced open", name)
	}
	return fmt.Sprintf("circuitbreaker: breaker%s is open until %s", name, until)
}

// Is reports whether target is ErrOpen.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// RetryAfterError carries a dependency's own word on how long it needs, such
// as HTTP's Retry-After header. When a reported error (Report, or fn's error
// in Call) holds one in its chain (errors.As) and counts as a Failure that
// opens the breaker (a trip, or a failed probe), the breaker stays open for
// After instead of its retry timer, also when After is shorter; After <= 0
// changes nothing. The permit-level form is [Permit.ReportRetryAfter].
type RetryAfterError struct {
	Err   error         // the error itself, returned by Unwrap
	After time.Duration // how long the dependency asked callers to wait
}

// Error returns Err's text with the requested wait.
func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry after %v", e.After)
	}
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

// Unwrap returns Err.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryAfterOf returns the open period err asks for, or 0.
func retryAfterOf(err error) time.Duration {
	var ra *RetryAfterError
	if err != nil && errors.As(err, &ra) && ra.After > 0 {
		return ra.After
	}
	return 0
}

// A Breaker is a circuit breaker run by its own goroutine. Create it with
// [New] and release it with [Stop]. All its methods are safe for concurrent
// use. A nil or zero Breaker is not usable: its methods return errors and
// zero values rather than panic.
type Breaker struct {
	// Immutable after New:
	name       string
	clock      clock.Clock
	logger     *slog.Logger // nil: slog.Default() at the time of logging
	classifier classifier
	stepHook   func()      // tests only: run by the loop before each step; nil otherwise
	onEvent    func(Event) // a Group's hook: called by the loop with every transition; nil otherwise

	// snap is written only by the loop (after every step that changes
	// something) and read by callers: the lock-free fast path.
	snap atomic.Pointer[snapshot]

	reqc     chan *request // from callers -> loop: every request, in arrival order (see messages.go)
	stopping atomic.Bool   // set by Stop; the loop answers whatever it receives next with ErrStopped, and exits
	done     chan struct{} // closed by the loop goroutine when it exits
	logs     *logQueue     // transition records; made by the loop at the first transition, read by Stop after done

	_      [64]byte // keeps the counters, written by every caller, off the read-mostly line above
	counts counters
	_      [64]byte
}

// counters are bumped atomically by callers (fast path) and by the loop.
type counters struct {
	requests, rejected, successes, failures, ignored atomic.Uint64
}

func (c *counters) applied(o Outcome) {
	switch o {
	case Success:
		c.successes.Add(1)
	case Failure:
		c.failures.Add(1)
	case Ignored:
		c.ignored.Add(1)
	}
}

// snapshot is what the loop publishes after a step: immutable once stored.
type snapshot struct {
	state    State
	gen      uint64 // incremented by every transition
	failures uint64 // consecutive failures
	probeOut bool   // half-open: the probe is granted and not yet reported
	deadline time.Time
	refusal  *OpenError // open, or half-open with the probe out: the refusal every caller gets
	stopped  bool

	// Derived, for the fast path's single test:
	grants bool // closed and not stopped: a permit is granted from the snapshot
	clean  bool // grants, with no consecutive failures: a success changes nothing
}

// New starts a breaker with the given options and returns it. An invalid
// option (a nil one too) makes New return nil and an error that names it and
// wraps [ErrInvalid]. Call [Breaker.Stop] when done with the breaker, or its
// goroutine lives on.
func New(opts ...Option) (*Breaker, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	b := &Breaker{
		name:       o.name,
		clock:      o.clock,
		logger:     o.logger,
		classifier: o.classifier(),
		stepHook:   o.stepHook,
		onEvent:    o.onEvent,
		reqc:       make(chan *request),
		done:       make(chan struct{}),
	}
	m := newMachine(o.name, o.clock, o.allowedFails, o.retry, o.probeTimeout)
	first := m.snapshot()
	b.snap.Store(&first)
	l := &loop{b: b, m: m, cur: &first}
	go l.run()
	return b, nil
}

// Name returns the name given with [WithName].
func (b *Breaker) Name() string {
	if b == nil {
		return ""
	}
	return b.name
}

// usable reports whether b was made by New: nil and zero Breakers answer
// every method with an error or a zero value instead of panicking or
// blocking.
func (b *Breaker) usable() bool { return b != nil && b.done != nil }

// State returns the breaker's current state; after Stop, its last state.
func (b *Breaker) State() State {
	if !b.usable() {
		return StateClosed
	}
	return b.snap.Load().state
}

// Counts returns the breaker's statistics. Each field is exact; fields are
// read one after the other, so under concurrent traffic they need not add up
// to one instant. After Stop, the last values.
func (b *Breaker) Counts() Counts {
	if !b.usable() {
		return Counts{}
	}
	return Counts{
		Requests:            b.counts.requests.Load(),
		Rejected:            b.counts.rejected.Load(),
		Successes:           b.counts.successes.Load(),
		Failures:            b.counts.failures.Load(),
		Ignored:             b.counts.ignored.Load(),
		ConsecutiveFailures: b.snap.Load().failures,
	}
}

// Stop stops the breaker's goroutine and returns after it has exited. Then
// every pending and later Permit and Call returns [ErrStopped], reports
// return false, and subscriptions are closed: callers still waiting for the
// breaker when Stop is called get ErrStopped too, not an answer from a
// breaker about to stop. Calls already running their function are not
// waited for; transitions not yet logged are, so that no goroutine of the
// breaker outlives Stop: a log handler must not call Stop of the breaker it
// logs for. Stop is idempotent and safe to call concurrently.
func (b *Breaker) Stop() {
	if !b.usable() {
		return
	}
	if b.stopping.CompareAndSwap(false, true) {
		// Wake the loop if it is parked. If it is busy, this request may
		// queue behind others; the loop checks stopping before it serves
		// any of them, and they get ErrStopped once it has exited.
		b.send(&request{kind: stopReq})
	}
	<-b.done
	if b.logs != nil {
		b.logs.wg.Wait() // the last transitions' records: no goroutine of b outlives Stop
	}
}

// send hands req to the loop, and returns false if the loop has exited.
func (b *Breaker) send(req *request) bool {
	select {
	case b.reqc <- req: // the loop was waiting: no need to look at done
		return true
	default:
	}
	select {
	case b.reqc <- req:
		return true
	case <-b.done:
		return false
	}
}

// A Permit is the right to make one call. Report its outcome exactly once
// with [Permit.Report] or [Permit.ReportOutcome]; later reports return false.
// A permit that is never reported costs nothing in the closed state; a probe
// that is never reported counts as a failure after the probe timeout.
type Permit struct {
	b        *Breaker
	t        ticket
	reported atomic.Bool
}

// ticket identifies a granted permit to the loop: which generation it was
// granted in, and whether it is the half-open probe.
type ticket struct {
	gen   uint64
	probe bool
}

// Permit asks the breaker for a permit. It returns a *[OpenError] (matching
// [ErrOpen]) when the breaker refuses, [ErrStopped] after Stop, and ctx.Err()
// when ctx is done before or while waiting for the breaker; with an error
// there is no permit and nothing to report. A nil ctx is treated as
// context.Background().
func (b *Breaker) Permit(ctx context.Context) (*Permit, error) {
	t, err := b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &Permit{b: b, t: t}, nil
}

// Probe reports whether p is the half-open probe, the one permit whose
// outcome decides whether the breaker closes.
func (p *Permit) Probe() bool { return p != nil && p.t.probe }

// Report classifies err (see [WithAllowedErrors], [WithFailureErrors],
// [WithClassifier]; nil is a Success) and applies it. It returns true if the
// report was applied as Success, Failure or Ignored; false if p is nil, was
// already reported, is stale (granted before the breaker's latest
// transition), or the breaker is stopped. When it returns, its effect is
// visible in State, Counts, Permit and on subscriptions.
func (p *Permit) Report(err error) bool {
	if p == nil || p.b == nil {
		return false
	}
	c := p.b.classify(err)
	if !p.reported.CompareAndSwap(false, true) {
		return false
	}
	var applied bool
	if c.outcome == Failure {
		applied = p.b.settleSlow(p.t, Failure, retryAfterOf(err))
	} else {
		applied = p.b.settle(p.t, c.outcome)
	}
	if applied {
		p.b.logClassified(context.Background(), c, err)
	}
	return applied
}

// ReportOutcome applies an explicit outcome. It returns true if applied, and
// false as Report does; an out-of-range Outcome returns false and leaves the
// permit outstanding.
func (p *Permit) ReportOutcome(o Outcome) bool {
	if p == nil || p.b == nil || !o.valid() {
		return false
	}
	if !p.reported.CompareAndSwap(false, true) {
		return false
	}
	return p.b.settle(p.t, o)
}

// ReportRetryAfter applies o as [Permit.ReportOutcome] does, with the
// dependency's own word on how long it needs (HTTP's Retry-After, say): if o
// is a Failure that opens the breaker (a trip, or a failed probe), the
// breaker stays open for d instead of its retry timer, also when d is
// shorter, and the refusals' Until says so. d <= 0 makes it ReportOutcome.
// Cap d yourself if the dependency is not to be trusted with it.
func (p *Permit) ReportRetryAfter(o Outcome, d time.Duration) bool {
	if p == nil || p.b == nil || !o.valid() {
		return false
	}
	if !p.reported.CompareAndSwap(false, true) {
		return false
	}
	if o != Failure || d <= 0 {
		return p.b.settle(p.t, o)
	}
	return p.b.settleSlow(p.t, o, d)
}

// granting returns the published snapshot if it grants permits by itself
// (closed, not stopped), or nil. b may be nil or zero.
func (b *Breaker) granting() *snapshot {
	if b == nil {
		return nil
	}
	if s := b.snap.Load(); s != nil && s.grants {
		return s
	}
	return nil
}

// acquire grants a ticket from the published snapshot when it can, and asks
// the loop only in half-open with the probe free. In the closed state that is
// one load, one test and one counter.
func (b *Breaker) acquire(ctx context.Context) (ticket, error) {
	if b != nil && ctx != nil {
		if s := b.snap.Load(); s != nil && s.grants && ctx.Err() == nil {
			b.counts.requests.Add(1)
			return ticket{gen: s.gen}, nil
		}
	}
	return b.acquireSlow(ctx)
}

func (b *Breaker) acquireSlow(ctx context.Context) (ticket, error) {
	if !b.usable() {
		return ticket{}, errNilBreaker
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return ticket{}, err
	}
	s := b.snap.Load()
	switch {
	case s.stopped:
		return ticket{}, ErrStopped
	case s.state == StateClosed:
		b.counts.requests.Add(1)
		return ticket{gen: s.gen}, nil
	case s.state == StateOpen || s.probeOut:
		b.counts.rejected.Add(1)
		return ticket{}, s.refusal // built by the loop once per open period: no clock read, no allocation
	}
	return b.acquireFromLoop(ctx)
}

func (b *Breaker) acquireFromLoop(ctx context.Context) (ticket, error) {
	req := &request{kind: permitReq, permitReply: make(chan permitReply, 1)} // buffered: the loop's reply never blocks
	select {
	case b.reqc <- req:
	case <-ctx.Done():
		return ticket{}, ctx.Err()
	case <-b.done:
		return ticket{}, ErrStopped
	}
	var r permitReply
	select {
	case r = <-req.permitReply:
	case <-ctx.Done():
		// The loop took the request, so it answers without delay. Wait for
		// that answer so that a probe granted meanwhile is released, not
		// leaked until its deadline.
		if r = <-req.permitReply; r.refusal == nil && !r.stopped && r.ticket.probe {
			b.settle(r.ticket, release)
		}
		return ticket{}, ctx.Err()
	}
	switch {
	case r.stopped:
		return ticket{}, ErrStopped
	case r.refusal != nil:
		b.counts.rejected.Add(1)
		return ticket{}, r.refusal
	}
	b.counts.requests.Add(1)
	return r.ticket, nil
}

// settle applies an outcome (or a release) for a ticket and reports whether
// it was applied. Outcomes that cannot change the state are applied right
// here, at the snapshot read; the rest go to the loop, synchronously.
func (b *Breaker) settle(t ticket, o Outcome) bool {
	if s := b.snap.Load(); o == Success && s.clean && s.gen == t.gen {
		b.counts.successes.Add(1)
		return true
	}
	return b.settleSlow(t, o, 0)
}

// settleSlow is settle past the snapshot's clean case; openFor > 0 is the
// dependency's own open period, used if o opens the breaker.
func (b *Breaker) settleSlow(t ticket, o Outcome, openFor time.Duration) bool {
	s := b.snap.Load()
	if s.stopped || t.gen != s.gen {
		// Generations only grow and the snapshot is never behind a granted
		// ticket, so a ticket of an older generation is stale for good.
		return false
	}
	if s.state == StateClosed && (o == Ignored || (o == Success && s.failures == 0)) {
		b.counts.applied(o)
		return true
	}
	req := reports.Get().(*request)
	defer reports.Put(req)
	req.ticket, req.outcome, req.openFor = t, o, openFor
	if !b.send(req) {
		return false
	}
	// The loop took the request; it replies within the same step, also when
	// it is about to stop, and does not touch req after that.
	return <-req.reply
}

func (b *Breaker) log() *slog.Logger {
	if b.logger != nil {
		return b.logger
	}
	return slog.Default()
}
