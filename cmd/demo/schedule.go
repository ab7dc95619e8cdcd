package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// A script is what one backend does over the story: healthy, then a spell
// of trouble, then healthy again. A backend whose trouble never starts
// (length 0) stays healthy throughout.
type script struct {
	name       string        // how the story calls the backend: "payments"
	trouble    string        // what its trouble is called: "outage", "throttling"
	start      time.Duration // when the trouble starts, since the story's start
	length     time.Duration // how long it lasts; 0: no trouble
	status     int           // the answer during the trouble: 503, 429
	retryAfter int           // the Retry-After header on those answers, in seconds; 0: none
	hangEvery  int           // during the trouble every hangEvery-th call hangs instead; 0: none
}

func (s script) end() time.Duration { return s.start + s.length }

// troubled reports whether the backend has any trouble at all.
func (s script) troubled() bool { return s.length > 0 }

// A phase is a part of a backend's script.
type phase int

const (
	phaseHealthy  phase = iota // before the trouble: every call answered 200
	phaseTrouble               // the script's status, or a hang
	phaseRecovery              // after the trouble: every call answered 200 again
	numPhases
)

// phaseName names p for backend s: "healthy", s.trouble, "recovery".
func (s script) phaseName(p phase) string {
	switch p {
	case phaseHealthy:
		return "healthy"
	case phaseTrouble:
		return s.trouble
	case phaseRecovery:
		return "recovery"
	}
	return "unknown"
}

// describe says in a few words what the backend does in its trouble.
func (s script) describe() string {
	if !s.troubled() {
		return "healthy throughout"
	}
	what := fmt.Sprintf("%d", s.status)
	if s.retryAfter > 0 {
		what += fmt.Sprintf(" with Retry-After: %d", s.retryAfter)
	}
	if s.hangEvery > 0 {
		what += fmt.Sprintf(", every %s call hangs", ordinal(s.hangEvery))
	}
	return what
}

// A schedule places the backends' scripts on the real clock. Both copies of
// every backend and both clients share one, so the two sides see the same
// story at the same moments.
type schedule struct {
	start   time.Time // the story's time zero
	scripts []script  // one per backend, in the order the story shows them
}

// phaseAt returns backend i's phase at time t.
func (s schedule) phaseAt(i int, t time.Time) phase {
	sc := s.scripts[i]
	switch elapsed := t.Sub(s.start); {
	case !sc.troubled() || elapsed < sc.start:
		return phaseHealthy
	case elapsed < sc.end():
		return phaseTrouble
	}
	return phaseRecovery
}

// A change is a backend entering a phase.
type change struct {
	at      time.Duration // since the story's start
	backend int
	to      phase
}

// changes returns every phase change of every backend, in time order.
func (s schedule) changes() []change {
	var cs []change
	for i, sc := range s.scripts {
		if sc.troubled() {
			cs = append(cs, change{sc.start, i, phaseTrouble}, change{sc.end(), i, phaseRecovery})
		}
	}
	slices.SortStableFunc(cs, func(a, b change) int { return cmp.Compare(a.at, b.at) })
	return cs
}
