package actor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"runtime"
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
	modelSeeds = flag.Int("model.seeds", 64, "TestModel: how many random sequences to run")
	modelSeed0 = flag.Int64("model.seed0", 1, "TestModel: the first seed")
)

// model is the contract as a plain sequential program. It has no goroutines
// and no clock: the runner tells it the time, which it tracks from its own
// bookkeeping of the mock clock.
//
// Where the contract leaves the breaker a choice, the model holds the bounds
// the contract sets and learns the choice from the breaker:
//   - jitter (semantic 16): an opening's period is drawn from [d(1-f), d];
//     the model keeps the bounds until the runner reads the drawn Until off
//     a refusal (learn), then holds the breaker to it exactly, the half-open
//     event at that instant included.
//   - the failure-rate window (semantic 15): how the buckets align is the
//     breaker's, so an outcome aged between window - window/10 and window may
//     count or not. When that decides whether a failure trips, the model asks
//     the breaker's State (observe) and goes on from the answer; the Open
//     event's "(f of t)" must then be one of the counts the bounds allow.
type model struct {
	cfg  modelConfig
	name string
	now  time.Time
	// observe returns the real breaker's state after a report the model
	// could not decide alone (see closedFailure).
	observe func() State

	state State
	// epoch changes with every transition; a permit granted in an older
	// epoch is stale (semantic 6).
	epoch   uint64
	run     uint64    // consecutive failures since the last success
	retryAt time.Time // open: when the retry timer fires
	// retryKnown is false after a jittered opening until the runner learnt
	// the drawn period; retryLo and retryHi bound it meanwhile.
	retryKnown       bool
	retryLo, retryHi time.Time
	// probe is the outstanding half-open probe; nil while the probe is free.
	probe         *modelPermit
	probeDeadline time.Time

	openings int           // openings since the last close: the backoff's k (semantic 16)
	openFor  time.Duration // while a report with a Retry-After is applied: the open period it gives
	probeRun int           // successful probes in a row in this half-open period (semantic 17)
	window   []windowEntry // this closed generation's Successes and Failures, oldest first (semantic 15)

	counts Counts       // all but ConsecutiveFailures, which is run
	events []modelEvent // every transition so far; events[i].Seq == i+1
	stats  modelPolicyStats
}

// modelEvent is an expected event. Where the model accepts more than one
// reason (two rules fired at once; a window count within bounds), reasonOK
// says which; nil: exactly Reason.
type modelEvent struct {
	Event
	reasonOK func(string) bool
}

// windowEntry is an outcome in the failure-rate window, at its report's time.
type windowEntry struct {
	at      time.Time
	failure bool
}

// modelPolicyStats says what a run exercised of the policies.
type modelPolicyStats struct {
	rateTrips, rateAmbiguous, backoffs, jittered, probeRuns, slow, controls, retryAfters int
}

// modelPermit is a permit as the model sees it, with the real one beside it.
type modelPermit struct {
	real     *Permit
	epoch    uint64
	probe    bool
	granted  time.Time // for WithSlowCall
	reported bool      // a report was made (applied or not): any later one is a duplicate
}

func newModel(cfg modelConfig, name string, now time.Time) *model {
	return &model{cfg: cfg, name: name, now: now, retryKnown: true}
}

// permit is semantics 1, 3, 5 and 18: closed and disabled grant, open and
// forced open refuse, half-open grants the one probe and refuses while it is
// out.
func (m *model) permit() (*modelPermit, *OpenError) {
	switch {
	case m.state == StateOpen:
		if !m.retryKnown {
			panic("model: a refusal before the open period was learnt")
		}
		m.counts.Rejected++
		return nil, &OpenError{Breaker: m.name, State: StateOpen, Until: m.retryAt}
	case m.state == StateForcedOpen:
		m.counts.Rejected++
		return nil, &OpenError{Breaker: m.name, State: StateForcedOpen} // Until zero: no timer runs
	case m.state == StateHalfOpen && m.probe != nil:
		m.counts.Rejected++
		return nil, &OpenError{Breaker: m.name, State: StateHalfOpen, Until: m.probeDeadline}
	}
	m.counts.Requests++
	p := &modelPermit{epoch: m.epoch, granted: m.now}
	if m.state == StateHalfOpen {
		p.probe = true
		m.probe = p
		m.probeDeadline = m.now.Add(m.cfg.probeTimeout())
	}
	return p, nil
}

// report is semantics 1, 5, 6, 13, 15, 17 and 17b: it returns whether the
// report applies.
func (m *model) report(p *modelPermit, o Outcome) bool { return m.reportRetryAfter(p, o, 0) }

// reportRetryAfter is report with the dependency's word on how long it
// needs (Permit.ReportRetryAfter): a Failure that opens the breaker opens it
// for d (> 0) instead of its retry timer, backoff and jitter.
func (m *model) reportRetryAfter(p *modelPermit, o Outcome, d time.Duration) bool {
	if p.reported {
		return false // duplicate
	}
	p.reported = true
	if m.state == StateHalfOpen && m.probe == p && !m.now.Before(m.probeDeadline) {
		// Semantic 5, due timers first: the clock reached the probe's
		// deadline (the runner held its timer back), so the probe timed out
		// before this report: the timeout is the Failure, the report late.
		m.fire()
	}
	m.openFor = d // for an opening this report makes, not the timeout's above
	defer func() { m.openFor = 0 }()
	if p.epoch != m.epoch {
		return false // stale: granted before the latest transition
	}
	if m.cfg.slow > 0 && m.now.Sub(p.granted) > m.cfg.slow {
		o = Failure // semantic 17b: more than d after the grant, whatever it says
		m.stats.slow++
	}
	switch o {
	case Success:
		m.counts.Successes++
		m.run = 0
	case Failure:
		m.counts.Failures++
		m.run++ // in every state, disabled too (semantic 13)
	case Ignored:
		m.counts.Ignored++
	}
	switch m.state {
	case StateClosed:
		if m.cfg.rate && o != Ignored {
			m.window = append(m.window, windowEntry{at: m.now, failure: o == Failure})
		}
		if o == Failure {
			m.closedFailure()
		}
	case StateHalfOpen:
		// Only the probe is granted in a half-open epoch, so p is the probe.
		m.probe = nil
		switch o {
		case Success:
			if m.probeRun++; m.probeRun >= m.cfg.probeSuccessesOrOne() {
				if m.probeRun > 1 {
					m.stats.probeRuns++
				}
				m.transition(StateClosed, m.now, "probe succeeded")
			}
			// Short of the run: stays half-open, no event; the next
			// permit probes.
		case Failure:
			m.open(m.now, "probe failed")
		}
		// Ignored: stays half-open with no event, neither counts nor
		// breaks the run; the next permit probes.
	}
	// Disabled: counted, nothing trips.
	return true
}

