package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A view shows the story as it happens. Only tell and watch call it, from
// one goroutine.
type view interface {
	begin(cfg config, with, without side)
	phase(elapsed time.Duration, p phase)
	event(elapsed time.Duration, ev actor.Event)
	tick(elapsed time.Duration, p phase, state actor.State, with, without progress)
	end(s summary)
}

// A side is one half of the comparison: a dependency and the callers that
// call it (through the breaker, or not).
type side struct {
	dep     *dependency
	callers *callers
}

// progress is one side's cumulative numbers at a tick.
type progress struct {
	totals
	reached uint64 // calls the dependency received
}

func (s side) progress() progress {
	return progress{s.callers.all.snapshot(), s.dep.totalReceived()}
}

// tell runs the story: two dependencies on the same schedule, callers that
// call one through a breaker and the other directly, and a view that shows
// it. It returns when cfg.duration has passed or ctx is done (then the
// summary is the story so far), after stopping every goroutine it started.
func tell(ctx context.Context, cfg config, stdout io.Writer) (summary, error) {
	opts := []actor.Option{
		actor.WithName("dependency"),
		actor.WithAllowedFails(cfg.allowedFails),
		actor.WithRetryTimer(cfg.retryTimer),
		// The view prints every transition; the library's log lines would repeat them.
		actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))),
	}
	if cfg.probeTimeout > 0 {
		opts = append(opts, actor.WithProbeTimeout(cfg.probeTimeout))
	}
	b, err := actor.New(opts...)
	if err != nil {
		return summary{}, err
	}
	defer b.Stop()
	events, unsubscribe := b.Subscribe()
	defer unsubscribe()

	sched := schedule{
		start:       time.Now(),
		outageStart: cfg.outageStart,
		outageEnd:   cfg.outageStart + cfg.outageLength,
	}
	var with, without side
	if with.dep, err = startDependency(sched, cfg); err != nil {
		return summary{}, err
	}
	if without.dep, err = startDependency(sched, cfg); err != nil {
		return summary{}, errors.Join(err, shutdownAll(with.dep))
	}
	withCall, closeWith := newHTTPCall(with.dep.url, cfg.workers)
	withoutCall, closeWithout := newHTTPCall(without.dep.url, cfg.workers)

	// The story ends by cancellation, not by a deadline, so that the breaker
	// ignores the calls it cuts short (context.Canceled) instead of counting
	// them as failures (context.DeadlineExceeded).
	storyCtx, endStory := context.WithCancel(ctx)
	defer endStory()
	var workers sync.WaitGroup
	with.callers = startCallers(storyCtx, &workers, cfg, sched, throughBreaker(b, withCall))
	without.callers = startCallers(storyCtx, &workers, cfg, sched, withoutCall)

	var v view = &textView{w: stdout, color: cfg.color}
	if cfg.jsonOutput {
		v = newJSONView(stdout)
	}
	v.begin(cfg, with, without)
	transitions := watch(storyCtx, v, cfg.tick, sched, cfg.duration, b, events, with, without)

	// Wind down in order: callers first, so that no call is in flight when
	// the breaker stops and the dependencies shut down.
	endStory()
	workers.Wait()
	b.Stop() // closes events after the transitions still buffered
	for ev := range events {
		transitions = append(transitions, ev)
		v.event(ev.At.Sub(sched.start), ev)
	}
	closeWith()
	closeWithout()
	err = shutdownAll(with.dep, without.dep)

	s := summary{
		elapsed:      min(time.Since(sched.start), cfg.duration),
		interrupted:  ctx.Err() != nil,
		outageStart:  cfg.outageStart,
		outageLength: cfg.outageLength,
		with:         summarize(with, sched, transitions),
		without:      summarize(without, sched, nil),
		counts:       b.Counts(),
		transitions:  transitions,
	}
	v.end(s)
	return s, err
}

// watch feeds the view until the story's duration has passed or ctx is done:
// a line per tick, a line per phase change, and each breaker transition as it
// arrives. It returns the transitions it saw.
func watch(ctx context.Context, v view, every time.Duration, sched schedule, duration time.Duration,
	b *actor.Breaker, events <-chan actor.Event, with, without side) []actor.Event {
	var transitions []actor.Event
	storyEnds := time.NewTimer(time.Until(sched.start.Add(duration)))
	defer storyEnds.Stop()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	outageBegins := time.NewTimer(time.Until(sched.start.Add(sched.outageStart)))
	defer outageBegins.Stop()
	outageEnds := time.NewTimer(time.Until(sched.start.Add(sched.outageEnd)))
	defer outageEnds.Stop()
	for {
		select {
		case <-ctx.Done():
			return transitions
		case <-storyEnds.C:
			return transitions
		case ev, ok := <-events:
			if !ok {
				events = nil // only Stop closes it, and that comes after the story
				continue
			}
			transitions = append(transitions, ev)
			v.event(ev.At.Sub(sched.start), ev)
		case <-outageBegins.C:
			v.phase(sched.outageStart, phaseOutage)
		case <-outageEnds.C:
			v.phase(sched.outageEnd, phaseRecovery)
		case now := <-ticker.C:
			// Name the phase that held for most of the tick, not the one it ends in.
			v.tick(now.Sub(sched.start), sched.phaseAt(now.Add(-every/2)), b.State(), with.progress(), without.progress())
		}
	}
}

// shutdownAll shuts the dependencies down, giving running handlers a few
// seconds (they end as soon as their callers are gone).
func shutdownAll(deps ...*dependency) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, d := range deps {
		errs = append(errs, d.shutdown(ctx))
	}
	return errors.Join(errs...)
}
