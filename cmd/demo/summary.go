package main

import (
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A summary is what the story showed: the same outage met with and without
// the breaker.
type summary struct {
	elapsed      time.Duration // how long the story ran
	interrupted  bool          // stopped early (Ctrl-C): the numbers are the story so far
	outageStart  time.Duration
	outageLength time.Duration

	with, without runSummary
	counts        actor.Counts  // the breaker's own counts, for cross-checking
	transitions   []actor.Event // every transition of the breaker, in order
}

// A runSummary is one run's side of the comparison. A nil duration means it
// never happened (or cannot happen: without a breaker nothing opens).
type runSummary struct {
	sent             uint64 // calls the callers started, whole story
	outageReached    uint64 // calls the dependency received during the outage
	outageRefused    uint64 // calls during the outage the breaker turned away at once
	outageFailed     uint64 // calls during the outage that failed or timed out
	outageLatency    latencies
	outageToOpen     *time.Duration // from the outage's start until the breaker opened
	recoveryToClosed *time.Duration // from the outage's end until the breaker closed
	recoveryToOK     *time.Duration // from the outage's end until a caller first got a 200
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

// summarize gathers one run's results. Call it after the workers are done.
func summarize(sd side, sched schedule, transitions []actor.Event) runSummary {
	c, d := sd.callers, sd.dep
	outage := c.byPhase[phaseOutage].snapshot()
	s := runSummary{
		sent:          c.all.sent.Load(),
		outageReached: d.received[phaseOutage].Load(),
		outageRefused: outage.refused,
		outageFailed:  outage.failed,
		outageLatency: percentilesOf(c.outageLatenciesSorted()),
	}
	if ns := c.firstRecovered.Load(); ns != 0 {
		s.recoveryToOK = durationPtr(time.Duration(ns) - sched.outageEnd)
	}
	for _, ev := range transitions {
		at := ev.At.Sub(sched.start)
		switch {
		case ev.To == actor.StateOpen && at >= sched.outageStart && s.outageToOpen == nil:
			s.outageToOpen = durationPtr(at - sched.outageStart)
		case ev.To == actor.StateClosed && at >= sched.outageEnd && s.recoveryToClosed == nil:
			s.recoveryToClosed = durationPtr(at - sched.outageEnd)
		}
	}
	return s
}

func durationPtr(d time.Duration) *time.Duration { return &d }