// closedFailure decides whether a Failure just applied in closed trips:
// the consecutive rule (semantic 1, only if given along with a failure rate)
// or the failure rate (semantic 15).
func (m *model) closedFailure() {
	consecutive := m.cfg.consecutiveRule() && m.run >= uint64(m.cfg.allowedFails)
	var tripping []string // the "(f of t)" of each count within bounds that trips
	some, all := false, false
	if m.cfg.rate {
		counts := m.windowCounts()
		all = true
		for _, c := range counts {
			if c.total >= uint64(m.cfg.minCalls) && float64(c.failures)/float64(c.total) >= m.cfg.threshold {
				some = true
				tripping = append(tripping, fmt.Sprintf("(%d of %d)", c.failures, c.total))
			} else {
				all = false
			}
		}
	}
	rateReason := func(reason string) bool {
		if !strings.HasPrefix(reason, "failure rate ") {
			return false
		}
		for _, s := range tripping {
			if strings.Contains(reason, s) {
				return true
			}
		}
		return false
	}
	switch {
	case consecutive:
		reason := fmt.Sprintf("%d consecutive failures", m.run)
		if m.run == 1 {
			reason = "1 consecutive failure"
		}
		ev := m.open(m.now, reason)
		if some { // both rules fired: either may give the reason
			ev.reasonOK = func(r string) bool { return r == reason || rateReason(r) }
		}
	case some && (all || m.observe() == StateOpen):
		if !all {
			m.stats.rateAmbiguous++
		}
		m.stats.rateTrips++
		ev := m.open(m.now, "failure rate")
		ev.reasonOK = rateReason
	case some:
		m.stats.rateAmbiguous++ // within bounds, the breaker counted so that it did not trip
	}
}

type windowCount struct{ failures, total uint64 }

// windowCounts returns every count of the window ending now that semantic
// 15's bounds allow: an outcome younger than window - window/10 counts, one
// older than window does not, and one in between may. The buckets count
// whole spans of time, so what counts is every outcome since some instant:
// one count for each cut among the outcomes in between (outcomes at the
// same instant go together).
func (m *model) windowCounts() []windowCount {
	w := m.cfg.window
	sure := w - w/10
	// Outcomes older than the window never count again: forget them.
	i := 0
	for i < len(m.window) && m.now.Sub(m.window[i].at) > w {
		i++
	}
	m.window = m.window[i:]
	var c windowCount
	var counts []windowCount
	for j := len(m.window) - 1; j >= 0; j-- {
		e := m.window[j]
		if m.now.Sub(e.at) >= sure && (j == len(m.window)-1 || !e.at.Equal(m.window[j+1].at)) {
			counts = append(counts, c) // cut after e: e and older do not count
		}
		c.total++
		if e.failure {
			c.failures++
		}
	}
	return append(counts, c) // everything since the oldest in reach counts
}

// due returns when the breaker's timer fires next, if it is armed: the retry
// timer while open, the probe's deadline while the probe is out. Forced
// open and disabled run no timer (semantic 18).
func (m *model) due() (time.Time, bool) {
	switch {
	case m.state == StateOpen:
		if !m.retryKnown {
			panic("model: the open period was not learnt")
		}
		return m.retryAt, true
	case m.state == StateHalfOpen && m.probe != nil:
		return m.probeDeadline, true
	}
	return time.Time{}, false
}

// applyDue fires the timer if the clock reached it (the runner held it
// back): every step the loop executes does that first (semantic 5).
func (m *model) applyDue() {
	if at, ok := m.due(); ok && !m.now.Before(at) {
		m.fire()
	}
}

