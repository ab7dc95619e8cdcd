package actor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// Model-based testing (issue 5): a sequential reference model of
// CONTRACT.md, written from the contract and not from loop.go, runs side by
// side with a real breaker on a mock clock. After every step the two must
// agree on State, Counts, every refusal (State and exact RetryAfter), every
// report's answer and every event each subscriber receives.
//
// TestModel feeds the runner random bytes from seeded math/rand; FuzzModel
// feeds it the fuzzer's bytes. Both decode the same operations.

var (
	modelSeeds = flag.Int("model.seeds", 24, "TestModel: how many random sequences to run")
	modelSeed0 = flag.Int64("model.seed0", 1, "TestModel: the first seed")
)

// model is the contract as a plain sequential program. It has no goroutines
// and no clock: the runner tells it the time, which it tracks from its own
// bookkeeping of the mock clock.
type model struct {
	cfg  modelConfig
	name string
	now  time.Time

	state State
	// epoch changes with every transition; a permit granted in an older
	// epoch is stale (semantic 6).
	epoch   uint64
	run     uint64    // consecutive failures since the last success
	retryAt time.Time // open: when the retry timer fires
	// probe is the outstanding half-open probe; nil while the probe is free.
	probe         *modelPermit
	probeDeadline time.Time

	counts Counts  // all but ConsecutiveFailures, which is run
	events []Event // every transition so far; events[i].Seq == i+1
}

// modelPermit is a permit as the model sees it, with the real one beside it.
type modelPermit struct {
	real     *Permit
	epoch    uint64
	probe    bool
	reported bool // a report was made (applied or not): any later one is a duplicate
}

func newModel(cfg modelConfig, name string, now time.Time) *model {
	return &model{cfg: cfg, name: name, now: now}
}

// permit is semantics 1, 3 and 5: closed grants, open refuses, half-open
// grants the one probe and refuses while it is out.
func (m *model) permit() (*modelPermit, *OpenError) {
	switch {
	case m.state == StateOpen:
		m.counts.Rejected++
		return nil, &OpenError{Breaker: m.name, State: StateOpen, Until: m.retryAt}
	case m.state == StateHalfOpen && m.probe != nil:
		m.counts.Rejected++
		return nil, &OpenError{Breaker: m.name, State: StateHalfOpen, Until: m.probeDeadline}
	}
	m.counts.Requests++
	p := &modelPermit{epoch: m.epoch}
	if m.state == StateHalfOpen {
		p.probe = true
		m.probe = p
		m.probeDeadline = m.now.Add(m.cfg.probeTimeout())
	}
	return p, nil
}

// report is semantics 1, 5, 6 and 13: it returns whether the report applies.
func (m *model) report(p *modelPermit, o Outcome) bool {
	if p.reported {
		return false // duplicate
	}
	p.reported = true
	if p.epoch != m.epoch {
		return false // stale: granted before the latest transition
	}
	switch o {
	case Success:
		m.counts.Successes++
		m.run = 0
	case Failure:
		m.counts.Failures++
		m.run++
	case Ignored:
		m.counts.Ignored++
	}
	switch m.state {
	case StateClosed:
		if o == Failure && m.run >= uint64(m.cfg.allowedFails) {
			reason := fmt.Sprintf("%d consecutive failures", m.run)
			if m.run == 1 {
				reason = "1 consecutive failure"
			}
			m.open(m.now, reason)
		}
	case StateHalfOpen:
		// Only the probe is granted in a half-open epoch, so p is the probe.
		m.probe = nil
		switch o {
		case Success:
			m.transition(StateClosed, m.now, "probe succeeded")
		case Failure:
			m.open(m.now, "probe failed")
		}
		// Ignored: stays half-open with no event; the next permit probes.
	}
	return true
}

