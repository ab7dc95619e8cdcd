package actor

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/benbjohnson/clock"
)

// machine is the breaker's state machine. It is not safe for concurrent use:
// only the loop goroutine (or a test) touches it.
type machine struct {
	name         string
	clock        clock.Clock // never read here: refusals carry it for RetryAfter, windows make tickers with it
	allowedFails uint64      // 0: the consecutive rule is off (a failure-rate rule without WithAllowedFails)
	retry        time.Duration
	probeTimeout time.Duration

	// The trip and recovery policies (see setPolicies), behind a pointer:
	// most breakers use none and share defaultPolicies, which keeps an idle
	// breaker within its allocation size class.
	*policies

	state    State
	gen      uint64 // incremented by every transition
	failures uint64 // consecutive failures since the last success
	probeOut bool   // half-open: the probe is granted and not yet reported
	// deadline is when the retry timer is due (open) or the probe's deadline
	// (half-open with the probe out); zero otherwise.
	deadline time.Time
	timerSeq uint64 // incremented whenever deadline changes: the loop re-arms
	// refusal is what every refused permit gets while open or while the
	// probe is out: one per open period (and per probe), so refusing needs
	// no allocation.
	refusal *OpenError
	seq     uint64 // Seq of the last event

	window   *window // the closed generation's failure-rate window; nil in other states or without the rule
	openings uint64  // openings since the last close: the backoff's k
	probeRun uint64  // successful probes so far in this half-open period
}

// policies are a machine's trip and recovery policies, immutable once set
// but for rng's state (only the machine's owner draws from it).
type policies struct {
	rate           *rateRule     // nil: no failure-rate window
	backoffMax     time.Duration // 0: no backoff
	jitter         float64       // 0: none
	rng            *rand.Rand    // jitter's draws; nil without jitter
	probeSuccesses uint64        // successful probes in a row that close; at least 1
}

// defaultPolicies is shared, read-only, by every machine that sets none.
var defaultPolicies = policies{probeSuccesses: 1}

func newMachine(name string, clk clock.Clock, allowedFails int, retry, probeTimeout time.Duration) *machine {
	return &machine{name: name, clock: clk, allowedFails: uint64(allowedFails), retry: retry, probeTimeout: probeTimeout, policies: &defaultPolicies}
}

// setPolicies configures the trip and recovery policies of a machine that
// has not made a step yet.
func (m *machine) setPolicies(o *options) {
	if o.rateWindow == 0 && o.backoffMax == 0 && o.jitter == 0 && o.probeSuccesses <= 1 {
		m.policies = &defaultPolicies
		return
	}
	m.policies = &policies{probeSuccesses: 1}
	if o.rateWindow > 0 {
		m.rate = newRateRule(o.rateThreshold, o.rateMinCalls, o.rateWindow)
		m.window = newWindow(m.rate, m.clock)
		if !o.allowedFailsSet {
			m.allowedFails = 0 // semantic 15: only the rate trips, unless both are asked for
		}
	}
	m.backoffMax = o.backoffMax
	if o.jitter > 0 {
		m.jitter = o.jitter
		seed := o.seed
		if seed == nil {
			// The process's random source, not the breaker's clock: a mock
			// clock does not disturb it, and breakers made at the same
			// instant draw differently.
			seed = &[2]uint64{rand.Uint64(), rand.Uint64()}
		}
		m.rng = rand.New(rand.NewPCG(seed[0], seed[1]))
	}
	if o.probeSuccesses > 0 {
		m.probeSuccesses = uint64(o.probeSuccesses)
	}
}

// acquire grants a ticket or refuses, at time now.
func (m *machine) acquire(now time.Time) (ticket, *OpenError) {
	switch {
	case m.state == StateClosed || m.state == StateDisabled:
		return ticket{gen: m.gen}, nil
	case m.state == StateOpen || m.state == StateForcedOpen || m.probeOut:
		return ticket{}, m.refusal
	}
	m.probeOut = true
	m.setDeadline(now.Add(m.probeTimeout))
	m.refuseUntil(m.probeTimeout)
	return ticket{gen: m.gen, probe: true}, nil
}