// fire moves the model's time to the due time and fires the timer there
// (semantics 4 and 5: the event is at the due time).
func (m *model) fire() {
	at, ok := m.due()
	if !ok {
		panic("model: fire with no timer armed")
	}
	if m.now.Before(at) {
		m.now = at // otherwise later: the runner held the timer back
	}
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

// open counts an opening and opens at the time at for its period: the retry
// timer, after backoff (the k-th opening since the last close stays
// retry*2^(k-1), capped), then jitter's draw, known only within bounds.
func (m *model) open(at time.Time, reason string) *modelEvent {
	m.openings++
	if m.openFor > 0 { // the dependency's word: no backoff, no jitter (it still counts as an opening)
		m.stats.retryAfters++
		m.retryAt, m.retryKnown = at.Add(m.openFor), true
		return m.transition(StateOpen, at, reason)
	}
	d := m.cfg.retry
	if m.cfg.backoff > 0 {
		for k := 1; k < m.openings && d < m.cfg.backoff; k++ {
			d *= 2
		}
		d = min(d, m.cfg.backoff)
		if d > m.cfg.retry {
			m.stats.backoffs++
		}
	}
	if m.cfg.jitter > 0 {
		// [d(1-f), d] on whole nanoseconds; the floor and 1ns take up the
		// rounding of the product, which has nothing to do with the rule.
		m.retryKnown = false
		m.retryLo = at.Add(time.Duration(math.Floor(float64(d)*(1-m.cfg.jitter))) - 1)
		m.retryHi = at.Add(d)
	} else {
		m.retryAt = at.Add(d)
	}
	return m.transition(StateOpen, at, reason)
}

// learn takes the drawn retry time the breaker reported.
func (m *model) learn(until time.Time) bool {
	if until.Before(m.retryLo) || until.After(m.retryHi) {
		return false
	}
	if until.Before(m.retryHi) {
		m.stats.jittered++
	}
	m.retryAt, m.retryKnown = until, true
	return true
}

// control is semantic 18 and Trip: ops from outside the breaker's rules.
// The loop serves them, so a timer the clock reached fires first.
func (m *model) control(op controlOp, reason string) {
	m.applyDue()
	var ev *modelEvent
	switch op {
	case tripOp:
		if m.state != StateClosed {
			return // Trip does nothing unless closed
		}
		ev = m.open(m.now, reason)
	case forceOpenOp:
		if m.state == StateForcedOpen {
			return
		}
		ev = m.transition(StateForcedOpen, m.now, "forced open")
	case disableOp:
		if m.state == StateDisabled {
			return
		}
		ev = m.transition(StateDisabled, m.now, "disabled") // the run goes on; Reset clears it
	case resetOp:
		// Clears the run, the window and the backoff, also when closed,
		// where it is silent and keeps the generation.
		m.run, m.window, m.openings = 0, nil, 0
		if m.state == StateClosed {
			return
		}
		ev = m.transition(StateClosed, m.now, "reset")
	}
	ev.External = true
	m.stats.controls++
}

func (m *model) transition(to State, at time.Time, reason string) *modelEvent {
	m.events = append(m.events, modelEvent{Event: Event{
		Seq: uint64(len(m.events)) + 1, Breaker: m.name, From: m.state, To: to, At: at, Reason: reason,
	}})
	m.state = to
	m.epoch++
	m.probe = nil
	m.probeRun = 0
	m.window = nil // closed-state outcomes only, and a close starts empty
	if to != StateOpen {
		m.retryKnown = true // no open period to learn
	}
	if to == StateClosed {
		m.run = 0
		m.openings = 0 // closing resets the backoff
	}
	return &m.events[len(m.events)-1]
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

	// policies: the input has a policy block (bit 2 of the first byte), and
	// its operations include Trip, ForceOpen, Disable and Reset. Inputs
	// without it decode as they did before the policies existed.
	policies bool
	// Semantic 15: WithFailureRate(threshold, minCalls, window); with it,
	// the consecutive rule only if allowedGiven.
	rate         bool
	threshold    float64
	minCalls     int
	window       time.Duration
	allowedGiven bool
	backoff      time.Duration // WithBackoff; 0: not given
	jitter       float64       // WithJitter; 0: none (given as 0 when jitterGiven)
	jitterGiven  bool
	probes       int           // WithProbeSuccesses; 0: not given
	slow         time.Duration // WithSlowCall; 0: not given
	seed         uint64        // the jitter's random source (withSeed), so that a failing input replays the same draws
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
	// The last carries a dependency's Retry-After: a Failure under the
	// default rules, a Success or Ignored under others.
	modelErrors = []error{nil, errBoom, errNotFound, errRateLimit, context.Canceled,
		fmt.Errorf("call: %w", context.Canceled), context.DeadlineExceeded,
		&RetryAfterError{Err: fmt.Errorf("call: %w", errNotFound), After: 45 * time.Second}}
)

// modelRetryAfter is the dependency's word an error carries
// (RetryAfterError), 0 for none: it holds whatever makes the report an
// opening Failure, the classifier or WithSlowCall.
func modelRetryAfter(err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return max(ra.After, 0)
	}
	return 0
}

func (c modelConfig) probeTimeout() time.Duration {
	if c.probe == 0 {
		return c.retry
	}
	return c.probe
}

func (c modelConfig) probeSuccessesOrOne() int { return max(c.probes, 1) }

// consecutiveRule says whether the consecutive rule trips: always, but with
// a failure rate only if WithAllowedFails is given too (semantic 15).
func (c modelConfig) consecutiveRule() bool { return !c.rate || c.allowedGiven }

func (c modelConfig) options() []Option {
	opts := []Option{WithRetryTimer(c.retry)}
	if c.consecutiveRule() {
		opts = append(opts, WithAllowedFails(c.allowedFails))
	}
	if c.rate {
		opts = append(opts, WithFailureRate(c.threshold, c.minCalls, c.window))
	}
	if c.backoff > 0 {
		opts = append(opts, WithBackoff(c.backoff))
	}
	if c.jitterGiven {
		opts = append(opts, WithJitter(c.jitter), withSeed(c.seed, ^c.seed))
	}
	if c.probes > 0 {
		opts = append(opts, WithProbeSuccesses(c.probes))
	}
	if c.slow > 0 {
		opts = append(opts, WithSlowCall(c.slow))
	}
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
	s := fmt.Sprintf("allowedFails=%d retry=%v probe=%v classify=%d", c.allowedFails, c.retry, c.probe, c.classify)
	if !c.policies {
		return s
	}
	if c.rate {
		s += fmt.Sprintf(" rate=(%v, %d, %v) allowedGiven=%v", c.threshold, c.minCalls, c.window, c.allowedGiven)
	}
	if c.backoff > 0 {
		s += fmt.Sprintf(" backoff=%v", c.backoff)
	}
	if c.jitterGiven {
		s += fmt.Sprintf(" jitter=%v seed=%d", c.jitter, c.seed)
	}
	if c.probes > 0 {
		s += fmt.Sprintf(" probeSuccesses=%d", c.probes)
	}
	if c.slow > 0 {
		s += fmt.Sprintf(" slow=%v", c.slow)
	}
	return s + " (policies)"
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
	first := s.next()
	return modelConfig{
		allowedFails: 1 + int(first)%4,
		policies:     first&4 != 0,
		retry:        modelRetries[s.intn(len(modelRetries))],
		probe:        modelProbes[s.intn(len(modelProbes))],
		classify:     s.intn(classifyModes),
	}
}

