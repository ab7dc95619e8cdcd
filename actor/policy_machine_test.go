package actor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The trip and recovery policies (CONTRACT semantics 15-18) on the state
// machine alone: no goroutines, no clock; time is an argument, and the
// driver fires the machine's timer exactly when it is due, as the loop does.

// driver runs a machine the way the loop and its callers do.
type driver struct {
	t      *testing.T
	m      *machine
	now    time.Time
	events []Event
	fast   int // successes the fast path took (added to the window without the loop)
}

// newDriver makes a machine with the given options, at t0, with no clock:
// the window makes no tickers, so buckets end only by the machine's timer.
func newDriver(t *testing.T, opts ...Option) *driver {
	t.Helper()
	o, err := buildOptions(opts)
	if err != nil {
		t.Fatalf("buildOptions: %v", err)
	}
	m := newMachine("m", nil, o.allowedFails, o.retry, o.probeTimeout)
	m.setPolicies(&o)
	return &driver{t: t, m: m, now: t0}
}

// advance moves time forward by d, firing the machine's timer each time it
// is due on the way, at its due time, and ending the window's current bucket
// at its end, as the bucket's own timer does.
func (d *driver) advance(by time.Duration) {
	end := d.now.Add(by)
	for {
		if w := d.m.window; w != nil {
			if b := w.cur.Load(); b != nil && !b.ends.After(end) {
				d.now = b.ends
				w.expire(b)
				continue
			}
		}
		if d.m.deadline.IsZero() || d.m.deadline.After(end) {
			break
		}
		d.now = d.m.deadline
		if ev, _ := d.m.timerFired(); ev != nil {
			d.events = append(d.events, *ev)
		}
	}
	d.now = end
}

// grant returns a ticket, failing the test on a refusal.
func (d *driver) grant() ticket {
	d.t.Helper()
	tk, refusal := d.m.acquire(d.now)
	if refusal != nil {
		d.t.Fatalf("acquire refused in %v: %v", d.m.state, refusal)
	}
	return tk
}

// report applies o for tk as a caller would: a success the snapshot takes
// never reaches the machine.
func (d *driver) report(tk ticket, o Outcome) (applied bool) {
	d.t.Helper()
	if s := d.m.snapshot(); o == Success && s.clean && s.gen == tk.gen && s.window.addSuccess() {
		d.fast++
		return true
	}
	applied, ev := d.m.settle(d.now, tk, o, 0)
	if ev != nil {
		d.events = append(d.events, *ev)
	}
	return applied
}

// outcome reports o on a fresh permit.
func (d *driver) outcome(o Outcome) {
	d.t.Helper()
	if !d.report(d.grant(), o) {
		d.t.Fatalf("%v not applied", o)
	}
}

func (d *driver) outcomes(o Outcome, n int) {
	d.t.Helper()
	for range n {
		d.outcome(o)
	}
}

func (d *driver) wantState(want State) {
	d.t.Helper()
	if d.m.state != want {
		d.t.Fatalf("state %v, want %v (events %+v)", d.m.state, want, d.events)
	}
}

// lastEvent returns the latest event, failing if there is none.
func (d *driver) lastEvent() Event {
	d.t.Helper()
	if len(d.events) == 0 {
		d.t.Fatal("no event")
	}
	return d.events[len(d.events)-1]
}

// openFor returns how long the breaker, just opened, stays open.
func (d *driver) openFor() time.Duration {
	d.t.Helper()
	if d.m.state != StateOpen {
		d.t.Fatalf("state %v, want open", d.m.state)
	}
	if got := d.m.refusal.Until; !got.Equal(d.m.deadline) {
		d.t.Fatalf("refusal Until %v, deadline %v: they must agree", got, d.m.deadline)
	}
	return d.m.deadline.Sub(d.now)
}

// toHalfOpen lets the retry timer fire.
func (d *driver) toHalfOpen() {
	d.t.Helper()
	d.advance(d.m.deadline.Sub(d.now))
	d.wantState(StateHalfOpen)
}