// needsTime reports whether settle needs the time for this report: only when
// it may make a transition.
func (m *machine) needsTime(t ticket, o Outcome) bool {
	if t.gen != m.gen {
		return false
	}
	switch m.state {
	case StateClosed:
		if m.window != nil {
			// Placed in the window: a failure by the clock, a success in the
			// current bucket if there is one (a success that ends a run of
			// failures, say).
			return o == Failure || (o == Success && !m.window.live())
		}
		return o == Failure && m.allowedFails > 0 && m.failures+1 >= m.allowedFails
	case StateDisabled:
		return false
	}
	return true
}

// settle applies an outcome (or a release) for a ticket at time now. It
// returns whether it was applied and the transition it caused, if any.
// openFor > 0 is the dependency's own word on how long to stay open, used
// instead of the retry timer (and backoff and jitter) if this outcome opens
// the breaker.
func (m *machine) settle(now time.Time, t ticket, o Outcome, openFor time.Duration) (bool, *Event) {
	if t.gen != m.gen {
		return false, nil // stale: granted before the latest transition
	}
	switch m.state {
	case StateHalfOpen:
		if !t.probe || !m.probeOut {
			return false, nil
		}
		switch o {
		case Success:
			m.failures = 0
			if m.probeRun++; m.probeRun >= m.probeSuccesses {
				return true, m.transition(StateClosed, now, "probe succeeded")
			}
			// Not yet: stay half-open (no event); the next permit probes.
		case Failure:
			m.failures++
			return true, m.open(now, m.openPeriod(openFor), "probe failed")
		}
		// Ignored, released, or a success short of the run: the next permit
		// may probe. An ignored probe neither counts nor breaks the run.
		m.probeOut = false
		m.setDeadline(time.Time{})
		return true, nil
	case StateDisabled:
		// Counted by the caller; nothing trips, but the run of failures
		// goes on (semantic 13: ConsecutiveFailures is the run since the
		// last Success, whatever the state).
		switch o {
		case Success:
			m.failures = 0
		case Failure:
			m.failures++
		}
		return true, nil
	case StateClosed:
	default:
		return false, nil // no permit of an open generation exists
	}
	switch o {
	case Success:
		m.failures = 0
		switch {
		case m.window == nil:
		case now.IsZero(): // needsTime found the bucket live
			m.window.successNow()
		default:
			m.window.success(now)
		}
	case Failure:
		m.failures++
		if m.allowedFails > 0 && m.failures >= m.allowedFails {
			return true, m.open(now, m.openPeriod(openFor), consecutiveFailures(m.failures))
		}
		if m.window != nil {
			if failures, total := m.window.failure(now); m.rate.trips(failures, total) {
				return true, m.open(now, m.openPeriod(openFor), m.rate.reason(failures, total))
			}
		}
	}
	return true, nil
}

// timerFired handles the firing of the timer armed for m.deadline. It returns
// the transition and whether it counted a failure (a probe that timed out).
func (m *machine) timerFired() (*Event, bool) {
	due := m.deadline
	switch {
	case m.state == StateOpen:
		m.setDeadline(time.Time{})
		return m.transition(StateHalfOpen, due, "retry timer elapsed"), false
	case m.state == StateHalfOpen && m.probeOut:
		m.failures++
		// The next retry period starts when the probe was due, so that the
		// schedule does not drift with how late the loop ran.
		return m.open(due, m.openPeriod(0), fmt.Sprintf("probe not reported within %v", m.probeTimeout)), true
	}
	return nil, false
}

