package main

import "time"

// A phase is a part of the dependency's script.
type phase int

const (
	phaseHealthy  phase = iota // before the outage: every call answered 200
	phaseOutage                // most calls answered 503, every hangEvery-th call hangs
	phaseRecovery              // after the outage: every call answered 200 again
	numPhases
)

func (p phase) String() string {
	switch p {
	case phaseHealthy:
		return "healthy"
	case phaseOutage:
		return "outage"
	case phaseRecovery:
		return "recovery"
	}
	return "unknown"
}

// A schedule places the phases on the real clock. Both dependencies and both
// sets of callers share one, so the two runs see the same story at the same
// moments.
type schedule struct {
	start       time.Time // the story's time zero
	outageStart time.Duration
	outageEnd   time.Duration
}

// phaseAt returns the phase at time t.
func (s schedule) phaseAt(t time.Time) phase {
	switch elapsed := t.Sub(s.start); {
	case elapsed < s.outageStart:
		return phaseHealthy
	case elapsed < s.outageEnd:
		return phaseOutage
	}
	return phaseRecovery
}