// A success placed in the window counts while it is younger than window -
// step and never once it is older than the window, whatever its place in its
// bucket: checked at ages around both edges, 1ns either side, for several
// alignments of the outcome within its step.
func TestMachineWindowEdges(t *testing.T) {
	const window, step = 10 * time.Second, time.Second
	ages := []time.Duration{0, time.Nanosecond, step / 2, 5 * step,
		window - 2*step, window - step - time.Nanosecond, // always counted
		window + time.Nanosecond, window + step/2, window + step, 3 * window, // never counted
	}
	for _, offset := range []time.Duration{0, time.Nanosecond, step / 3, step / 2, step - time.Nanosecond} {
		for _, age := range ages {
			t.Run(fmt.Sprintf("offset=%v/age=%v", offset, age), func(t *testing.T) {
				// Threshold 1 and minCalls 1: a failure trips unless a
				// success is counted beside it.
				d := newDriver(t, WithFailureRate(1, 1, window), WithRetryTimer(time.Hour))
				d.outcome(Ignored) // ignored outcomes are not placed: the window has not started
				d.advance(7 * time.Second)
				d.outcome(Success) // places the window's origin
				d.advance(offset)
				d.outcome(Success) // the success under test
				// The first success is older than the one under test: where
				// that one counts, the first may too; where it does not,
				// neither does the first.
				d.advance(age)
				d.outcome(Failure)
				counted := d.m.state == StateClosed
				switch {
				case age < window-step && !counted:
					t.Fatalf("a success aged %v (window %v, step %v) was not counted", age, window, step)
				case age > window && counted:
					t.Fatalf("a success aged %v (window %v) was still counted", age, window)
				}
			})
		}
	}
}

// The window slides: the same number of failures trips or not depending on
// how the successes are spread in time.
func TestMachineWindowSlides(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.5, 3, 10*time.Second))
	d.outcomes(Success, 3) // at +0
	d.advance(5 * time.Second)
	d.outcome(Failure)
	d.outcome(Failure) // 2 of 5
	d.advance(5*time.Second + time.Nanosecond)
	d.wantState(StateClosed)
	// The successes at +0 are older than the window now; the failures at +5s
	// are not: 3 of 3.
	d.outcome(Failure)
	d.wantState(StateOpen)
	ev := d.lastEvent()
	if ev.Reason != "failure rate 100% (3 of 3) over 10s" {
		t.Fatalf("reason %q", ev.Reason)
	}
}

// minCalls: no rate trips before minCalls outcomes are in the window, and a
// success that brings the count to minCalls at a rate over the threshold
// does not trip (a success never trips); the next failure does.
func TestMachineWindowMinCalls(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.5, 10, time.Minute))
	d.outcomes(Failure, 5)
	d.outcomes(Success, 4)
	d.outcomes(Ignored, 20) // not counted: still 9 outcomes
	d.wantState(StateClosed)
	d.outcome(Success) // the 10th outcome, at 5 of 10 = the threshold
	d.wantState(StateClosed)
	d.outcome(Failure) // 6 of 11
	d.wantState(StateOpen)

	d = newDriver(t, WithFailureRate(0.5, 10, time.Minute))
	d.outcomes(Failure, 9)
	d.wantState(StateClosed)
	d.outcome(Failure)
	d.wantState(StateOpen)
}

// With a failure rate, the consecutive-failure rule is off unless
// WithAllowedFails is given too; then either rule trips.
func TestMachineConsecutiveRuleOnlyWhenGiven(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.9, 100, time.Minute))
	d.outcomes(Failure, 50)
	d.wantState(StateClosed)

	d = newDriver(t, WithFailureRate(0.9, 100, time.Minute), WithAllowedFails(3))
	d.outcomes(Failure, 3)
	d.wantState(StateOpen)
	if r := d.lastEvent().Reason; r != "3 consecutive failures" {
		t.Fatalf("reason %q", r)
	}

	// Either rule: the rate trips before the run does.
	d = newDriver(t, WithFailureRate(0.5, 4, time.Minute), WithAllowedFails(10))
	d.outcome(Success)
	d.outcome(Failure)
	d.outcome(Success)
	d.outcome(Failure)
	d.wantState(StateOpen)
	if r := d.lastEvent().Reason; !strings.HasPrefix(r, "failure rate 50%") {
		t.Fatalf("reason %q", r)
	}
}