// due returns when the breaker's timer fires next, if it is armed: the retry
// timer while open, the probe's deadline while the probe is out.
func (m *model) due() (time.Time, bool) {
	switch {
	case m.state == StateOpen:
		return m.retryAt, true
	case m.state == StateHalfOpen && m.probe != nil:
		return m.probeDeadline, true
	}
	return time.Time{}, false
}

// fire moves the model's time to the due time and fires the timer there
// (semantics 4 and 5: the event is at the due time).
func (m *model) fire() {
	at, ok := m.due()
	if !ok {
		panic("model: fire with no timer armed")
	}
	m.now = at
	if m.state == StateOpen {
		m.transition(StateHalfOpen, at, "retry timer elapsed")
		return
	}
	// The probe was not reported in time: a Failure, and the probe's
	// permit is stale from now on.
	m.counts.Failures++
	m.run++
	m.probe = nil
	m.open(at, fmt.Sprintf("probe not reported within %v", m.cfg.probeTimeout()))
}

func (m *model) open(at time.Time, reason string) {
	m.retryAt = at.Add(m.cfg.retry)
	m.transition(StateOpen, at, reason)
}

func (m *model) transition(to State, at time.Time, reason string) {
	m.events = append(m.events, Event{
		Seq: uint64(len(m.events)) + 1, Breaker: m.name, From: m.state, To: to, At: at, Reason: reason,
	})
	m.state = to
	m.epoch++
	m.probe = nil
	if to == StateClosed {
		m.run = 0
	}
}

func (m *model) wantCounts() Counts {
	c := m.counts
	c.ConsecutiveFailures = m.run
	return c
}

func nonNegative(d time.Duration) time.Duration { return max(d, 0) }

// modelConfig is one breaker configuration, decoded from the first bytes.
type modelConfig struct {
	allowedFails int
	retry        time.Duration
	probe        time.Duration // 0: not given, the retry timer
	classify     int           // one of the classify* constants
}

const (
	classifyDefault = iota
	classifyAllowed
	classifyFailureOnly
	classifyCustom
	classifyModes
)

var (
	modelRetries = []time.Duration{time.Millisecond, 10 * time.Millisecond, time.Second, 30 * time.Second, 90 * time.Minute, 7*time.Second + 3}
	modelProbes  = []time.Duration{0, 0, time.Millisecond, 4 * time.Millisecond, 5 * time.Second, 2 * time.Hour}
	// modelErrors are what Report and Call's fn return in the model test.
	modelErrors = []error{nil, errBoom, errNotFound, errRateLimit, context.Canceled,
		fmt.Errorf("call: %w", context.Canceled), context.DeadlineExceeded, fmt.Errorf("call: %w", errNotFound)}
)

func (c modelConfig) probeTimeout() time.Duration {
	if c.probe == 0 {
		return c.retry
	}
	return c.probe
}

func (c modelConfig) options() []Option {
	opts := []Option{WithAllowedFails(c.allowedFails), WithRetryTimer(c.retry)}
	if c.probe != 0 {
		opts = append(opts, WithProbeTimeout(c.probe))
	}
	switch c.classify {
	case classifyAllowed:
		opts = append(opts, WithAllowedErrors(errNotFound))
	case classifyFailureOnly:
		opts = append(opts, WithFailureErrors(errBoom, context.DeadlineExceeded))
	case classifyCustom:
		opts = append(opts, WithClassifier(modelClassifier))
	}
	return opts
}

// modelClassifier answers every kind, and once out of range (a Failure).
func modelClassifier(err error) Outcome {
	switch {
	case errors.Is(err, errNotFound):
		return Success
	case errors.Is(err, errRateLimit):
		return Ignored
	case errors.Is(err, errBoom):
		return Failure
	}
	return Outcome(42)
}

