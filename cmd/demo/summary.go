package main

import (
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A summary is what the story showed: each backend's trouble met by a
// client with a breaker per backend and by a plain one.
type summary struct {
	elapsed     time.Duration // how long the story ran
	interrupted bool          // stopped early (Ctrl-C): the numbers are the story so far
	hosts       []hostSummary // one per backend, in the schedule's order
}

// A hostSummary is one backend's side by side comparison.
type hostSummary struct {
	script        script
	key           string // its breaker's key in the transport
	with, without runSummary
	counts        actor.Counts  // its breaker's own counts, for cross-checking
	transitions   []actor.Event // every transition of its breaker, in order
}

// A runSummary is one client's calls to one backend. A nil duration means it
// never happened (or cannot happen: without a breaker nothing opens).
type runSummary struct {
	sent             uint64 // calls the client started, whole story
	reached          uint64 // calls the backend received, whole story
	refused          uint64 // calls the breaker turned away at once, whole story
	troubleReached   uint64 // calls the backend received during its trouble
	troubleRefused   uint64 // calls during the trouble the breaker turned away at once
	troubleFailed    uint64 // calls during the trouble that failed or timed out
	latency          latencies
	troubleToOpen    *time.Duration  // from the trouble's start until the breaker opened
	recoveryToClosed *time.Duration  // from the trouble's end until the breaker closed
	recoveryToOK     *time.Duration  // from the trouble's end until a caller first got a 200
	opened           int             // times the breaker opened
	openPeriods      []time.Duration // how long each opening that ended lasted, in order
}

// latencies summarises how long calls kept their callers waiting.
type latencies struct {
	n        int           // calls measured
	p50, p99 time.Duration // zero if n == 0
}

// percentilesOf summarises sorted latencies (nearest rank).
func percentilesOf(sorted []time.Duration) latencies {
	l := latencies{n: len(sorted)}
	if l.n > 0 {
		l.p50 = sorted[rank(l.n, 50)]
		l.p99 = sorted[rank(l.n, 99)]
	}
	return l
}

// rank is the index of the p-th percentile among n sorted values, nearest rank.
func rank(n, p int) int {
	r := (n*p + 99) / 100 // ceil(n*p/100), 1-based
	return max(r-1, 0)
}

// summarize gathers one client's results for backend i. The latencies are
// those of the calls made during the trouble, or of all calls to a backend
// that has none. Call it after the workers are done.
func summarize(sd side, i int, sched schedule, transitions []actor.Event) runSummary {
	h, b, sc := &sd.callers.hosts[i], sd.backends[i], sched.scripts[i]
	trouble := h.byPhase[phaseTrouble].snapshot()
	measured := phaseTrouble
	if !sc.troubled() {
		measured = phaseHealthy
	}
	s := runSummary{
		sent:           h.all.sent.Load(),
		reached:        b.totalReceived(),
		refused:        h.all.refused.Load(),
		troubleReached: b.received[phaseTrouble].Load(),
		troubleRefused: trouble.refused,
		troubleFailed:  trouble.failed,
		latency:        percentilesOf(sd.callers.latenciesSorted(i, measured)),
	}
	if ns := h.firstRecovered.Load(); ns != 0 {
		s.recoveryToOK = durationPtr(time.Duration(ns) - sc.end())
	}
	for k, ev := range transitions {
		at := ev.At.Sub(sched.start)
		switch {
		case ev.To == actor.StateOpen && sc.troubled() && at >= sc.start && s.troubleToOpen == nil:
			s.troubleToOpen = durationPtr(at - sc.start)
		case ev.To == actor.StateClosed && sc.troubled() && at >= sc.end() && s.recoveryToClosed == nil:
			s.recoveryToClosed = durationPtr(at - sc.end())
		}
		if ev.To == actor.StateOpen {
			s.opened++
		}
		if ev.To == actor.StateOpen && k+1 < len(transitions) {
			s.openPeriods = append(s.openPeriods, transitions[k+1].At.Sub(ev.At))
		}
	}
	return s
}

// longestOpen is the longest open period that ended, or nil.
func (r runSummary) longestOpen() *time.Duration {
	if len(r.openPeriods) == 0 {
		return nil
	}
	longest := r.openPeriods[0]
	for _, d := range r.openPeriods[1:] {
		longest = max(longest, d)
	}
	return &longest
}

func durationPtr(d time.Duration) *time.Duration { return &d }