var (
	modelThresholds = []float64{0.5, 0.25, 1, 0.3, 0.6, 0.75}
	modelJitters    = []float64{0, 0.1, 0.5, 0.9}
)

// decodePolicies reads the policy block: five bytes after the clock's.
// Durations are in proportion to the retry timer, as the runner's advances
// are, so that windows slide and slow calls happen within a run.
func (c *modelConfig) decodePolicies(s *byteSource) {
	b := s.next()
	if c.rate = b&1 == 1; c.rate {
		c.threshold = modelThresholds[int(b>>1)%len(modelThresholds)]
		c.allowedGiven = b&0xc0 == 0xc0 // mostly the rate alone: the consecutive rule would decide first
		b = s.next()
		c.minCalls = 1 + int(b)%6
		c.window = []time.Duration{c.retry, 2 * c.retry, c.retry / 2, c.retry/8 + 3, 9}[int(b>>4)%5]
	} else {
		s.next()
	}
	b = s.next()
	if k := int(b) % 5; k > 0 {
		c.backoff = c.retry * []time.Duration{1, 2, 3, 8}[k-1]
	}
	if k := int(b>>4) % 5; k > 0 {
		c.jitterGiven, c.jitter = true, modelJitters[k-1]
	}
	b = s.next()
	c.probes = int(b) % 4 // 0: not given
	c.slow = []time.Duration{0, 0, c.retry / 4, c.retry, 1, c.retry * 3 / 2}[int(b>>4)%6]
	c.seed = uint64(s.next())
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
	opAdvanceLate           // onto the next due time, its timer held back (manual clock): a late report or permit comes first
	opSubscribe
	opCancel
	opDrainLazy
	opCycle // a burst of transitions: trip, the retry timer, a probe that closes or fails
	opKinds

	// With a policy block only (semantic 18 and Trip):
	opTrip
	opForceOpen
	opDisable
	opReset
	opBurst // traffic: reports spread over the failure-rate window, each a byte of the input
	opPolicyKinds
)

// modelOpTable maps a byte to an operation, with these weights;
// modelPolicyOpTable, for inputs with a policy block, is the same followed
// by the policy operations, and modelRateOpTable, with a failure rate, that
// followed by more bursts: a window decides only with traffic in it. Each
// starts with the one before, so that op encodes an operation the same way
// for all.
var modelOpTable, modelPolicyOpTable, modelRateOpTable = func() ([]modelOp, []modelOp, []modelOp) {
	weights := [opPolicyKinds]int{
		opPermit: 12, opReport: 10, opReportErr: 6, opReportAny: 4, opBadOutcome: 1, opCall: 5, opDoneCtx: 1,
		opAdvance: 4, opAdvanceToDue: 3, opAdvanceBefore: 2, opAdvanceFar: 1, opAdvanceLate: 3,
		opSubscribe: 2, opCancel: 1, opDrainLazy: 1, opCycle: 3,
		// ForceOpen and Disable hold until a Reset: rarer than Reset, so
		// that runs spend most of their time under the breaker's own rules.
		opTrip: 2, opForceOpen: 1, opDisable: 1, opReset: 3, opBurst: 4,
	}
	var table []modelOp
	for op, w := range weights {
		for range w {
			table = append(table, modelOp(op))
		}
	}
	plain := 0
	for _, w := range weights[:opKinds] {
		plain += w
	}
	policy := len(table)
	for range 24 {
		table = append(table, opBurst)
	}
	return table[:plain:plain], table[:policy:policy], table
}()

// maxModelOps bounds one run: each clock advance costs the mock clock at
// least a millisecond of real time.
const maxModelOps = 1000

// maxModelSubs bounds the subscriptions open at once, the runner's own
// included.
const maxModelSubs = 6

// modelRun runs one sequence against a breaker and the model.
type modelRun struct {
	t   testing.TB
	b   *Breaker
	clk modelClock
	m   *model
	cfg modelConfig

	permits []*modelPermit // every permit granted, reported or not
	driver  *modelSub      // the runner's own subscription: waited on for timer-driven events
	// lateProbe is the probe whose deadline the runner reached while
	// holding its timer back, until the timer is delivered.
	lateProbe *modelPermit
	subs      []*modelSub // driver included
	trace     []string
	stats     modelStats
}

// modelStats says what a run exercised, so that a weak decoder shows.
type modelStats struct {
	ops, refusedOpen, refusedHalfOpen, probes, notApplied, timers, probeTimeouts, lazyOverflows int
	late, lateReports                                                                           int // timers held back; probe reports that came after the deadline, before the firing
	modelPolicyStats
}

type modelSub struct {
	id     int
	events <-chan Event
	cancel func()
	next   int  // index in model.events of the first event not yet received
	lazy   bool // drained only by opDrainLazy and at the end: may fall behind
}