// outcomeOf is semantic 2, the order of the classification rules.
func (c modelConfig) outcomeOf(err error) Outcome {
	if err == nil {
		return Success
	}
	switch c.classify {
	case classifyCustom:
		if o := modelClassifier(err); o == Success || o == Ignored {
			return o
		}
		return Failure
	case classifyFailureOnly:
		if errors.Is(err, errBoom) || errors.Is(err, context.DeadlineExceeded) {
			return Failure
		}
		return Ignored
	case classifyAllowed:
		if errors.Is(err, errNotFound) {
			return Ignored
		}
	}
	if errors.Is(err, context.Canceled) {
		return Ignored
	}
	return Failure
}

func (c modelConfig) String() string {
	return fmt.Sprintf("allowedFails=%d retry=%v probe=%v classify=%d", c.allowedFails, c.retry, c.probe, c.classify)
}

// byteSource hands out the input's bytes; past the end, zeros.
type byteSource struct {
	data []byte
	pos  int
}

func (s *byteSource) more() bool { return s.pos < len(s.data) }

func (s *byteSource) next() byte {
	if s.pos >= len(s.data) {
		return 0
	}
	b := s.data[s.pos]
	s.pos++
	return b
}

func (s *byteSource) intn(n int) int { return int(s.next()) % n }

func decodeConfig(s *byteSource) modelConfig {
	return modelConfig{
		allowedFails: 1 + s.intn(4),
		retry:        modelRetries[s.intn(len(modelRetries))],
		probe:        modelProbes[s.intn(len(modelProbes))],
		classify:     s.intn(classifyModes),
	}
}

type modelOp int

const (
	opPermit        modelOp = iota
	opReport                // ReportOutcome on an outstanding permit
	opReportErr             // Report(err) on an outstanding permit
	opReportAny             // ReportOutcome on any permit: duplicates and stale ones too
	opBadOutcome            // an out-of-range Outcome: false, the permit stays outstanding
	opCall                  // Call, sometimes with a Validate that says no
	opDoneCtx               // Permit or Call with a context already done
	opAdvance               // a random advance, up to twice the retry timer
	opAdvanceToDue          // exactly onto the next due time
	opAdvanceBefore         // 1ns before the next due time
	opAdvanceFar            // several due times in one go, split by the runner
	opSubscribe
	opCancel
	opDrainLazy
	opCycle // a burst of transitions: trip, the retry timer, a probe that closes or fails
	opKinds
)

// modelOpTable maps a byte to an operation, with these weights.
var modelOpTable = func() []modelOp {
	weights := [opKinds]int{
		opPermit: 12, opReport: 10, opReportErr: 6, opReportAny: 4, opBadOutcome: 1, opCall: 5, opDoneCtx: 1,
		opAdvance: 4, opAdvanceToDue: 3, opAdvanceBefore: 2, opAdvanceFar: 1,
		opSubscribe: 2, opCancel: 1, opDrainLazy: 1, opCycle: 3,
	}
	var table []modelOp
	for op, w := range weights {
		for range w {
			table = append(table, modelOp(op))
		}
	}
	return table
}()

// maxModelOps bounds one run: each clock advance costs the mock clock at
// least a millisecond of real time.
const maxModelOps = 1000

// maxModelSubs bounds the subscriptions open at once, the runner's own
// included.
const maxModelSubs = 6

// modelRun runs one sequence against a breaker and the model.
type modelRun struct {
	t    testing.TB
	b    *Breaker
	mock *clock.Mock
	m    *model
	cfg  modelConfig

	permits []*modelPermit // every permit granted, reported or not
	driver  *modelSub      // the runner's own subscription: waited on for timer-driven events
	subs    []*modelSub    // driver included
	trace   []string
	stats   modelStats
}

// modelStats says what a run exercised, so that a weak decoder shows.
type modelStats struct {
	ops, refusedOpen, refusedHalfOpen, probes, notApplied, timers, probeTimeouts, lazyOverflows int
}

type modelSub struct {
	id     int
	events <-chan Event
	cancel func()
	next   int  // index in model.events of the first event not yet received
	lazy   bool // drained only by opDrainLazy and at the end: may fall behind
}

