package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/httpbreaker"
)

// A view shows the story as it happens. Only tell and watch call it, from
// one goroutine.
type view interface {
	begin(cfg config, sched schedule, with, without side)
	phase(elapsed time.Duration, backend int, p phase)
	event(elapsed time.Duration, backend int, ev hostEvent)
	tick(elapsed time.Duration, hosts []hostProgress)
	end(s summary)
}

// A side is one half of the comparison: a copy of every backend and the
// client that calls them (through the breakers, or not).
type side struct {
	backends []*backend
	callers  *callers
}

// progress is one side's cumulative numbers for one backend at a tick.
type progress struct {
	totals
	reached uint64 // calls the backend received
}

func (s side) progress(i int) progress {
	return progress{s.callers.hosts[i].all.snapshot(), s.backends[i].totalReceived()}
}

// hostProgress is what a tick shows of one backend.
type hostProgress struct {
	phase         phase       // the phase that held for most of the tick
	state         actor.State // its breaker's
	with, without progress
}

// tell runs the story: two copies of three backends on the same schedule,
// one client that calls one copy through a breaker per backend and one that
// calls the other directly, and a view that shows it. It returns when
// cfg.duration has passed or ctx is done (then the summary is the story so
// far), after stopping every goroutine it started.
func tell(ctx context.Context, cfg config, stdout io.Writer) (summary, error) {
	sched := schedule{start: time.Now(), scripts: cfg.scripts()}
	var with, without side
	for _, s := range []*side{&with, &without} {
		for i := range sched.scripts {
			b, err := startBackend(sched, i, cfg)
			if err != nil {
				return summary{}, errors.Join(err, shutdownAll(with.backends, without.backends))
			}
			s.backends = append(s.backends, b)
		}
	}
	urls := func(s side) (us []string) {
		for _, b := range s.backends {
			us = append(us, b.url)
		}
		return us
	}
	keys := make([]string, len(with.backends)) // the transport's keys for the breaker side's backends
	for i, b := range with.backends {
		u, err := url.Parse(b.url)
		if err != nil {
			return summary{}, errors.Join(err, shutdownAll(with.backends, without.backends))
		}
		keys[i] = httpbreaker.HostKey(u)
	}

	plain := newHTTPTransport(cfg.workers, len(sched.scripts))
	underBreakers := newHTTPTransport(cfg.workers, len(sched.scripts))
	br, err := newBreakers(underBreakers, cfg)
	if err != nil {
		return summary{}, errors.Join(err, shutdownAll(with.backends, without.backends))
	}
	defer br.stop()

	// The story ends by cancellation, not by a deadline, so that the breakers
	// ignore the calls it cuts short (context.Canceled) instead of counting
	// them as failures (context.DeadlineExceeded).
	storyCtx, endStory := context.WithCancel(ctx)
	defer endStory()
	var workers sync.WaitGroup
	with.callers = startCallers(storyCtx, &workers, cfg, sched, &http.Client{Transport: br.transport}, urls(with))
	without.callers = startCallers(storyCtx, &workers, cfg, sched, &http.Client{Transport: plain}, urls(without))

	var v view = &textView{w: stdout, color: cfg.color}
	if cfg.jsonOutput {
		v = newJSONView(stdout)
	}
	v.begin(cfg, sched, with, without)
	w := watcher{v: v, sched: sched, keys: keys, br: br, with: with, without: without,
		transitions: make([][]actor.Event, len(keys))}
	w.watch(storyCtx, cfg.tick, cfg.duration)

	// Wind down in order: callers first, so that no call is in flight when
	// the breakers stop and the backends shut down.
	endStory()
	workers.Wait()
	counts := make([]actor.Counts, len(keys))
	for i, key := range keys {
		if b := br.breaker(key); b != nil {
			counts[i] = b.Counts()
		}
	}
	br.stop() // events closes after the transitions still buffered
	for ev := range br.events {
		w.event(ev)
	}
	plain.CloseIdleConnections()
	underBreakers.CloseIdleConnections()
	err = shutdownAll(with.backends, without.backends)

	s := summary{
		elapsed:     min(time.Since(sched.start), cfg.duration),
		interrupted: ctx.Err() != nil,
	}
	for i, sc := range sched.scripts {
		s.hosts = append(s.hosts, hostSummary{
			script:      sc,
			key:         keys[i],
			with:        summarize(with, i, sched, w.transitions[i]),
			without:     summarize(without, i, sched, nil),
			counts:      counts[i],
			transitions: w.transitions[i],
		})
	}
	v.end(s)
	return s, err
}

// watcher feeds the view while the story runs.
type watcher struct {
	v             view
	sched         schedule
	keys          []string // the breaker keys, by backend
	br            *breakers
	with, without side

	transitions [][]actor.Event // by backend, as they arrived
}

// watch feeds the view until the story's duration has passed or ctx is done:
// a block per tick, a line per phase change, and each breaker transition as
// it arrives.
func (w *watcher) watch(ctx context.Context, every time.Duration, duration time.Duration) {
	storyEnds := time.NewTimer(time.Until(w.sched.start.Add(duration)))
	defer storyEnds.Stop()
	ticker := time.NewTicker(every)
	defer ticker.Stop()

	changes := w.sched.changes()
	var changeTimer *time.Timer
	var changec <-chan time.Time // fires at changes[0]; nil when no change is left
	armChange := func() {
		changec = nil
		if len(changes) > 0 {
			changeTimer = time.NewTimer(time.Until(w.sched.start.Add(changes[0].at)))
			changec = changeTimer.C
		}
	}
	armChange()
	defer func() {
		if changeTimer != nil {
			changeTimer.Stop()
		}
	}()

	events := w.br.events
	for {
		select {
		case <-ctx.Done():
			return
		case <-storyEnds.C:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // only stop closes it, and that comes after the story
				continue
			}
			w.event(ev)
		case <-changec:
			// Several backends may change at one moment: show them all.
			for at := changes[0].at; len(changes) > 0 && changes[0].at == at; changes = changes[1:] {
				w.v.phase(at, changes[0].backend, changes[0].to)
			}
			armChange()
		case now := <-ticker.C:
			w.tick(now, every)
		}
	}
}

// event records a transition and shows it.
func (w *watcher) event(ev hostEvent) {
	i := w.backendOf(ev.Key)
	if i < 0 {
		return // not one of the story's backends
	}
	w.transitions[i] = append(w.transitions[i], ev.Event)
	w.v.event(ev.At.Sub(w.sched.start), i, ev)
}

func (w *watcher) backendOf(key string) int {
	for i, k := range w.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// tick shows every backend's numbers at now, the end of a tick of length every.
func (w *watcher) tick(now time.Time, every time.Duration) {
	hosts := make([]hostProgress, len(w.keys))
	for i, key := range w.keys {
		hosts[i] = hostProgress{
			// Name the phase that held for most of the tick, not the one it ends in.
			phase:   w.sched.phaseAt(i, now.Add(-every/2)),
			with:    w.with.progress(i),
			without: w.without.progress(i),
		}
		if b := w.br.breaker(key); b != nil {
			hosts[i].state = b.State()
		}
	}
	w.v.tick(now.Sub(w.sched.start), hosts)
}

// shutdownAll shuts the backends down, giving running handlers a few seconds
// (they end as soon as their callers are gone).
func shutdownAll(sides ...[]*backend) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, bs := range sides {
		for _, b := range bs {
			errs = append(errs, b.shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}