func runModel(t testing.TB, data []byte, tally *modelTally, withMock bool) {
	src := &byteSource{data: data}
	cfg := decodeConfig(src)
	// The start time does not matter; its byte also picks the clock: the
	// manual one mostly (fast, and it can hold a timer back), clock.Mock
	// in a quarter of TestModel's runs (its timers run on goroutines of
	// their own; FuzzModel leaves it out for speed).
	startByte := src.next()
	if cfg.policies {
		cfg.decodePolicies(src)
	}
	var clk modelClock = newManualClock()
	if withMock && startByte%4 == 0 {
		clk = &mockModelClock{clock.NewMock()}
	}
	clk.Add(time.Duration(startByte) * time.Hour)
	mock := clk.clock()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := New(append(cfg.options(), WithName("model"), WithClock(mock), WithLogger(discard))...)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	defer stopWithin(t, b)
	r := &modelRun{t: t, b: b, clk: clk, m: newModel(cfg, "model", clk.Now()), cfg: cfg}
	r.m.observe = b.State
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
	r.deliverLate()
	for _, s := range r.subs {
		r.drain(s)
	}
	r.stop()
	r.stats.modelPolicyStats = r.m.stats
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
	table := modelOpTable
	switch {
	case r.cfg.rate:
		table = modelRateOpTable
	case r.cfg.policies:
		table = modelPolicyOpTable
	}
	op := table[src.intn(len(table))]
	arg := src.next()
	outcome := Outcome(1 + int(arg>>4)%3)
	switch op {
	case opPermit, opReport, opReportErr, opReportAny, opBadOutcome, opDoneCtx, opSubscribe, opCancel, opDrainLazy,
		opTrip, opForceOpen, opDisable, opReset:
		// May come while a timer is held back: what the breaker answers
		// then is the contract's (due timers first; refusals from the
		// snapshot until the firing is handled).
	case opCall:
		if r.callAdvance(arg) > 0 {
			r.deliverLate() // fn moves the clock, which delivers held timers
		}
	default:
		r.deliverLate()
	}
	defer r.learn() // an opening with jitter: learn the period drawn before the next step
	switch op {
	case opTrip:
		r.control(opTrip, arg)
	case opForceOpen:
		r.control(opForceOpen, arg)
	case opDisable:
		r.control(opDisable, arg)
	case opReset:
		r.control(opReset, arg)
	case opBurst:
		r.burst(src, 2+int(arg)%8)
	case opAdvanceLate:
		r.advanceLate(arg)
	case opPermit:
		r.permit()
	case opReport, opReportErr:
		p := r.pick(arg, false)
		if p == nil {
			r.permit()
			return
		}
		if op == opReport && arg>>4 >= 12 {
			// A quarter of them with a Retry-After: shorter or longer than
			// the retry timer, on a Failure (which may open) or an outcome
			// it does not concern.
			o, d := outcome, r.cfg.retry/3
			switch arg >> 4 {
			case 13:
				o = Failure
			case 14:
				d = 2 * r.cfg.retry
			case 15:
				o, d = Failure, 5*r.cfg.retry/2+time.Nanosecond
			}
			r.logf("ReportRetryAfter(%v, %v) probe=%v epoch=%d", o, d, p.probe, p.epoch)
			r.reported(p.real.ReportRetryAfter(o, d), r.m.reportRetryAfter(p, o, d))
			return
		}
		if op == opReport {
			r.logf("ReportOutcome(%v) probe=%v epoch=%d", outcome, p.probe, p.epoch)
			r.reported(p.real.ReportOutcome(outcome), r.m.report(p, outcome))
			return
		}
		err := modelErrors[int(arg>>4)%len(modelErrors)]
		r.logf("Report(%v) probe=%v epoch=%d", err, p.probe, p.epoch)
		r.reported(p.real.Report(err), r.m.reportRetryAfter(p, r.cfg.outcomeOf(err), modelRetryAfter(err)))
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
		r.call(modelErrors[int(arg>>4)%len(modelErrors)], arg&1 == 1, r.callAdvance(arg))
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
	if r.m.state == StateForcedOpen || r.m.state == StateDisabled {
		r.control(opReset, 0)
		r.check()
	}
	for i := 0; r.m.state == StateClosed; i++ {
		if i == 12 {
			// A failure rate over a window full of successes can take
			// many failures: trip from outside instead.
			r.control(opTrip, byte(i))
			r.learn()
			r.check()
			break
		}
		r.permit()
		p := r.permits[len(r.permits)-1]
		r.reported(p.real.ReportOutcome(Failure), r.m.report(p, Failure))
		r.learn()
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
		if refusal.State != StateHalfOpen {
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
	r.drainNow(r.driver) // semantic 7: its event is receivable when it returns
}

// burst is n reports, each after an advance of a sixteenth of the
// failure-rate window (of the retry timer without one) times 0 to 15: the
// window fills with outcomes of every age, its edges included.
func (r *modelRun) burst(src *byteSource, n int) {
	unit := r.cfg.retry / 16
	if r.cfg.rate {
		unit = r.cfg.window / 16
	}
	r.logf("burst of %d, in steps of %v", n, unit)
	for range n {
		b := src.next()
		r.advance(unit * time.Duration(b&15))
		granted := len(r.permits)
		if r.permit(); len(r.permits) == granted {
			continue // refused
		}
		p := r.permits[granted]
		o := []Outcome{Success, Failure, Success, Failure, Failure, Success, Ignored}[(b>>4)%7]
		r.logf("ReportOutcome(%v) in a burst", o)
		r.reported(p.real.ReportOutcome(o), r.m.report(p, o))
		r.learn()
		r.check()
	}
}

// callAdvance is how long Call's fn takes in an opCall with this argument:
// with WithSlowCall, around its limit; 0 without it or while the model has a
// timer due before fn could return (the probe's own deadline: it is fn that
// is late, not the breaker's timer).
func (r *modelRun) callAdvance(arg byte) time.Duration {
	if r.cfg.slow == 0 {
		return 0
	}
	var d time.Duration
	switch (arg >> 1) & 7 {
	case 1:
		d = r.cfg.slow // exactly d is not slow: "more than d"
	case 2:
		d = r.cfg.slow + 1
	case 3:
		d = r.cfg.slow / 2
	case 4:
		d = 2 * r.cfg.slow
	}
	due, ok := r.m.due()
	if r.m.state == StateHalfOpen && r.m.probe == nil {
		due, ok = r.m.now.Add(r.cfg.probeTimeout()), true // the Call will be the probe
	}
	if ok && !r.m.now.Add(d).Before(due) {
		return 0
	}
	return d
}

// control is Trip, ForceOpen, Disable or Reset; each returns nil and, like
// Report, has its effect visible when it returns (semantic 18).
func (r *modelRun) control(op modelOp, arg byte) {
	var err error
	var cop controlOp
	var name, reason string
	switch op {
	case opTrip:
		reason = fmt.Sprintf("tripped by the model (%d)", arg)
		name, cop, err = "Trip", tripOp, r.b.Trip(reason)
	case opForceOpen:
		name, cop, err = "ForceOpen", forceOpenOp, r.b.ForceOpen()
	case opDisable:
		name, cop, err = "Disable", disableOp, r.b.Disable()
	case opReset:
		name, cop, err = "Reset", resetOp, r.b.Reset()
	}
	r.logf("%s: %v", name, err)
	if err != nil {
		r.fatalf("%s = %v, want nil", name, err)
	}
	r.m.control(cop, reason)
	// Synchronous: the event is receivable already, no waiting.
	r.drainNow(r.driver)
}

// learn reads the open period jitter drew off a refusal, and holds the model
// to it from then on (semantic 16: Until reports the period drawn; the
// draw itself is the breaker's).
func (r *modelRun) learn() {
	if r.t.Failed() || r.m.state != StateOpen || r.m.retryKnown {
		return
	}
	_, err := r.b.Permit(context.Background())
	var oe *OpenError
	if !errors.As(err, &oe) || oe.State != StateOpen {
		r.fatalf("Permit after a jittered opening = %v, want a refusal while open", err)
	}
	if !r.m.learn(oe.Until) {
		r.fatalf("jittered Until %v is outside [%v, %v]", oe.Until, r.m.retryLo, r.m.retryHi)
	}
	_, refusal := r.m.permit()
	r.logf("learnt the open period: until +%v", oe.Until.Sub(time.Unix(0, 0)))
	r.wantRefusal(err, refusal)
	r.stats.refusedOpen++
}

func (r *modelRun) call(fnErr error, invalid bool, takes time.Duration) {
	ran := false
	var opts []CallOption[int]
	if invalid {
		opts = append(opts, Validate(func(int) bool { return false }))
	}
	got, err := Call(context.Background(), r.b, func(context.Context) (int, error) {
		ran = true
		if takes > 0 {
			r.clk.Add(takes) // nothing of the breaker's is due meanwhile (callAdvance)
		}
		return 7, fnErr
	}, opts...)
	want, refusal := r.m.permit()
	if ran {
		r.m.now = r.m.now.Add(takes)
	}
	r.logf("Call(fn returns %v, invalid=%v, takes %v): %d, %v", fnErr, invalid, takes, got, err)
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
	if !r.m.reportRetryAfter(want, o, modelRetryAfter(fnErr)) {
		r.fatalf("model: Call's report not applied")
	}
	r.drainNow(r.driver) // semantic 7, as for Report
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
				r.clk.Add(d)
				r.m.now = r.m.now.Add(d)
			}
			break
		}
		step := due.Sub(r.m.now)
		r.clk.Add(step)
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
		r.learn() // a probe that timed out re-opened: for the next due time
	}
	if now := r.clk.Now(); !now.Equal(r.m.now) {
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
func (r *modelRun) drain(s *modelSub) { r.drainWait(s, true) }

// drainNow is drain for events that must be receivable already: those of a
// Report, Call or control that returned (semantics 7 and 18).
func (r *modelRun) drainNow(s *modelSub) { r.drainWait(s, false) }

func (r *modelRun) drainWait(s *modelSub, wait bool) {
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
		r.receive(s, w, wait)
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

func (r *modelRun) receive(s *modelSub, want modelEvent, wait bool) {
	r.t.Helper()
	var got Event
	ok := true
	if wait {
		select {
		case got, ok = <-s.events:
		case <-time.After(guard):
			r.fatalf("subscription %d: no event within %v, want %+v", s.id, guard, want.Event)
		}
	} else {
		select {
		case got, ok = <-s.events:
		default:
			r.fatalf("subscription %d: event %+v not receivable when the call that made it returned", s.id, want.Event)
		}
	}
	if !ok {
		r.fatalf("subscription %d closed, want event %+v", s.id, want.Event)
	}
	reasonOK := got.Reason == want.Reason
	if want.reasonOK != nil {
		reasonOK = want.reasonOK(got.Reason)
	}
	if got.Seq != want.Seq || got.Breaker != want.Breaker || got.From != want.From || got.To != want.To ||
		!got.At.Equal(want.At) || !reasonOK || got.External != want.External {
		r.fatalf("subscription %d: event\n\t%+v\nwant\n\t%+v", s.id, got, want.Event)
	}
	s.next = int(want.Seq)
}

// check compares what can be observed between steps, and that the breaker
// went back to sleep (semantic 14): every operation woke it at a different
// point of its life.
func (r *modelRun) check() {
	r.t.Helper()
	deadline := time.Now().Add(guard)
	for r.b.pending.Load() != 0 {
		if time.Now().After(deadline) {
			r.fatalf("the breaker did not go back to sleep within %v", guard)
		}
		runtime.Gosched()
	}
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
	for name, f := range map[string]func() error{"Trip": func() error { return r.b.Trip("late") },
		"ForceOpen": r.b.ForceOpen, "Disable": r.b.Disable, "Reset": r.b.Reset} {
		if err := f(); err != ErrStopped {
			r.fatalf("%s after Stop = %v, want ErrStopped", name, err)
		}
	}
	if got, want := r.b.State(), r.m.state; got != want {
		r.fatalf("State() after controls after Stop = %v, want the last state %v", got, want)
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

// advanceLate moves the clock exactly onto the next due time and holds its
// timer back (manual clock only; with clock.Mock it is opAdvanceToDue):
// until deliverLate, the breaker's clock has reached the deadline but the
// firing has not arrived.
func (r *modelRun) advanceLate(arg byte) {
	due, ok := r.m.due()
	mc, manual := r.clk.(*manualClock)
	if !ok || !manual {
		if ok {
			r.advance(due.Sub(r.m.now))
		}
		return
	}
	r.logf("advance onto +%v, the timer held back", due.Sub(time.Unix(0, 0)))
	mc.set(due)
	r.m.now = due
	r.stats.late++
	if r.m.state == StateHalfOpen && r.m.probe != nil {
		r.lateProbe = r.m.probe
	}
}

// deliverLate delivers the timers held back by advanceLate, if any: the
// model fires its timer unless a late report already applied it.
func (r *modelRun) deliverLate() {
	mc, manual := r.clk.(*manualClock)
	if !manual {
		return
	}
	if r.lateProbe != nil && r.lateProbe.reported {
		r.stats.lateReports++
	}
	r.lateProbe = nil
	if due, ok := r.m.due(); ok && !r.m.now.Before(due) {
		r.logf("held timer due at +%v delivered", due.Sub(time.Unix(0, 0)))
		if r.m.state == StateHalfOpen {
			r.stats.probeTimeouts++
		}
		r.stats.timers++
		r.m.fire()
	}
	mc.deliver() // on this goroutine: the breaker runs the step before it returns
	r.drain(r.driver)
	r.learn()
}

// modelClock is the clock a run drives: Add moves it and fires what is due,
// before it returns or (clock.Mock) on goroutines of their own.
type modelClock interface {
	Add(d time.Duration)
	Now() time.Time
	clock() clock.Clock // what the breaker is given
}

type mockModelClock struct{ *clock.Mock }

func (c *mockModelClock) clock() clock.Clock { return c.Mock }

// manualClock is the model's clock in most runs: time moves only when the
// runner says so, and timers fire only when it delivers them, on its own
// goroutine, so a step a timer causes is done when Add returns. clock.Mock
// sleeps a millisecond per timer it fires and at the end of each Add, which
// capped fuzzing at a few hundred runs a second; and a runner that holds a
// firing back can make a report reach the breaker after the deadline but
// before the firing (semantic 5).
type manualClock struct {
	// *clock.Mock is never advanced: it makes the *clock.Timer values that
	// AfterFunc returns (their Stop needs a clock.Mock behind them). A
	// stopped timer still fires here: its firing is stale, and the
	// breaker drops it, as it drops a real one that lost the race with
	// Stop.
	*clock.Mock
	mu     sync.Mutex
	now    time.Time
	timers []manualTimer
}

type manualTimer struct {
	at time.Time
	f  func()
}

func newManualClock() *manualClock {
	return &manualClock{Mock: clock.NewMock(), now: time.Unix(0, 0)}
}

func (c *manualClock) clock() clock.Clock { return c }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *manualClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

func (c *manualClock) AfterFunc(d time.Duration, f func()) *clock.Timer {
	c.mu.Lock()
	c.timers = append(c.timers, manualTimer{at: c.now.Add(d), f: f})
	c.mu.Unlock()
	return c.Mock.AfterFunc(d, func() {})
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Add moves the clock and delivers every timer due by then.
func (c *manualClock) Add(d time.Duration) {
	c.set(c.Now().Add(d))
	c.deliver()
}

// deliver runs the functions of the timers due by now, earliest first, on
// the calling goroutine; a timer armed meanwhile that is due too runs next.
func (c *manualClock) deliver() {
	for {
		c.mu.Lock()
		i := -1
		for j, tm := range c.timers {
			if !tm.at.After(c.now) && (i < 0 || tm.at.Before(c.timers[i].at)) {
				i = j
			}
		}
		if i < 0 {
			c.mu.Unlock()
			return
		}
		f := c.timers[i].f
		c.timers = append(c.timers[:i], c.timers[i+1:]...)
		c.mu.Unlock()
		f()
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
	tot.late += s.late
	tot.lateReports += s.lateReports
	tot.rateTrips += s.rateTrips
	tot.rateAmbiguous += s.rateAmbiguous
	tot.backoffs += s.backoffs
	tot.jittered += s.jittered
	tot.probeRuns += s.probeRuns
	tot.slow += s.slow
	tot.controls += s.controls
	tot.retryAfters += s.retryAfters
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
			runModel(t, data, tally, true)
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
	// The dependency's Retry-After (ReportRetryAfter, high nibbles 0xC-0xF):
	// a trip open for a third of the retry timer, a failed probe for 2.5
	// timers and 1ns, a success and an ignored report that carry one and
	// change nothing of the kind.
	f.Add(modelInput([5]byte{0, 0, 0, 0, 0},
		op(opPermit, 0), op(opReport, 0xd0), op(opPermit, 0), op(opAdvanceBefore, 0), op(opPermit, 0),
		op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, 0xf0), op(opAdvanceBefore, 0), op(opPermit, 0),
		op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, 0xe0), op(opPermit, 0), op(opReport, 0xc0),
		op(opPermit, 0), op(opReport, 0xf0), op(opAdvanceToDue, 0), op(opPermit, 0)))
	// Calls and errors under a classifier, with a lazy subscriber and a cancel.
	f.Add(modelInput([5]byte{1, 3, 1, 3, 1},
		op(opSubscribe, 1), op(opSubscribe, 0), op(opCall, 0x10), op(opCall, 0x11), op(opReportErr, 0x30),
		op(opPermit, 0), op(opReportErr, 0x60), op(opDoneCtx, 1), op(opAdvanceToDue, 0), op(opCall, 0x20),
		op(opCall, 0x10), op(opCancel, 1), op(opDrainLazy, 0), op(opAdvanceFar, 3)))

	// The policies: a first byte with bit 2 set, then a policy block (see
	// decodePolicies) after the clock's byte.
	const (
		burstS = 0x00 // a burst step's outcome is in its high nibble, its advance in sixteenths in the low one
		burstF = 0x10
		burstI = 0x60
	)
	// Failure rate 0.5 over 1s with minCalls 4 (the consecutive rule off):
	// 2 of 4 trips; after the close, a failure 15/16 of the window after two
	// successes (may count), one a full window after (never counts).
	f.Add(policyInput([5]byte{4, 2, 0, 0, 0}, [5]byte{0x01, 0x03, 0, 0, 0},
		op(opBurst, 2), burst(burstS, burstS, burstF, burstF), op(opAdvanceToDue, 0), op(opPermit, 0),
		op(opReport, success), op(opBurst, 4), burst(burstS, burstS, burstF|15, burstF, burstI, burstF|1),
		op(opBurst, 1), burst(burstS|15, burstF|15, burstF), op(opReset, 0), op(opBurst, 2), burst(burstF, burstF, burstF, burstF)))
	// Backoff up to 8x with jitter 0.5: openings after failed and timed-out
	// probes stay 1, 2, 4, 8, 8 retry timers, drawn within bounds; a close
	// starts again from one.
	f.Add(policyInput([5]byte{4, 1, 0, 0, 0}, [5]byte{0, 0, 0x31, 0, 7},
		op(opCycle, failure), op(opCycle, failure), op(opAdvanceToDue, 0), op(opPermit, 0), op(opAdvanceToDue, 0),
		op(opCycle, failure), op(opCycle, failure), op(opCycle, success), op(opTrip, 1), op(opAdvanceToDue, 0),
		op(opPermit, 0), op(opAdvanceLate, 0), op(opReport, success), op(opAdvanceToDue, 0)))
	// Backoff and jitter give way to a Retry-After, which still counts as an
	// opening: the next opening without one backs off from it.
	f.Add(policyInput([5]byte{4, 1, 0, 0, 0}, [5]byte{0, 0, 0x31, 0, 7},
		op(opCycle, failure), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, 0xd0), op(opAdvanceBefore, 0),
		op(opPermit, 0), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, failure), op(opAdvanceToDue, 0),
		op(opPermit, 0), op(opReport, 0xf0), op(opAdvanceToDue, 0), op(opCycle, success)))
	// Three probe successes to close, an ignored probe and a failed one in
	// between.
	f.Add(policyInput([5]byte{5, 2, 0, 0, 0}, [5]byte{0, 0, 0, 3, 0},
		op(opTrip, 0), op(opAdvanceToDue, 0), op(opPermit, 0), op(opPermit, 0), op(opReport, success),
		op(opPermit, 0), op(opReport, ignored), op(opPermit, 0), op(opReport, success), op(opPermit, 0),
		op(opReport, failure), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, success), op(opPermit, 0),
		op(opReport, success), op(opPermit, 0), op(opReport, success), op(opPermit, 0)))
	// Slow calls at the retry timer: exactly d is not slow, 1/128 more is,
	// a cancelled report and Calls included; a slow probe re-opens.
	f.Add(policyInput([5]byte{6, 2, 0, 0, 0}, [5]byte{0, 0, 0, 0x30, 0},
		op(opPermit, 0), op(opAdvance, 128), op(opReport, success), op(opPermit, 0), op(opAdvance, 129),
		op(opReportErr, 0x40), op(opCall, 0x02), op(opCall, 0x04), op(opCall, 0x44), op(opCall, 0x08),
		op(opCycle, success), op(opPermit, 0), op(opAdvance, 129), op(opReport, success)))
	// A RetryAfterError (modelErrors' last) holds when the report is a
	// Failure because it was slow: a slow Report trips for its 45s, not the
	// 1s retry timer, and so does a slow Call once the probe has closed it.
	f.Add(policyInput([5]byte{4, 2, 0, 0, 0}, [5]byte{0, 0, 0, 0x30, 0},
		op(opPermit, 0), op(opAdvance, 129), op(opReportErr, 0x70), op(opPermit, 0), op(opAdvanceBefore, 0),
		op(opPermit, 0), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, success), op(opCall, 0x78),
		op(opPermit, 0), op(opAdvanceBefore, 0), op(opPermit, 0), op(opAdvanceToDue, 0), op(opPermit, 0),
		op(opReport, success),
		// ReportRetryAfter(Success, retry/3), slow: a Failure, open for retry/3.
		op(opPermit, 0), op(opAdvance, 129), op(opReport, 0xc0), op(opPermit, 0), op(opAdvanceToDue, 0),
		op(opPermit, 0), op(opReport, success)))
	// A failure-rate trip (2 of 4) by a ReportRetryAfter opens for its period.
	f.Add(policyInput([5]byte{4, 2, 0, 0, 0}, [5]byte{0x01, 0x03, 0, 0, 0},
		op(opBurst, 1), burst(burstS, burstS, burstF), op(opPermit, 0), op(opReport, 0xf0), op(opPermit, 0),
		op(opAdvanceBefore, 0), op(opPermit, 0), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReport, success)))
	// Manual control from every state, with its refusals, a silent Reset
	// that keeps the generation, and a Reset while the retry timer is held
	// back (the timer comes first).
	f.Add(policyInput([5]byte{6, 1, 0, 0, 0}, [5]byte{0, 0, 0, 0, 0},
		op(opPermit, 0), op(opForceOpen, 0), op(opPermit, 0), op(opReportAny, success), op(opForceOpen, 0),
		op(opDisable, 0), op(opPermit, 0), op(opReport, failure), op(opPermit, 0), op(opReport, failure),
		op(opPermit, 0), op(opReport, failure), op(opForceOpen, 0), op(opDisable, 0), op(opReset, 0),
		op(opPermit, 0), op(opReport, failure), op(opPermit, 0), op(opReset, 0), op(opReport, failure), op(opReset, 0),
		op(opTrip, 2), op(opTrip, 3), op(opAdvanceLate, 0), op(opReset, 0), op(opCycle, ignored), op(opDisable, 0),
		op(opAdvanceLate, 0), op(opReset, 0), op(opCycle, failure), op(opAdvanceToDue, 0), op(opPermit, 0), op(opReset, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		runModel(t, data, nil, false)
	})
}

// modelInput encodes a configuration and operations as runModel decodes them.
func modelInput(config [5]byte, ops ...[]byte) []byte {
	data := config[:]
	for _, o := range ops {
		data = append(data, o...)
	}
	return data
}

// policyInput is modelInput with a policy block.
func policyInput(config, policy [5]byte, ops ...[]byte) []byte {
	data := append(config[:], policy[:]...)
	for _, o := range ops {
		data = append(data, o...)
	}
	return data
}

// burst encodes the steps of an opBurst whose argument says how many.
func burst(steps ...byte) []byte { return steps }

// op encodes an operation and its argument byte.
func op(kind modelOp, arg byte) []byte {
	for i, o := range modelRateOpTable {
		if o == kind {
			return []byte{byte(i), arg}
		}
	}
	panic("no such operation")
}