func runModel(t testing.TB, data []byte, tally *modelTally) {
	src := &byteSource{data: data}
	cfg := decodeConfig(src)
	mock := clock.NewMock()
	mock.Add(time.Duration(src.next()) * time.Hour) // the start time does not matter
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := New(append(cfg.options(), WithName("model"), WithClock(mock), WithLogger(discard))...)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	defer stopWithin(t, b)
	r := &modelRun{t: t, b: b, mock: mock, m: newModel(cfg, "model", mock.Now()), cfg: cfg}
	defer func() {
		if t.Failed() {
			t.Logf("config %v; the last operations:\n\t%s", cfg, strings.Join(r.trace[max(0, len(r.trace)-40):], "\n\t"))
		}
	}()
	r.driver = r.subscribe(false)

	for ; src.more() && r.stats.ops < maxModelOps && !t.Failed(); r.stats.ops++ {
		r.step(src)
		r.check()
	}
	if t.Failed() {
		return
	}
	for _, s := range r.subs {
		r.drain(s)
	}
	r.stop()
	t.Logf("%v: %+v, %d transitions", cfg, r.stats, len(r.m.events))
	tally.add(r.stats, len(r.m.events))
}

func (r *modelRun) logf(format string, args ...any) {
	r.trace = append(r.trace, fmt.Sprintf("%v +%v: ", r.m.state, r.m.now.Sub(time.Unix(0, 0)))+fmt.Sprintf(format, args...))
}

func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("after %q: "+format, append([]any{r.trace[len(r.trace)-1]}, args...)...)
}

func (r *modelRun) step(src *byteSource) {
	op := modelOpTable[src.intn(len(modelOpTable))]
	arg := src.next()
	outcome := Outcome(1 + int(arg>>4)%3)
	switch op {
	case opPermit:
		r.permit()
	case opReport, opReportErr:
		p := r.pick(arg, false)
		if p == nil {
			r.permit()
			return
		}
		if op == opReport {
			r.logf("ReportOutcome(%v) probe=%v epoch=%d", outcome, p.probe, p.epoch)
			r.reported(p.real.ReportOutcome(outcome), r.m.report(p, outcome))
			return
		}
		err := modelErrors[int(arg>>4)%len(modelErrors)]
		r.logf("Report(%v) probe=%v epoch=%d", err, p.probe, p.epoch)
		r.reported(p.real.Report(err), r.m.report(p, r.cfg.outcomeOf(err)))
	case opReportAny:
		p := r.pick(arg, true)
		if p == nil {
			r.permit()
			return
		}
		r.logf("ReportOutcome(%v) any: probe=%v epoch=%d reported=%v", outcome, p.probe, p.epoch, p.reported)
		r.reported(p.real.ReportOutcome(outcome), r.m.report(p, outcome))
	case opBadOutcome:
		p := r.pick(arg, true)
		if p == nil {
			return
		}
		bad := []Outcome{0, release, Ignored + 1, -7}[(arg>>4)%4]
		r.logf("ReportOutcome(%d)", bad)
		r.reported(p.real.ReportOutcome(bad), false)
	case opCall:
		r.call(modelErrors[int(arg>>4)%len(modelErrors)], arg&1 == 1)
	case opDoneCtx:
		r.doneCtx(arg&1 == 1)
	case opAdvance:
		r.advance(time.Duration(int64(r.cfg.retry) * int64(arg) / 128))
	case opAdvanceToDue, opAdvanceBefore:
		due, ok := r.m.due()
		if !ok {
			r.advance(time.Duration(int64(r.cfg.retry) * int64(arg) / 256))
			return
		}
		d := due.Sub(r.m.now)
		if op == opAdvanceBefore {
			d -= time.Nanosecond
		}
		r.advance(d)
	case opAdvanceFar:
		r.advance(time.Duration(2+arg%4) * max(r.cfg.retry, r.cfg.probeTimeout()))
	case opSubscribe:
		if len(r.subs) < maxModelSubs {
			r.subscribe(arg&1 == 1)
		}
	case opCancel:
		if len(r.subs) > 1 {
			r.cancel(1 + int(arg)%(len(r.subs)-1))
		}
	case opCycle:
		r.cycle(outcome)
	case opDrainLazy:
		for _, s := range r.subs {
			// Rarely, so that a lazy subscription can fall behind.
			if s.lazy && arg%8 == 0 {
				r.logf("drain lazy subscription %d", s.id)
				r.drain(s)
			}
		}
	}
}