// The window holds one closed generation: it is empty after the breaker
// closes again, probes are not in it, and an outcome of an earlier
// generation is stale.
func TestMachineWindowPerGeneration(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.5, 3, time.Minute), WithRetryTimer(time.Second))
	old := d.grant()
	d.outcomes(Failure, 3)
	d.wantState(StateOpen)
	d.toHalfOpen()
	probe := d.grant()
	d.report(probe, Failure) // a probe failure: re-opens, not in any window
	d.toHalfOpen()
	d.report(d.grant(), Success)
	d.wantState(StateClosed)
	if d.report(old, Success) || d.report(old, Failure) {
		t.Fatal("a report of an earlier generation was applied")
	}
	// Three failures made the first trip, a fourth failed the probe; the
	// new window holds none of them.
	d.outcomes(Failure, 2)
	d.wantState(StateClosed)
	d.outcome(Failure)
	d.wantState(StateOpen)
}

// Successes take the fast path while a bucket is current; the first outcome
// after a bucket ends (and after a quiet spell) goes through the machine.
// The window never needs the loop's timer.
func TestMachineWindowFastPathAndQuiet(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.5, 1, 10*time.Second))
	d.outcomes(Success, 5)
	if d.fast != 4 {
		t.Fatalf("fast successes %d, want 4: the first places the bucket, the rest add to it", d.fast)
	}
	b := d.m.window.cur.Load()
	if want := t0.Add(time.Second); b == nil || !b.ends.Equal(want) {
		t.Fatalf("current bucket %+v, want one ending at %v", b, want)
	}
	d.advance(time.Second) // the bucket ends: withdrawn
	if s := d.m.snapshot(); s.window.cur.Load() != nil {
		t.Fatal("the bucket was not withdrawn at its end")
	}
	if !d.m.deadline.IsZero() {
		t.Fatal("a closed breaker with a window wants the loop's timer")
	}
	d.advance(time.Hour)
	d.outcomes(Success, 2)
	if d.fast != 5 {
		t.Fatalf("fast successes %d, want 5", d.fast)
	}
	if s := d.m.snapshot(); s.windowFailures(d.now) {
		t.Fatal("windowFailures with no failure")
	}
	d.outcome(Failure) // 1 of 3: below the threshold
	d.wantState(StateClosed)
	s := d.m.snapshot()
	if !s.windowFailures(d.now) || !s.windowFailures(d.now.Add(10*time.Second-time.Nanosecond)) {
		t.Fatal("windowFailures is false with a failure in the window")
	}
	if s.windowFailures(d.now.Add(10 * time.Second)) {
		t.Fatal("windowFailures is true a window after the failure")
	}
}

