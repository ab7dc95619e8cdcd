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

// retryAfterOf returns the open period err asks for, or 0. It walks the
// chain as errors.As does, but without errors.As's allocation (its target
// escapes): every failure report asks. An error with an As method of its
// own gets errors.As itself.
func retryAfterOf(err error) time.Duration {
	d, _ := findRetryAfter(err)
	return d
}

// findRetryAfter returns the After of the first *RetryAfterError in err's
// chain (never negative), and whether there is one.
func findRetryAfter(err error) (time.Duration, bool) {
	for err != nil {
		switch e := err.(type) {
		case *RetryAfterError:
			return max(e.After, 0), true
		case interface{ As(any) bool }:
			var ra *RetryAfterError
			if errors.As(err, &ra) {
				return max(ra.After, 0), true
			}
			return 0, false
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if d, ok := findRetryAfter(inner); ok {
					return d, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// A Breaker is a circuit breaker built as an actor: one sequential loop
// owns its state, and runs only while it has messages (see loop.go): an idle
// breaker has no goroutine, needs no [Breaker.Stop], and is garbage
// collected once unreferenced. Create it with [New]. All its methods are
// safe for concurrent use. A nil or zero Breaker is not usable: its methods
// return errors and zero values rather than panic.
type Breaker struct {
	// Read by every call, written only when the state changes: the first
	// cache line holds nothing that every failure writes.
	//
	// snap is written only by the executor (after every step that changes
	// something) and read by callers: the lock-free fast path.
	snap atomic.Pointer[snapshot]

	// Immutable after New:
	logger     *slog.Logger  // nil: slog.Default() at the time of logging
	classifier *classifier   // nil: the default rules
	slowCall   time.Duration // WithSlowCall; 0: off
	onEvent    func(Event)   // a Group's hook: called by the executor with every transition; nil otherwise
	stepHook   func()        // tests only: run by the executor before each step; nil otherwise

	// Owned by the executor (the machine's configuration, its first
	// fields, is immutable):
	m         machine
	timer     *clock.Timer // armed for m.deadline as armedSeq; nil while none is
	armedSeq  uint64       // m.timerSeq the timer was armed for
	cur, prev *snapshot    // the published snapshot; the one before it, while of the same generation
	first     snapshot     // the first snapshot, in the same allocation as the breaker
	subs      *subList     // made at the first Subscribe
	logs      *logQueue    // made at the first transition; read by Stop once the loop is done

	// The mailbox (see loop.go):
	pending  atomic.Int64            // messages announced and not yet served; 0: asleep
	mailbox  atomic.Pointer[request] // from senders -> executor: a stack, emptied at once and reversed
	stopping atomic.Bool             // set by Stop; the executor then shuts down and refuses everything
	firing   atomic.Int32            // timer functions inside the breaker; Stop waits for 0

	counts counters // bumped by callers and by the executor
}

// counters are bumped atomically by callers (fast path) and by the
// executor. A Call that went through the closed state cleanly bumps only
// calls, which counts as one request and one success (semantic 13: a Call's
// request may be counted when it returns): one atomic per clean call; a
// breaker busy from several CPUs counts them per P instead (see spread.go).
// 64 bytes, after every field that callers only read.
type counters struct {
	requests, rejected, successes, failures, ignored atomic.Uint64
	calls                                            atomic.Uint64 // see callCount
	// consecutive is the machine's run of failures, stored by the executor
	// before it publishes the step's snapshot: kept out of the snapshot so
	// that a failure that only lengthens a run publishes nothing new, and
	// the snapshot stays 32 bytes.
	consecutive atomic.Uint64
	hot         atomic.Pointer[hotCalls] // nil until sampled; see spread.go
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

// snapshot is what the executor publishes after a step: immutable once
// stored. 32 bytes: every breaker holds one (its first is in the Breaker's
// own allocation).
type snapshot struct {
	gen      uint64     // incremented by every transition
	refusal  *OpenError // open, or half-open with the probe out: the refusal every caller gets
	window   *window    // closed with a failure rate: where fast-path successes go (see window.go)
	st       uint8      // the State
	probeOut bool       // half-open: the probe is granted and not yet reported
	failing  bool       // there are consecutive failures (their count is counters.consecutive)
	stopped  bool

	// Derived, for the fast path's single test:
	grants bool // closed and not stopped: a permit is granted from the snapshot
	clean  bool // grants, with no consecutive failures: a success changes nothing
}

func (s *snapshot) state() State { return State(s.st) }

// New makes a breaker with the given options and returns it. It starts no
// goroutine: the breaker runs on its callers' goroutines while it has work
// (see the package documentation), so an idle breaker costs only its memory
// and needs no [Breaker.Stop]; one that is no longer referenced is garbage
// collected. An invalid option (a nil one too) makes New return nil and an
// error that names it and wraps [ErrInvalid].
func New(opts ...Option) (*Breaker, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	b := &Breaker{
		logger:     o.logger,
		classifier: o.classifier(),
		slowCall:   o.slowCall,
		stepHook:   o.stepHook,
		onEvent:    o.onEvent,
	}
	b.m = *newMachine(o.name, o.clock, o.allowedFails, o.retry, o.probeTimeout)
	b.m.setPolicies(&o)
	b.first = b.m.snapshot()
	b.cur = &b.first
	b.snap.Store(b.cur)
	return b, nil
}

// Name returns the name given with [WithName].
func (b *Breaker) Name() string {
	if b == nil {
		return ""
	}
	return b.m.name
}

// usable reports whether b was made by New: nil and zero Breakers answer
// every method with an error or a zero value instead of panicking or
// blocking.
func (b *Breaker) usable() bool { return b != nil && b.snap.Load() != nil }

// State returns the breaker's current state; after Stop, its last state.
func (b *Breaker) State() State {
	if !b.usable() {
		return StateClosed
	}
	return b.snap.Load().state()
}

// Counts returns the breaker's statistics. Each field is exact; fields are
// read one after the other, so under concurrent traffic they need not add up
// to one instant. After Stop, the last values.
func (b *Breaker) Counts() Counts {
	if !b.usable() {
		return Counts{}
	}
	calls := b.counts.callCount()
	return Counts{
		Requests:            b.counts.requests.Load() + calls,
		Rejected:            b.counts.rejected.Load(),
		Successes:           b.counts.successes.Load() + calls,
		Failures:            b.counts.failures.Load(),
		Ignored:             b.counts.ignored.Load(),
		ConsecutiveFailures: b.counts.consecutive.Load(),
	}
}

// Stop stops the breaker and returns once no goroutine of the breaker
// remains and no step is executing. Then every pending and later Permit and
// Call returns [ErrStopped], reports return false, and subscriptions are
// closed: callers still waiting for the breaker when Stop is called get
// ErrStopped too, not an answer from a breaker about to stop. Calls already
// running their function are not waited for; transitions not yet logged
// are, so that no goroutine of the breaker outlives Stop: a log handler must
// not call Stop of the breaker it logs for. Stop is idempotent and safe to
// call concurrently. An idle breaker needs no Stop: it has no goroutine, and
// is garbage collected once unreferenced.
func (b *Breaker) Stop() {
	if !b.usable() {
		return
	}
	b.stopping.Store(true)
	req := &request{kind: stopReq, reply: make(chan bool, 1)} // buffered: the executor's reply never blocks
	b.post(req)
	<-req.reply // the breaker is shut down
	b.quiesce()
	if b.logs != nil {
		b.logs.wg.Wait() // the last transitions' records: no goroutine of b outlives Stop
	}
}

// send hands req to the loop, and returns false if the breaker is stopped.
// The reply comes on req's channel.
func (b *Breaker) send(req *request) bool {
	if b.snap.Load().stopped {
		return false
	}
	b.post(req)
	return true
}

// A Permit is the right to make one call. Report its outcome exactly once
// with [Permit.Report] or [Permit.ReportOutcome]; later reports return false.
// A permit that is never reported costs nothing in the closed state; a probe
// that is never reported counts as a failure after the probe timeout.
type Permit struct {
	b        *Breaker
	ctx      context.Context // the context it was granted with: a caller that gave up is not blamed (semantic 2)
	t        ticket
	reported atomic.Bool
	granted  time.Time // with WithSlowCall, when it was granted on the breaker's clock
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
	// Small enough to inline, so that a caller that keeps the permit to
	// itself (httpbreaker's RoundTrip, say) holds it on its stack instead
	// of allocating it.
	return (&Permit{b: b}).grant(ctx)
}

// grant asks p's breaker for p's ticket: p when granted, nil and the refusal
// otherwise.
func (p *Permit) grant(ctx context.Context) (*Permit, error) {
	t, err := p.b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	p.ctx, p.t = ctx, t
	if p.b.slowCall > 0 { // WithSlowCall times the permit
		p.granted = p.b.m.clock.Now()
	}
	return p, nil
}

// Probe reports whether p is the half-open probe, the one permit whose
// outcome decides whether the breaker closes.
func (p *Permit) Probe() bool { return p != nil && p.t.probe }

// Report classifies err (see [WithAllowedErrors], [WithFailureErrors],
// [WithClassifier]; nil is a Success) and applies it. A non-nil err reported
// while the context the permit was granted with is done with
// context.Canceled is Ignored whatever it says, before any classifier: the
// caller gave up, which says nothing about the dependency (fn may well
// return context.Cause(ctx), a cause of its own). A context whose deadline
// expired is not excused: the dependency did not answer in the time the
// caller gave it, which is what a breaker is for. If the classifier panics,
// the report counts as a Failure and the panic goes on with its own value.
// Report returns true if the report was applied as Success, Failure or
// Ignored; false if p is nil, was already reported, is stale (granted before
// the breaker's latest transition), or the breaker is stopped. When it
// returns, its effect is visible in State, Counts, Permit and on
// subscriptions.
func (p *Permit) Report(err error) bool {
	if p == nil || p.b == nil {
		return false
	}
	if !p.reported.CompareAndSwap(false, true) {
		return false
	}
	if p.slow() { // WithSlowCall: too late to count as anything but a Failure, a cancellation included
		if p.b.settleSlow(p.t, Failure, retryAfterOf(err)) { // the dependency's word still holds
			p.b.logClassified(p.ctx, classified{Failure, whySlow}, err)
			return true
		}
		return false
	}
	if err == nil {
		return p.b.settle(p.t, Success)
	}
	return p.b.reportErr(p.ctx, p.t, err)
}

// reportErr classifies and applies a non-nil error for t. A classifier that
// panics (or exits its goroutine) leaves no permit outstanding: the report
// counts as a Failure, and the panic goes on.
func (b *Breaker) reportErr(ctx context.Context, t ticket, err error) bool {
	classifiedOK := false
	defer func() {
		if !classifiedOK && b.settleSlow(t, Failure, retryAfterOf(err)) {
			b.logClassified(ctx, classified{Failure, whyClassifierPanicked}, err)
		}
	}()
	c := b.classifyCtx(ctx, err)
	classifiedOK = true
	var applied bool
	if c.outcome == Failure {
		applied = b.settleSlow(t, Failure, retryAfterOf(err))
	} else {
		applied = b.settle(t, c.outcome)
	}
	if applied {
		b.logClassified(ctx, c, err)
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
	if p.slow() { // policy: WithSlowCall
		o = Failure
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
	if p.slow() { // policy: WithSlowCall
		o = Failure
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
	case s.grants: // closed or disabled
		b.counts.requests.Add(1)
		return ticket{gen: s.gen}, nil
	case s.state() == StateOpen || s.state() == StateForcedOpen || s.probeOut:
		b.counts.rejected.Add(1)
		return ticket{}, s.refusal // built by the loop once per open period: no clock read, no allocation
	}
	return b.acquireFromLoop(ctx)
}

func (b *Breaker) acquireFromLoop(ctx context.Context) (ticket, error) {
	req := &request{kind: permitReq, permitc: make(chan permitReply, 1)} // buffered: the executor's reply never blocks
	b.post(req)
	var r permitReply
	select {
	case r = <-req.permitc:
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, abandoned) {
			return ticket{}, ctx.Err() // the executor will skip it
		}
		// The executor took it first, so it answers without delay. Wait
		// for that answer so that a probe granted meanwhile is released,
		// not leaked until its deadline.
		if r = <-req.permitc; r.refusal == nil && !r.stopped && r.ticket.probe {
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
	if s := b.snap.Load(); o == Success && s.clean && s.gen == t.gen && s.window.addSuccess() { // policy: window
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
	if (s.state() == StateClosed || s.state() == StateDisabled) && (o == Ignored || (o == Success && !s.failing && s.window.addSuccess())) { // policy: window (nil while disabled)
		b.counts.applied(o)
		return true
	}
	if b.stepHook == nil && b.pending.CompareAndSwap(0, 1) {
		// Asleep: this goroutine is the executor. It applies its own report
		// inline, then serves what was queued meanwhile, if anything.
		applied := false
		if b.stopping.Load() { // as serve does: Stop goes first
			if !b.isDown() {
				b.shutdown()
			}
		} else {
			applied = b.settleStep(t, o, openFor)
			b.afterStep()
		}
		if b.pending.Add(-1) != 0 {
			b.run(nil, nil, serveOthers)
		}
		return applied
	}
	req := reports.Get().(*request)
	req.ticket, req.outcome, req.openFor = t, o, openFor
	req.answered.Lock() // unlocked by the executor once req.applied is set
	b.post(req)
	// The executor answers within the step that serves req, also when the
	// breaker is stopping, and does not touch req after that.
	req.answered.Lock()
	applied := req.applied
	req.answered.Unlock()
	reports.Put(req)
	return applied
}

func (b *Breaker) log() *slog.Logger {
	if b.logger != nil {
		return b.logger
	}
	return slog.Default()
}