// pick returns an unreported permit, or with all set, any permit.
func (r *modelRun) pick(arg byte, all bool) *modelPermit {
	var candidates []*modelPermit
	for _, p := range r.permits {
		if all || !p.reported {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	// Favour the newest: they are the ones that can still apply.
	i := len(candidates) - 1 - int(arg&0x0f)%len(candidates)
	return candidates[i]
}

// cycle makes the transitions of a full cycle from wherever the breaker is,
// ending with a probe reported as o.
func (r *modelRun) cycle(o Outcome) {
	r.logf("cycle, probe %v", o)
	for i := 0; r.m.state == StateClosed; i++ {
		if i == 2*r.cfg.allowedFails {
			r.fatalf("cycle: no trip after %d failures", i)
		}
		r.permit()
		p := r.permits[len(r.permits)-1]
		r.reported(p.real.ReportOutcome(Failure), r.m.report(p, Failure))
		r.check()
	}
	if r.m.state == StateOpen {
		due, _ := r.m.due()
		r.advance(due.Sub(r.m.now))
	}
	if r.m.probe == nil {
		r.permit()
		r.check()
	}
	p := r.m.probe
	r.reported(p.real.ReportOutcome(o), r.m.report(p, o))
}

func (r *modelRun) permit() {
	p, err := r.b.Permit(context.Background())
	want, refusal := r.m.permit()
	r.logf("Permit: %v, %v (model: probe=%v refusal=%+v)", p != nil, err, want != nil && want.probe, refusal)
	if refusal != nil {
		r.wantRefusal(err, refusal)
		if refusal.State == StateOpen {
			r.stats.refusedOpen++
		} else {
			r.stats.refusedHalfOpen++
		}
		if p != nil {
			r.fatalf("refused Permit returned a permit")
		}
		return
	}
	if err != nil {
		r.fatalf("Permit = %v, want a permit (probe=%v)", err, want.probe)
	}
	if p.Probe() != want.probe {
		r.fatalf("Permit().Probe() = %v, want %v", p.Probe(), want.probe)
	}
	want.real = p
	r.permits = append(r.permits, want)
	if want.probe {
		r.stats.probes++
	}
}

func (r *modelRun) wantRefusal(err error, want *OpenError) {
	r.t.Helper()
	var oe *OpenError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOpen) {
		r.fatalf("error %v (%T), want refusal %+v", err, err, *want)
	}
	if oe.Breaker != want.Breaker || oe.State != want.State || !oe.Until.Equal(want.Until) {
		r.fatalf("refusal %+v, want %+v", *oe, *want)
	}
	if got, left := oe.RetryAfter(), nonNegative(want.Until.Sub(r.m.now)); got != left {
		r.fatalf("refusal's RetryAfter() = %v, want %v", got, left)
	}
}

func (r *modelRun) reported(got, want bool) {
	r.t.Helper()
	if !want {
		r.stats.notApplied++
	}
	if got != want {
		r.fatalf("report returned %v, want %v", got, want)
	}
}

func (r *modelRun) call(fnErr error, invalid bool) {
	ran := false
	var opts []CallOption[int]
	if invalid {
		opts = append(opts, Validate(func(int) bool { return false }))
	}
	got, err := Call(context.Background(), r.b, func(context.Context) (int, error) {
		ran = true
		return 7, fnErr
	}, opts...)
	want, refusal := r.m.permit()
	r.logf("Call(fn returns %v, invalid=%v): %d, %v", fnErr, invalid, got, err)
	if refusal != nil {
		r.wantRefusal(err, refusal)
		if ran || got != 0 {
			r.fatalf("refused Call ran fn (%v) or returned %d", ran, got)
		}
		return
	}
	if !ran || got != 7 || err != fnErr {
		r.fatalf("Call = %d, %v (ran %v), want 7, %v", got, err, ran, fnErr)
	}
	o := r.cfg.outcomeOf(fnErr)
	if fnErr == nil && invalid {
		o = Failure
	}
	if !r.m.report(want, o) {
		r.fatalf("model: Call's report not applied")
	}
}

func (r *modelRun) doneCtx(viaCall bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.logf("done ctx (Call=%v)", viaCall)
	if viaCall {
		_, err := Call(ctx, r.b, func(context.Context) (int, error) {
			r.t.Error("Call with a done ctx ran fn")
			return 0, nil
		})
		if err != context.Canceled {
			r.fatalf("Call(done ctx) = %v, want context.Canceled", err)
		}
		return
	}
	if p, err := r.b.Permit(ctx); p != nil || err != context.Canceled {
		r.fatalf("Permit(done ctx) = %v, %v, want nil, context.Canceled", p, err)
	}
}

// advance moves the mock clock by d. It never lets one Add cross a due time:
// it adds exactly up to it, waits for the transition the timer makes, and
// goes on from there, so every timer the breaker arms exists before the Add
// that must fire it.
func (r *modelRun) advance(d time.Duration) {
	r.logf("advance %v", d)
	for {
		due, ok := r.m.due()
		if !ok || r.m.now.Add(d).Before(due) {
			if d > 0 {
				r.mock.Add(d)
				r.m.now = r.m.now.Add(d)
			}
			break
		}
		step := due.Sub(r.m.now)
		r.mock.Add(step)
		d -= step
		if r.m.state == StateHalfOpen {
			r.stats.probeTimeouts++
		}
		r.stats.timers++
		r.m.fire()
		r.logf("timer due at +%v fired", due.Sub(time.Unix(0, 0)))
		r.drain(r.driver) // waits for the timer's event
		// The loop offers an event to each subscriber in turn. Subscribe is
		// served by the loop only between steps, so once it returns every
		// subscription holds the event, and draining them needs no waiting.
		_, cancel := r.b.Subscribe()
		cancel()
	}
	if now := r.mock.Now(); !now.Equal(r.m.now) {
		r.fatalf("mock clock at %v, model at %v", now, r.m.now)
	}
}

func (r *modelRun) subscribe(lazy bool) *modelSub {
	events, cancel := r.b.Subscribe()
	s := &modelSub{id: len(r.trace), events: events, cancel: cancel, next: len(r.m.events), lazy: lazy}
	r.subs = append(r.subs, s)
	r.logf("subscribe %d lazy=%v", s.id, lazy)
	return s
}

// cancel cancels subscription i: what it holds is still received, then the
// channel is closed.
func (r *modelRun) cancel(i int) {
	s := r.subs[i]
	r.logf("cancel %d", s.id)
	s.cancel()
	r.drain(s)
	select {
	case ev, ok := <-s.events:
		if ok {
			r.fatalf("subscription %d: event %+v after cancel, want the channel closed", s.id, ev)
		}
	default:
		r.fatalf("subscription %d: channel not closed when cancel returned", s.id)
	}
	s.cancel() // twice is fine
	r.subs = append(r.subs[:i], r.subs[i+1:]...)
}

// drain receives what s must hold: every event since its last drain, or for
// a subscription that fell behind, the newest SubscriberBuffer of them.
func (r *modelRun) drain(s *modelSub) {
	r.t.Helper()
	want := r.m.events[s.next:]
	if len(want) > SubscriberBuffer {
		if !s.lazy {
			r.fatalf("subscription %d is %d events behind", s.id, len(want))
		}
		want = want[len(want)-SubscriberBuffer:]
		r.stats.lazyOverflows++
	}
	for _, w := range want {
		r.receive(s, w)
	}
	s.next = len(r.m.events)
	select {
	case ev, ok := <-s.events:
		if ok {
			r.fatalf("subscription %d: unexpected event %+v", s.id, ev)
		}
	default:
	}
}

func (r *modelRun) receive(s *modelSub, want Event) {
	r.t.Helper()
	var got Event
	select {
	case ev, ok := <-s.events:
		if !ok {
			r.fatalf("subscription %d closed, want event %+v", s.id, want)
		}
		got = ev
	case <-time.After(guard):
		r.fatalf("subscription %d: no event within %v, want %+v", s.id, guard, want)
	}
	if got.Seq != want.Seq || got.Breaker != want.Breaker || got.From != want.From || got.To != want.To ||
		!got.At.Equal(want.At) || got.Reason != want.Reason {
		r.fatalf("subscription %d: event\n\t%+v\nwant\n\t%+v", s.id, got, want)
	}
	s.next = int(want.Seq)
}

// check compares what can be observed between steps.
func (r *modelRun) check() {
	r.t.Helper()
	if got, want := r.b.State(), r.m.state; got != want {
		r.fatalf("State() = %v, model %v", got, want)
	}
	if got, want := r.b.Counts(), r.m.wantCounts(); got != want {
		r.fatalf("Counts() = %+v\n\tmodel %+v", got, want)
	}
	for _, s := range r.subs {
		if !s.lazy {
			r.drain(s)
		}
	}
}

// stop is semantic 11 at the end of every run.
func (r *modelRun) stop() {
	r.logf("Stop")
	within(r.t, "Stop", r.b.Stop)
	if got, want := r.b.State(), r.m.state; got != want {
		r.fatalf("State() after Stop = %v, want the last state %v", got, want)
	}
	if got, want := r.b.Counts(), r.m.wantCounts(); got != want {
		r.fatalf("Counts() after Stop = %+v, want the last %+v", got, want)
	}
	if _, err := r.b.Permit(context.Background()); err != ErrStopped {
		r.fatalf("Permit after Stop = %v, want ErrStopped", err)
	}
	if _, err := Call(context.Background(), r.b, func(context.Context) (int, error) { return 0, nil }); err != ErrStopped {
		r.fatalf("Call after Stop = %v, want ErrStopped", err)
	}
	for _, p := range r.permits {
		if p.real.ReportOutcome(Success) || p.real.Report(errBoom) {
			r.fatalf("Report after Stop applied")
		}
	}
	if got := r.b.Counts(); got != r.m.wantCounts() {
		r.fatalf("Counts() changed after Stop: %+v", got)
	}
	for _, s := range r.subs {
		select {
		case ev, ok := <-s.events:
			if ok {
				r.fatalf("subscription %d: event %+v after Stop, want the channel closed", s.id, ev)
			}
		case <-time.After(guard):
			r.fatalf("subscription %d not closed by Stop", s.id)
		}
		s.cancel() // after Stop is fine
	}
}

// modelTally adds up the stats of runs, to show what TestModel exercised.
type modelTally struct {
	mu          sync.Mutex
	runs        int
	transitions int
	modelStats
}

func (tot *modelTally) add(s modelStats, transitions int) {
	if tot == nil {
		return
	}
	tot.mu.Lock()
	defer tot.mu.Unlock()
	tot.runs++
	tot.transitions += transitions
	tot.ops += s.ops
	tot.refusedOpen += s.refusedOpen
	tot.refusedHalfOpen += s.refusedHalfOpen
	tot.probes += s.probes
	tot.notApplied += s.notApplied
	tot.timers += s.timers
	tot.probeTimeouts += s.probeTimeouts
	tot.lazyOverflows += s.lazyOverflows
}

// TestModel runs random sequences against the model, each seed a parallel
// subtest. Rerun one with -run 'TestModel/seed=17$'; run more with
// -model.seeds and -model.seed0.
func TestModel(t *testing.T) {
	seeds := *modelSeeds
	if testing.Short() {
		seeds = min(seeds, 8)
	}
	tally := &modelTally{}
	t.Cleanup(func() {
		t.Logf("%d runs: %d transitions, %+v", tally.runs, tally.transitions, tally.modelStats)
	})
	for seed := *modelSeed0; seed < *modelSeed0+int64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewSource(seed))
			n := 100 + rng.Intn(200)
			if seed%12 == 0 {
				n = maxModelOps // long enough for a lazy subscriber to fall behind
			}
			data := make([]byte, n)
			rng.Read(data)
			runModel(t, data, tally)
		})
	}
}