// Backoff: the k-th opening without a close stays open retry*2^(k-1), capped
// at max, whether it came from a trip, a failed probe, a probe timeout or
// Trip; closing (or Reset) starts again at the retry timer. A dependency's
// own period overrides backoff and jitter.
func TestMachineBackoff(t *testing.T) {
	d := newDriver(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithProbeTimeout(time.Second), WithBackoff(10*time.Second), WithJitter(0.5))
	d.m.rng = nil // jitter checked elsewhere; here the exact doubling
	d.outcome(Failure)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for k, w := range want {
		if got := d.openFor(); got != w {
			t.Fatalf("opening %d stays open %v, want %v", k+1, got, w)
		}
		d.toHalfOpen()
		probe := d.grant()
		if k%2 == 0 {
			d.report(probe, Failure)
		} else {
			d.advance(time.Second) // the probe times out: an opening too
		}
	}
	d.toHalfOpen()
	d.report(d.grant(), Success)
	d.wantState(StateClosed)
	d.outcome(Failure)
	if got := d.openFor(); got != time.Second {
		t.Fatalf("after a close the first opening stays open %v, want the retry timer", got)
	}

	// Trip counts as an opening; Reset clears the backoff.
	d.toHalfOpen()
	d.report(d.grant(), Failure) // 2nd: 2s
	if got := d.openFor(); got != 2*time.Second {
		t.Fatalf("2nd opening %v, want 2s", got)
	}
	d.m.control(d.now, resetOp, "reset")
	d.m.control(d.now, tripOp, "tripped")
	if got := d.openFor(); got != time.Second {
		t.Fatalf("Trip after Reset stays open %v, want the retry timer", got)
	}

	// A dependency's own period is used as it is, without jitter, and
	// still counts as an opening.
	d.m.rng = rand.New(rand.NewPCG(1, 2))
	d.toHalfOpen()
	applied, ev := d.m.settle(d.now, d.grant(), Failure, 7*time.Second)
	if !applied || ev == nil || d.openFor() != 7*time.Second {
		t.Fatalf("Retry-After: applied %v, event %+v, open for %v; want exactly 7s", applied, ev, d.openFor())
	}
	d.toHalfOpen()
	d.report(d.grant(), Failure) // the 3rd opening: 4s, jittered
	if got := d.openFor(); got < 2*time.Second || got > 4*time.Second {
		t.Fatalf("3rd opening %v, want within [2s, 4s]", got)
	}
}

// Backoff never overflows: a huge retry timer doubles into the cap.
func TestMachineBackoffHuge(t *testing.T) {
	for _, retry := range []time.Duration{1, time.Second, math.MaxInt64 / 3} {
		d := newDriver(t, WithRetryTimer(retry), WithBackoff(math.MaxInt64))
		prev := time.Duration(0)
		for k := 1; k <= 100; k++ {
			got := d.m.openPeriod(0)
			if got < prev || (k < 30 && retry == 1 && got != 1<<(k-1)) {
				t.Fatalf("retry %v, opening %d: period %v after %v", retry, k, got, prev)
			}
			prev = got
		}
		if prev != math.MaxInt64 {
			t.Fatalf("retry %v: period %v after 100 openings, want the cap", retry, prev)
		}
	}
}

// Jitter: each period is drawn from [d*(1-f), d], over hundreds of openings,
// and the draws spread over that range.
func TestMachineJitterBounds(t *testing.T) {
	const retry, f = 10 * time.Second, 0.3
	d := newDriver(t, WithAllowedFails(1), WithRetryTimer(retry), WithJitter(f), withSeed(7, 11))
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for range 500 {
		d.outcome(Failure)
		got := d.openFor()
		if got < time.Duration(float64(retry)*(1-f)) || got > retry {
			t.Fatalf("open for %v, want within [%v, %v]", got, time.Duration(float64(retry)*(1-f)), retry)
		}
		lo, hi = min(lo, got), max(hi, got)
		d.m.control(d.now, resetOp, "reset")
	}
	if lo > 7200*time.Millisecond || hi < 9800*time.Millisecond {
		t.Fatalf("draws span [%v, %v]: not spread over [7s, 10s]", lo, hi)
	}
}

// Probe successes: n successful probes in a row close, one probe at a time;
// an ignored probe neither counts nor breaks the run; a failure re-opens at
// once and the next half-open starts a new run.
func TestMachineProbeSuccesses(t *testing.T) {
	d := newDriver(t, WithAllowedFails(1), WithRetryTimer(time.Second), WithProbeSuccesses(3))
	d.outcome(Failure)
	d.toHalfOpen()
	events := len(d.events)

	probe := d.grant()
	if !probe.probe {
		t.Fatal("not a probe")
	}
	if _, refusal := d.m.acquire(d.now); refusal == nil || refusal.State != StateHalfOpen {
		t.Fatalf("second permit while the probe is out: %v, want a half-open refusal", refusal)
	}
	d.report(probe, Success) // 1
	d.report(d.grant(), Ignored)
	d.report(d.grant(), Success) // 2
	d.wantState(StateHalfOpen)
	if len(d.events) != events {
		t.Fatalf("probes short of the run made events: %+v", d.events[events:])
	}
	d.report(d.grant(), Failure)
	d.wantState(StateOpen)

	d.toHalfOpen()
	d.report(d.grant(), Success)
	d.report(d.grant(), Success)
	d.wantState(StateHalfOpen)
	d.report(d.grant(), Success)
	d.wantState(StateClosed)
	if ev := d.lastEvent(); ev.Reason != "probe succeeded" {
		t.Fatalf("close reason %q", ev.Reason)
	}
}

