package actor

import (
	"fmt"
	"time"

	"github.com/benbjohnson/clock"
)

// machine is the breaker's state machine. It is not safe for concurrent use:
// only the loop goroutine (or a test) touches it.
type machine struct {
	name         string
	clock        clock.Clock // never read here: refusals carry it for RetryAfter
	allowedFails uint64
	retry        time.Duration
	probeTimeout time.Duration

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
}

func newMachine(name string, clk clock.Clock, allowedFails int, retry, probeTimeout time.Duration) *machine {
	return &machine{name: name, clock: clk, allowedFails: uint64(allowedFails), retry: retry, probeTimeout: probeTimeout}
}

// acquire grants a ticket or refuses, at time now.
func (m *machine) acquire(now time.Time) (ticket, *OpenError) {
	switch {
	case m.state == StateClosed:
		return ticket{gen: m.gen}, nil
	case m.state == StateOpen || m.probeOut:
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
	return t.gen == m.gen && (m.state != StateClosed || (o == Failure && m.failures+1 >= m.allowedFails))
}

// settle applies an outcome (or a release) for a ticket at time now. It
// returns whether it was applied and the transition it caused, if any.
// openFor > 0 is the dependency's own word on how long to stay open, used
// instead of the retry timer if this outcome opens the breaker.
func (m *machine) settle(now time.Time, t ticket, o Outcome, openFor time.Duration) (bool, *Event) {
	if t.gen != m.gen {
		return false, nil // stale: granted before the latest transition
	}
	if m.state == StateHalfOpen {
		if !t.probe || !m.probeOut {
			return false, nil
		}
		switch o {
		case Success:
			m.failures = 0
			return true, m.transition(StateClosed, now, "probe succeeded")
		case Failure:
			m.failures++
			return true, m.open(now, now, m.period(openFor), "probe failed")
		}
		// Ignored or released: the next permit may probe.
		m.probeOut = false
		m.setDeadline(time.Time{})
		return true, nil
	}
	if m.state != StateClosed {
		return false, nil // no permit of an open generation exists
	}
	switch o {
	case Success:
		m.failures = 0
	case Failure:
		m.failures++
		if m.failures >= m.allowedFails {
			return true, m.open(now, now, m.period(openFor), consecutiveFailures(m.failures))
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
		return m.open(due, due, m.retry, fmt.Sprintf("probe not reported within %v", m.probeTimeout)), true
	}
	return nil, false
}

// control carries out a transition asked for from outside the breaker's
// rules (Event.External), at time now. It returns the transition, if any.
func (m *machine) control(now time.Time, op controlOp, reason string) *Event {
	var ev *Event
	switch op {
	case tripOp:
		if m.state != StateClosed {
			return nil
		}
		ev = m.open(now, now, m.retry, reason)
	}
	if ev != nil {
		ev.External = true
	}
	return ev
}

// period returns how long an opening stays open: the dependency's own word
// when it gave one, else the retry timer.
func (m *machine) period(openFor time.Duration) time.Duration {
	if openFor > 0 {
		return openFor
	}
	return m.retry
}

// open moves to open at time at, for period d counted from from.
func (m *machine) open(at, from time.Time, d time.Duration, reason string) *Event {
	ev := m.transition(StateOpen, at, reason)
	m.setDeadline(from.Add(d)) // Add saturates: math.MaxInt64 keeps a breaker open for good
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
	m.refusal = nil
	if to != StateOpen {
		m.setDeadline(time.Time{})
	}
	m.seq++
	return &Event{Seq: m.seq, Breaker: m.name, From: from, To: to, At: at, Reason: reason}
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
	return derive(snapshot{state: m.state, gen: m.gen, failures: m.failures, probeOut: m.probeOut, deadline: m.deadline, refusal: m.refusal})
}

// derive fills in a snapshot's derived fields.
func derive(s snapshot) snapshot {
	s.grants = s.state == StateClosed && !s.stopped
	s.clean = s.grants && s.failures == 0
	return s
}
