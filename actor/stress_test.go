package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The stress test (issue 5): many goroutines doing random permits and
// reports, one driver advancing the mock clock so that retry timers and probe
// timeouts both happen, one subscriber reading every event. Then everything
// the callers saw must add up with what the breaker says.

// nopHandler is a slog.Handler that is never enabled: the breaker skips
// logging entirely, as it does in production with logging turned down.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }

func quietLogger() *slog.Logger { return slog.New(nopHandler{}) }

func TestStress(t *testing.T) {
	ops := 400
	if testing.Short() {
		ops = 150
	}
	for _, procs := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			r := runStress(t, stressConfig{workers: 64, opsPerWorker: ops, seed: int64(procs)})
			t.Logf("%d ops: %d granted (%d probes), %d refused, %d applied (%d success, %d failure, %d ignored), "+
				"%d stale (%d late probes), %d abandoned, %d duplicates, %d canceled; %d clock advances, %d events "+
				"(%d probe timeouts); probes outstanding at once: max %d per generation, max %d held by callers",
				r.ops, r.granted, r.probes, r.refused, r.applied[Success]+r.applied[Failure]+r.applied[Ignored],
				r.applied[Success], r.applied[Failure], r.applied[Ignored], r.stale, r.lateProbes, r.abandoned,
				r.duplicates, r.canceled, r.adds, r.events, r.timeouts, r.maxProbes, r.maxHeld)
		})
	}
}

type stressConfig struct {
	workers, opsPerWorker int
	seed                  int64
}

// stressTally is what callers did and saw. Each worker keeps its own and
// they are added up at the end.
type stressTally struct {
	ops, granted, probes, refused, canceled int
	stale, lateProbes                       int // reports not applied (late probes among them)
	abandoned, abandonedProbes              int // permits never reported (probes among them)
	duplicates                              int

	applied [Ignored + 1]int // reports applied, by Outcome
}

func (s *stressTally) add(o stressTally) {
	s.ops += o.ops
	s.granted += o.granted
	s.probes += o.probes
	s.refused += o.refused
	s.stale += o.stale
	s.lateProbes += o.lateProbes
	s.abandoned += o.abandoned
	s.abandonedProbes += o.abandonedProbes
	s.duplicates += o.duplicates
	s.canceled += o.canceled
	for i := range s.applied {
		s.applied[i] += o.applied[i]
	}
}

type stressResult struct {
	stressTally
	adds, events, timeouts int
	maxProbes, maxHeld     int
}

// probeMeter measures how many half-open probes are outstanding at once.
//
// What it counts: a probe is the breaker's outstanding probe from the moment
// it is granted until its report is applied or its generation ends. A probe
// that timed out is no longer the breaker's probe: the breaker re-opened, a
// later half-open generation has a probe of its own, and the caller that
// still holds the old one only gets false from its late report. So the meter
// counts per generation (the permit's ticket says which): a caller counts
// its probe in after Permit returns it and out just before reporting it, and
// the rule is that no generation ever has two counted at once. Counting in
// after the grant and out before the report shrinks the window a violation
// could be seen in, but never shows one that did not happen. An abandoned
// probe is never counted out: until its timeout it is still outstanding.
//
// held counts the same probes across generations, timed-out ones too: it
// can legitimately exceed 1 and is reported only to show why the meter is
// per generation.
type probeMeter struct {
	mu        sync.Mutex
	perGen    map[uint64]int
	max       int
	held, mxH int
}

func (m *probeMeter) in(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.perGen[gen]++
	m.max = max(m.max, m.perGen[gen])
	m.held++
	m.mxH = max(m.mxH, m.held)
}

func (m *probeMeter) out(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.perGen[gen]--
	m.held--
}

// ticker lets workers wait for the driver's next clock advance.
type ticker struct {
	ch   atomic.Pointer[chan struct{}]
	done chan struct{} // closed when the driver stops
}

func newTicker() *ticker {
	tk := &ticker{done: make(chan struct{})}
	ch := make(chan struct{})
	tk.ch.Store(&ch)
	return tk
}

func (tk *ticker) tick() {
	next := make(chan struct{})
	close(*tk.ch.Swap(&next))
}

// wait returns after the next clock advance, or once the driver stopped.
func (tk *ticker) wait() {
	select {
	case <-*tk.ch.Load():
	case <-tk.done:
	}
}

// stressErrors is how workers report failures from their goroutines: the
// first few in full, then only a count.
type stressErrors struct {
	t testing.TB
	n atomic.Int32
}