// toState brings a fresh driver's machine to the named starting state.
func toState(t *testing.T, from string) *driver {
	t.Helper()
	d := newDriver(t, WithAllowedFails(2), WithRetryTimer(time.Second), WithFailureRate(0.9, 100, time.Minute))
	switch from {
	case "closed":
	case "closed with failures":
		d.outcome(Failure)
	case "open":
		d.outcomes(Failure, 2)
	case "half-open":
		d.outcomes(Failure, 2)
		d.toHalfOpen()
	case "half-open, probe out":
		d.outcomes(Failure, 2)
		d.toHalfOpen()
		d.grant()
	case "forced-open":
		d.events = append(d.events, *d.m.control(d.now, forceOpenOp, "forced open"))
	case "disabled":
		d.events = append(d.events, *d.m.control(d.now, disableOp, "disabled"))
	default:
		t.Fatalf("unknown state %q", from)
	}
	return d
}

var allStates = []string{"closed", "closed with failures", "open", "half-open", "half-open, probe out", "forced-open", "disabled"}

// ForceOpen, Disable and Reset from every state: one External event when the
// state changes (none when it does not), no timer, and permits granted
// before are stale.
func TestMachineControlFromEveryState(t *testing.T) {
	for _, c := range []struct {
		op     controlOp
		reason string
		to     State
	}{
		{forceOpenOp, "forced open", StateForcedOpen},
		{disableOp, "disabled", StateDisabled},
		{resetOp, "reset", StateClosed},
	} {
		for _, from := range allStates {
			t.Run(c.reason+"/from="+from, func(t *testing.T) {
				d := toState(t, from)
				was := d.m.state
				var earlier ticket
				if was == StateClosed || was == StateDisabled {
					earlier = d.grant()
				}
				seq, gen := d.m.seq, d.m.gen
				ev := d.m.control(d.now, c.op, c.reason)
				d.wantState(c.to)
				switch {
				case was == c.to:
					// Already there: nothing published, no new generation;
					// permits stay valid.
					if ev != nil || d.m.gen != gen || d.m.seq != seq {
						t.Fatalf("event %+v (gen %d -> %d), want none", ev, gen, d.m.gen)
					}
					if was == StateClosed && !d.report(earlier, Success) {
						t.Fatal("Reset from closed made a permit of the same generation stale")
					}
				default:
					want := Event{Seq: seq + 1, Breaker: "m", From: was, To: c.to, At: d.now, Reason: c.reason, External: true}
					if ev == nil || *ev != want {
						t.Fatalf("event %+v, want %+v", ev, want)
					}
					if earlier != (ticket{}) && (d.report(earlier, Failure) || d.report(earlier, Success)) {
						t.Fatal("a permit granted before the transition was applied")
					}
				}
				if c.to != StateClosed && !d.m.deadline.IsZero() {
					t.Fatalf("%v wants a timer at %v", c.to, d.m.deadline)
				}
				if c.to == StateClosed && (d.m.failures != 0 || d.m.openings != 0 || d.m.window == nil) {
					t.Fatalf("Reset left failures %d, openings %d, window %v", d.m.failures, d.m.openings, d.m.window)
				}
			})
		}
	}
}