// control carries out a transition asked for from outside the breaker's
// rules (Event.External), at time now. It returns the transition, if any:
// none when the breaker is already where op would take it.
func (m *machine) control(now time.Time, op controlOp, reason string) *Event {
	var ev *Event
	switch op {
	case tripOp:
		if m.state != StateClosed {
			return nil
		}
		ev = m.open(now, m.openPeriod(0), reason)
	case forceOpenOp:
		if m.state == StateForcedOpen {
			return nil
		}
		ev = m.transition(StateForcedOpen, now, reason)
		m.refusal = &OpenError{Breaker: m.name, State: StateForcedOpen, clock: m.clock} // Until zero: no timer runs
	case disableOp:
		if m.state == StateDisabled {
			return nil
		}
		ev = m.transition(StateDisabled, now, reason) // the run of failures goes on; Reset clears it
	case resetOp:
		m.failures, m.openings = 0, 0
		if m.state == StateClosed {
			// Clear silently: no event, no new generation; a fresh window.
			if m.rate != nil {
				m.dropWindow()
				m.window = newWindow(m.rate, m.clock)
			}
			return nil
		}
		ev = m.transition(StateClosed, now, reason)
	}
	if ev != nil {
		ev.External = true
	}
	return ev
}

// openPeriod counts an opening and returns how long it stays open: the
// dependency's own word when it gave one; else the retry timer, doubled for
// each earlier opening since the last close up to the backoff's max, then
// drawn from [d*(1-jitter), d].
func (m *machine) openPeriod(openFor time.Duration) time.Duration {
	m.openings++
	if openFor > 0 {
		return openFor
	}
	d := m.retry
	if m.backoffMax > 0 {
		for k := uint64(1); k < m.openings && d < m.backoffMax; k++ {
			if d > m.backoffMax/2 {
				d = m.backoffMax // also keeps d*2 from overflowing
				break
			}
			d *= 2
		}
		d = min(d, m.backoffMax)
	}
	if m.rng != nil {
		// d*jitter < d, so the conversion cannot overflow; the draw is
		// uniform over whole nanoseconds from d-span to d.
		if span := int64(float64(d) * m.jitter); span > 0 {
			d -= time.Duration(m.rng.Int64N(span + 1))
		}
	}
	return d
}

// open moves to open at time at, for period d counted from at.
func (m *machine) open(at time.Time, d time.Duration, reason string) *Event {
	ev := m.transition(StateOpen, at, reason)
	m.setDeadline(at.Add(d)) // Add saturates: math.MaxInt64 keeps a breaker open for good
	m.refuseUntil(d)
	return ev
}

// refuseUntil makes the refusal for the current open period or probe, due
// at m.deadline, which is at most d away.
func (m *machine) refuseUntil(d time.Duration) {
	m.refusal = &OpenError{Breaker: m.name, State: m.state, Until: m.deadline, clock: m.clock, period: d}
}

func (m *machine) transition(to State, at time.Time, reason string) *Event {
	from := m.state
	m.state = to
	m.gen++
	m.probeOut = false
	m.probeRun = 0
	m.refusal = nil
	if to != StateOpen {
		m.setDeadline(time.Time{})
	}
	m.dropWindow()
	if to == StateClosed {
		m.openings = 0 // closing resets the backoff
		if m.rate != nil {
			m.window = newWindow(m.rate, m.clock) // a closed generation starts with an empty window
		}
	}
	m.seq++
	return &Event{Seq: m.seq, Breaker: m.name, From: from, To: to, At: at, Reason: reason}
}

// dropWindow ends the current window: callers still holding it add to an
// object nobody reads.
func (m *machine) dropWindow() {
	if m.window != nil {
		m.window.withdraw()
		m.window = nil
	}
}

func consecutiveFailures(n uint64) string {
	if n == 1 {
		return "1 consecutive failure"
	}
	return fmt.Sprintf("%d consecutive failures", n)
}

func (m *machine) setDeadline(d time.Time) {
	if !d.Equal(m.deadline) {
		m.timerSeq++
	}
	m.deadline = d
}

// snapshot returns the state to publish, with its derived fields.
func (m *machine) snapshot() snapshot {
	return derive(snapshot{st: uint8(m.state), gen: m.gen, failing: m.failures > 0, probeOut: m.probeOut, refusal: m.refusal, window: m.window})
}

// derive fills in a snapshot's derived fields. A disabled breaker grants
// from the snapshot too, and a success there is clean, as in closed, when
// no failures run.
func derive(s snapshot) snapshot {
	s.grants = (s.state() == StateClosed || s.state() == StateDisabled) && !s.stopped
	s.clean = s.grants && !s.failing
	return s
}