func (e *stressErrors) errorf(format string, args ...any) {
	if e.n.Add(1) <= 10 {
		e.t.Errorf(format, args...)
	}
}

func runStress(t *testing.T, cfg stressConfig) stressResult {
	const (
		retry        = 5 * time.Millisecond
		probeTimeout = 3 * time.Millisecond
		maxStep      = 2 * time.Millisecond // the driver's largest Add
	)
	b, mock := start(t, WithRetryTimer(retry), WithProbeTimeout(probeTimeout), WithAllowedErrors(errNotFound),
		WithLogger(quietLogger()))
	errs := &stressErrors{t: t}
	meter := &probeMeter{perGen: map[uint64]int{}}
	tk := newTicker()

	// The subscriber checks every event as it comes: Seq contiguous, each
	// transition starts where the last one ended, At never goes back.
	events, cancel := b.Subscribe()
	defer cancel()
	var (
		subSeq   atomic.Uint64 // Seq of the last event received
		progress = make(chan struct{}, 1)
		subDone  = make(chan struct{})
		received int
		timeouts int
		lastTo   = StateClosed
	)
	go func() {
		defer close(subDone)
		var last Event
		for ev := range events {
			switch {
			case ev.Seq != last.Seq+1:
				errs.errorf("subscriber: Seq %d after %d: a gap, though it kept up", ev.Seq, last.Seq)
			case ev.From != lastTo:
				errs.errorf("subscriber: event %d goes %v -> %v, but the last one went to %v", ev.Seq, ev.From, ev.To, lastTo)
			case ev.At.Before(last.At):
				errs.errorf("subscriber: event %d At %v is before event %d's %v", ev.Seq, ev.At, last.Seq, last.At)
			}
			if strings.HasPrefix(ev.Reason, "probe not reported") {
				timeouts++
			}
			received++
			last, lastTo = ev, ev.To
			subSeq.Store(ev.Seq)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()

	// The driver advances the clock in random steps smaller than the probe
	// timeout, so an Add crosses at most one due time. Before each Add it
	// lets the subscriber catch up with the transitions made so far (a
	// snapshot's generation counts transitions, as Seq does): between two
	// Adds the breaker can make only a few transitions (an open breaker
	// waits for the clock), so the subscriber is never near
	// SubscriberBuffer events behind and must see every Seq.
	workersDone := make(chan struct{})
	var adds int
	go func() {
		defer close(tk.done)
		rng := rand.New(rand.NewSource(cfg.seed))
		for {
			select {
			case <-workersDone:
				return
			default:
			}
			deadline := time.After(guard)
			for subSeq.Load() < b.snap.Load().gen {
				select {
				case <-progress:
				case <-deadline:
					errs.errorf("driver: the subscriber is at Seq %d after %v, the breaker at generation %d",
						subSeq.Load(), guard, b.snap.Load().gen)
					return
				}
			}
			mock.Add(time.Duration(1 + rng.Int63n(int64(maxStep))))
			adds++
			tk.tick()
		}
	}()

	tallies := make([]stressTally, cfg.workers)
	var wg sync.WaitGroup
	for w := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stressWorker(b, rand.New(rand.NewSource(cfg.seed*1000+int64(w))), cfg.opsPerWorker, &tallies[w], meter, tk, errs)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(6 * guard):
		t.Fatalf("workers did not finish within %v: deadlock?", 6*guard)
	}
	close(workersDone)
	within(t, "the clock driver", func() { <-tk.done })
	within(t, "Stop", b.Stop)
	within(t, "the subscriber", func() { <-subDone })

	var r stressResult
	for _, tl := range tallies {
		r.add(tl)
	}
	r.adds, r.events, r.timeouts = adds, received, timeouts
	r.maxProbes, r.maxHeld = meter.max, meter.mxH

	if r.maxProbes > 1 {
		t.Errorf("%d probes of one half-open generation outstanding at once, want at most 1", r.maxProbes)
	}
	c := b.Counts()
	want := Counts{
		Requests:            uint64(r.granted),
		Rejected:            uint64(r.refused),
		Successes:           uint64(r.applied[Success]),
		Failures:            uint64(r.applied[Failure] + r.timeouts),
		Ignored:             uint64(r.applied[Ignored]),
		ConsecutiveFailures: c.ConsecutiveFailures, // checked below
	}
	if c != want {
		t.Errorf("Counts() = %+v\n\twhat callers did: %+v (failures include %d probe timeouts)", c, want, r.timeouts)
	}
	if lastTo == StateClosed && c.ConsecutiveFailures >= DefaultAllowedFails || lastTo != StateClosed && c.ConsecutiveFailures < DefaultAllowedFails {
		t.Errorf("ConsecutiveFailures = %d in state %v", c.ConsecutiveFailures, lastTo)
	}
	if got := r.applied[Success] + r.applied[Failure] + r.applied[Ignored] + r.stale + r.abandoned; got != r.granted {
		t.Errorf("%d permits granted, but %d applied, stale or abandoned", r.granted, got)
	}
	// Every probe timeout is a probe a caller reported late or abandoned;
	// one more is a probe that leaked (one granted to a caller that gave up
	// while waiting, and not released).
	if r.timeouts < r.lateProbes || r.timeouts > r.lateProbes+r.abandonedProbes {
		t.Errorf("%d probe timeouts, but %d probes reported late and %d abandoned", r.timeouts, r.lateProbes, r.abandonedProbes)
	}
	if st := b.State(); st != lastTo {
		t.Errorf("State() = %v, but the last event went to %v", st, lastTo)
	}
	if uint64(r.events) != b.snap.Load().gen {
		t.Errorf("the subscriber received %d events, the breaker made %d transitions", r.events, b.snap.Load().gen)
	}
	if !testing.Short() && (r.timeouts == 0 || r.probes == 0 || r.stale == 0 || r.refused == 0) {
		t.Errorf("the stress did not reach every case: %+v", r)
	}
	return r
}

// stressErrs are the errors workers report, with how WithAllowedErrors(errNotFound) counts them.
var stressErrs = []struct {
	err error
	o   Outcome
}{{nil, Success}, {nil, Success}, {nil, Success}, {errBoom, Failure}, {errNotFound, Ignored}, {context.Canceled, Ignored}}

func stressWorker(b *Breaker, rng *rand.Rand, ops int, tl *stressTally, meter *probeMeter, tk *ticker, errs *stressErrors) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range ops {
		tl.ops++
		var ctx context.Context = context.Background()
		switch rng.Intn(100) {
		case 0:
			ctx = canceled
		case 1, 2:
			// Gives up while waiting for the loop, if it gets that far:
			// a probe granted meanwhile must be released.
			done := make(chan struct{})
			close(done)
			ctx = &doneOnSecondLook{Context: context.Background(), live: make(chan struct{}), done: done}
		}
		p, err := b.Permit(ctx)
		var oe *OpenError
		switch {
		case err == nil:
		case errors.As(err, &oe):
			tl.refused++
			if oe.RetryAfter() < 0 || (oe.State != StateOpen && oe.State != StateHalfOpen) {
				errs.errorf("refusal %+v", *oe)
			}
			if rng.Intn(4) != 0 {
				tk.wait()
			}
			continue
		case err == context.Canceled:
			tl.canceled++
			continue
		default:
			errs.errorf("Permit: %v", err)
			continue
		}

		tl.granted++
		gen := p.t.gen
		if p.Probe() {
			tl.probes++
			meter.in(gen)
			// Sometimes hold the probe across clock advances: it may
			// time out, and then its report is late.
			if rng.Intn(3) == 0 {
				for n := 1 + rng.Intn(12); n > 0; n-- {
					tk.wait()
				}
			}
		} else if rng.Intn(8) == 0 {
			runtime.Gosched()
		}
		if rng.Intn(100) == 0 {
			tl.abandoned++ // never reported
			if p.Probe() {
				tl.abandonedProbes++
			}
			continue
		}
		if p.Probe() {
			meter.out(gen)
		}
		var o Outcome
		switch n := rng.Intn(100); {
		case n < 85:
			o = Success
		case n < 94:
			o = Failure
		default:
			o = Ignored
		}
		var applied bool
		if rng.Intn(4) == 0 {
			e := stressErrs[rng.Intn(len(stressErrs))]
			o = e.o
			applied = p.Report(e.err)
		} else {
			applied = p.ReportOutcome(o)
		}
		if applied {
			tl.applied[o]++
		} else {
			// Not applied: it must be stale, a generation the breaker
			// has left (for a probe, because it timed out).
			if now := b.snap.Load().gen; now <= gen {
				errs.errorf("report of a permit of generation %d not applied, but the breaker is still at %d", gen, now)
			}
			tl.stale++
			if p.Probe() {
				tl.lateProbes++
			}
		}
		if rng.Intn(50) == 0 {
			tl.duplicates++
			if p.ReportOutcome(Success) || p.Report(nil) {
				errs.errorf("a duplicate report was applied")
			}
		}
	}
}