// Forced open refuses everything with State forced-open and a zero Until,
// and nothing a timer or a report does moves it; disabled grants everything
// and nothing trips it.
func TestMachineForcedOpenAndDisabled(t *testing.T) {
	d := newDriver(t, WithAllowedFails(1))
	d.m.control(d.now, forceOpenOp, "forced open")
	for range 3 {
		_, refusal := d.m.acquire(d.now)
		if refusal == nil || refusal.State != StateForcedOpen || !refusal.Until.IsZero() || refusal.RetryAfter() != 0 {
			t.Fatalf("refusal %+v, want forced-open with zero Until", refusal)
		}
	}
	if ev, _ := d.m.timerFired(); ev != nil {
		t.Fatalf("timer moved a forced-open breaker: %+v", ev)
	}
	if ev := d.m.control(d.now, tripOp, "x"); ev != nil {
		t.Fatalf("Trip moved a forced-open breaker: %+v", ev)
	}

	d.m.control(d.now, disableOp, "disabled")
	for range 100 {
		d.outcome(Failure)
	}
	d.wantState(StateDisabled)
	if d.m.failures != 100 || !d.m.deadline.IsZero() || d.m.window != nil {
		t.Fatalf("disabled: failures %d (want the run of 100), deadline %v, window %v", d.m.failures, d.m.deadline, d.m.window)
	}
	if s := d.m.snapshot(); !s.grants || s.clean {
		t.Fatalf("disabled snapshot %+v with failures running: want grants, not clean", s)
	}
	d.outcome(Success) // ends the run
	if s := d.m.snapshot(); d.m.failures != 0 || !s.grants || !s.clean {
		t.Fatalf("disabled after a success: failures %d, snapshot %+v: want 0, grants and clean", d.m.failures, s)
	}
	if ev := d.m.control(d.now, tripOp, "x"); ev != nil {
		t.Fatalf("Trip moved a disabled breaker: %+v", ev)
	}
}

// Reset from closed clears the run, the window and the backoff silently.
func TestMachineResetFromClosedClears(t *testing.T) {
	d := newDriver(t, WithFailureRate(0.5, 4, time.Minute), WithAllowedFails(3), WithRetryTimer(time.Second), WithBackoff(time.Hour))
	d.outcomes(Failure, 3)
	d.toHalfOpen()
	d.report(d.grant(), Failure) // 2nd opening: 2s
	d.m.control(d.now, resetOp, "reset")
	d.outcomes(Failure, 2)
	d.outcome(Success)
	w := d.m.window
	if ev := d.m.control(d.now, resetOp, "reset"); ev != nil {
		t.Fatalf("Reset from closed published %+v", ev)
	}
	if d.m.failures != 0 || d.m.window == w || d.m.openings != 0 {
		t.Fatalf("Reset left failures %d, the same window %v, openings %d", d.m.failures, d.m.window == w, d.m.openings)
	}
	// The window was emptied: two failures and a success before the Reset
	// would make 4 of 5 with three more failures.
	d.outcome(Success)
	d.outcome(Failure)
	d.outcome(Failure)
	d.wantState(StateClosed) // 2 of 3: below minCalls
	d.outcome(Success)       // 2 of 4
	d.outcome(Failure)       // 3 of 5
	d.wantState(StateOpen)
	if got := d.openFor(); got != time.Second {
		t.Fatalf("first opening after Reset stays open %v, want the retry timer", got)
	}
}

// The step: at most window/10, at least 1ns, and whatever the window, every
// outcome younger than window - window/10 is counted and none older than
// the window.
func TestWindowStep(t *testing.T) {
	for _, size := range []time.Duration{1, 2, 9, 10, 11, 19, 20, 99, 105, 999, time.Second, 10 * time.Second,
		10*time.Second + 1, 7 * time.Minute / 3, time.Duration(math.MaxInt64)} {
		step, n := windowStep(size)
		if step < 1 || (size >= 10 && step > size/10) {
			t.Errorf("window %v: step %v, want within [1ns, window/10]", size, step)
		}
		if time.Duration(n)*step > size {
			t.Errorf("window %v: %d buckets of %v count outcomes older than the window", size, n, step)
		}
		if size >= 10 && size-time.Duration(n-1)*step > size/10 { // (n-1)*step >= size - size/10
			t.Errorf("window %v: %d buckets of %v miss outcomes younger than window - window/10", size, n, step)
		}
	}
}