// FuzzModel drives the same runner from the fuzzer's bytes: the first five
// choose the configuration and the mock clock's start, then each operation
// takes two. The checked-in corpus is in testdata/fuzz/FuzzModel.
func FuzzModel(f *testing.F) {
	const (
		success = 0x00 // an argument byte's outcome is in its high nibble
		failure = 0x10
		ignored = 0x20
	)
	// Trip, refuse, 1ns before the retry timer, onto it, refuse while the
	// probe is out, close.
	f.Add(modelInput([5]byte{0, 0, 0, 0, 0},
		op(opPermit, 0), op(opReport, failure), op(opPermit, 0), op(opAdvanceBefore, 0), op(opPermit, 0),
		op(opAdvanceToDue, 0), op(opPermit, 0), op(opPermit, 0), op(opReport, success), op(opPermit, 0)))
	// A probe that times out: its late report is stale; then far advances.
	f.Add(modelInput([5]byte{2, 1, 3, 0, 9},
		op(opPermit, 0), op(opReport, failure), op(opPermit, 0), op(opReport, failure), op(opPermit, 0),
		op(opReport, failure), op(opAdvanceToDue, 0), op(opPermit, 0), op(opAdvanceBefore, 0), op(opPermit, 0),
		op(opAdvanceToDue, 0), op(opReportAny, success), op(opAdvanceFar, 1), op(opPermit, 0)))
	// An ignored probe, a duplicate, stale permits from closed.
	f.Add(modelInput([5]byte{0, 2, 4, 1, 0},
		op(opPermit, 0), op(opPermit, 0), op(opReport, failure), op(opAdvanceToDue, 0), op(opReportAny, success|1),
		op(opPermit, 0), op(opReport, ignored), op(opReportAny, success), op(opPermit, 0), op(opBadOutcome, 0),
		op(opReport, failure), op(opAdvance, 200), op(opPermit, 0), op(opReport, success)))
	// Calls and errors under a classifier, with a lazy subscriber and a cancel.
	f.Add(modelInput([5]byte{1, 3, 1, 3, 1},
		op(opSubscribe, 1), op(opSubscribe, 0), op(opCall, 0x10), op(opCall, 0x11), op(opReportErr, 0x30),
		op(opPermit, 0), op(opReportErr, 0x60), op(opDoneCtx, 1), op(opAdvanceToDue, 0), op(opCall, 0x20),
		op(opCall, 0x10), op(opCancel, 1), op(opDrainLazy, 0), op(opAdvanceFar, 3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		runModel(t, data, nil)
	})
}

// modelInput encodes a configuration and operations as runModel decodes them.
func modelInput(config [5]byte, ops ...[2]byte) []byte {
	data := config[:]
	for _, o := range ops {
		data = append(data, o[:]...)
	}
	return data
}

// op encodes an operation and its argument byte.
func op(kind modelOp, arg byte) [2]byte {
	for i, o := range modelOpTable {
		if o == kind {
			return [2]byte{byte(i), arg}
		}
	}
	panic("no such operation")
}
