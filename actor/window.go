package actor

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// The failure-rate window (WithFailureRate, CONTRACT semantic 15).
//
// A success never trips, so a success must stay on the fast path: the
// caller adds it to the current bucket with one atomic add, and sends nothing
// to the loop. Failures go to the loop, which reads the clock, brings the
// buckets up to date and decides. The hard part is the time: reading the
// clock on every success costs more than the whole closed call, so a caller
// never reads it. Instead the current bucket is published with the time it
// ends, and two things end it:
//
//   - a timer of the breaker's clock (clock.AfterFunc), armed for the
//     bucket's end when the loop publishes it: it withdraws the bucket (one
//     compare-and-swap; the loop is not involved), and the next outcome goes
//     through the loop, which reads the clock and publishes the bucket of
//     that moment. That is one trip through the loop per step per breaker
//     with traffic (at most ten a window), and none at all for a breaker
//     without traffic: after a quiet step nothing is armed, so an idle
//     breaker can sleep. The timer is not the loop's: a loop that waits on a
//     timer as well as on its requests pays for it on every wake-up (about
//     60ns a failure on the real clock), and the loop would have to stay
//     awake for a breaker with traffic. On the real clock the bucket is
//     withdrawn within the timer's latency (microseconds); a success in that
//     gap counts in the bucket just ended.
//   - on clocks whose tickers deliver into a buffered channel (the mock clock
//     of tests, and Go's real timers under GODEBUG asynctimerchan=1) a ticker
//     armed for the bucket's end, which no one receives from: the clock fills
//     its channel the moment it passes the end, and a caller that sees it
//     full (len, a plain load) goes to the loop instead. So with a mock clock
//     the window is exact: a success reported after mock.Add never lands in
//     the bucket before it, whether or not the loop has handled its timer
//     yet. A ticker, not a timer: creating a mock timer fires the timers due
//     at that moment, which would race with a concurrent Add firing them.
//     On Go's ordinary real timers (unbuffered channels, len always 0) no
//     such ticker is made.
//
// Why per-breaker timers rather than one coarse time source per clock: each
// breaker's step is its own (window/10), the timer runs only while the
// breaker has traffic, and the breaker's loop already has a timer that sleeps
// and wakes with it; one source per clock would need a registry of clocks, a
// goroutine (or a timer chain) to own, and a division per success.
//
// A window belongs to one closed generation: a new one is made each time
// the breaker closes (and by Reset), and published in the snapshot. A report
// of an earlier generation never reaches the current window (the caller
// checks the generation first, and a stale success that raced with the
// transition lands in the old object, which nobody reads any more).

// rateRule is the WithFailureRate rule of one breaker, shared by its windows.
type rateRule struct {
	// Immutable:
	threshold float64
	minCalls  uint64
	size      time.Duration // the window
	step      time.Duration // a bucket's span: at most size/10, at least 1ns
	buckets   int64         // how many buckets are counted: size/step

	// Owned by the loop: whether the clock's tickers can be polled (see
	// above): 0 not known yet, 1 yes, -1 no.
	signals int8
}

func newRateRule(threshold float64, minCalls int, size time.Duration) *rateRule {
	step, n := windowStep(size)
	return &rateRule{threshold: threshold, minCalls: uint64(minCalls), size: size, step: step, buckets: n}
}

// windowStep chooses the bucket span for a window and how many buckets are
// counted. An outcome is counted while its bucket is one of the last n, the
// current one included: the oldest counted outcome is younger than n*step,
// and every outcome younger than (n-1)*step is counted. So n*step <= size,
// and (n-1)*step >= size - size/10 where the step divides the window evenly
// enough: size/10 when 10 divides it, else the largest size/k (k > 10) that
// keeps the remainder small. Windows under 10ns get 1ns steps.
func windowStep(size time.Duration) (step time.Duration, n int64) {
	if size < 10 {
		return 1, int64(size)
	}
	for k := time.Duration(10); ; k++ {
		step = size / k
		if step+size%step <= size/10 {
			return step, int64(size / step)
		}
	}
}

// window is one closed generation's failure-rate window.
type window struct {
	rule  *rateRule
	clock clock.Clock // for the end-of-bucket tickers; nil: none (machine tests)

	// Shared with callers: the bucket a success on the fast path goes to;
	// nil when the loop is to place the next outcome (before the first one,
	// and after each bucket's end).
	cur atomic.Pointer[bucket]
	// lastFailure is the breaker clock's time (UnixNano) of the latest
	// failure, or noFailure: written by the loop, read by windowFailures.
	lastFailure atomic.Int64

	// Owned by the loop:
	origin time.Time // bucket e spans [origin + e*step, origin + (e+1)*step); set by the first outcome
	ring   []*bucket // bucket e at e % len(ring); made with the first outcome
	latest int64     // the newest bucket's epoch
}

// bucket holds the outcomes of one step.
type bucket struct {
	epoch     int64
	successes atomic.Uint64 // added by callers (and the loop)
	failures  uint64        // owned by the loop

	// Set by the loop before it publishes the bucket, then read-only but for
	// timer (the loop's):
	ends   time.Time
	endc   <-chan time.Time // fills when the clock passes ends (see the file comment); nil on clocks that cannot tell
	ticker *clock.Ticker    // endc's
	timer  *clock.Timer     // withdraws the bucket at ends; owned by the loop
}

// noFailure is lastFailure before the first failure. Not 0: that is when a
// mock clock starts.
const noFailure = math.MinInt64

func newWindow(rule *rateRule, clk clock.Clock) *window {
	w := &window{rule: rule, clock: clk}
	w.lastFailure.Store(noFailure)
	return w
}

// addSuccess is the fast path: it adds a success to the current bucket and
// reports true, or reports false when the loop is to place it. A nil window
// (no failure-rate rule) takes every success.
func (w *window) addSuccess() bool {
	if w == nil {
		return true
	}
	b := w.cur.Load()
	if b == nil || len(b.endc) != 0 {
		return false
	}
	b.successes.Add(1)
	return true
}

// live reports whether a success can go to the current bucket without the
// time.
func (w *window) live() bool {
	b := w.cur.Load()
	return b != nil && len(b.endc) == 0
}

// successNow places a success in the current bucket, for the loop when live
// said so: it costs no clock read. If the bucket's timer withdrew it since
// (the clock passed its end a moment ago), the success counts in it all the
// same: live was true an instant before.
func (w *window) successNow() {
	if !w.addSuccess() {
		w.ring[w.latest%w.rule.buckets].successes.Add(1)
	}
}

// success places a success at now (loop only).
func (w *window) success(now time.Time) {
	b := w.bucketAt(now)
	b.successes.Add(1)
	w.publish(b, now)
}

// failure places a failure at now (loop only), and returns the failures and
// the outcomes counted over the window that ends at now.
func (w *window) failure(now time.Time) (failures, total uint64) {
	b := w.bucketAt(now)
	b.failures++
	w.lastFailure.Store(now.UnixNano())
	for _, c := range w.ring {
		if c != nil && c.epoch > b.epoch-w.rule.buckets {
			failures += c.failures
			total += c.failures + c.successes.Load()
		}
	}
	w.publish(b, now)
	return failures, total
}

// trips reports whether failures out of total trip the rule.
func (r *rateRule) trips(failures, total uint64) bool {
	// A division, not a product: failures/total and the threshold are then
	// both the nearest float64 to their exact values, so an exact ratio of
	// 3 in 10 meets a threshold of 0.3.
	return total >= r.minCalls && float64(failures)/float64(total) >= r.threshold
}

func (r *rateRule) reason(failures, total uint64) string {
	return fmt.Sprintf("failure rate %.3g%% (%d of %d) over %v", 100*float64(failures)/float64(total), failures, total, r.size)
}

// bucketAt returns the bucket for the time now, making it if needed. The
// clock going back does not move the window back.
func (w *window) bucketAt(now time.Time) *bucket {
	if w.ring == nil {
		w.origin = now
		w.ring = make([]*bucket, w.rule.buckets)
	}
	e := w.latest
	if d := now.Sub(w.origin); d > 0 {
		e = max(e, int64(d/w.rule.step))
	}
	slot := &w.ring[e%w.rule.buckets]
	if b := *slot; b != nil && b.epoch == e {
		return b
	}
	b := &bucket{epoch: e, ends: w.origin.Add(time.Duration(e+1) * w.rule.step)}
	*slot, w.latest = b, e
	return b
}

// publish makes b the bucket callers add to, until it ends.
func (w *window) publish(b *bucket, now time.Time) {
	if w.cur.Load() == b {
		return
	}
	w.withdraw()
	if !b.ends.After(now) || w.clock == nil {
		// Already over (a clock stepped back made b the newest), or no
		// clock (machine tests end buckets by hand): not published, so
		// the next outcome comes to the loop again.
		if w.clock == nil {
			w.cur.Store(b)
		}
		return
	}
	d := b.ends.Sub(now)
	if b.endc == nil && w.rule.signals >= 0 {
		// A ticker, not a timer: creating a mock timer fires the timers
		// due at that moment, which races with a concurrent Add firing
		// them too. It is stopped when the bucket is withdrawn.
		t := w.clock.Ticker(d)
		switch {
		case cap(t.C) == 0: // Go's real timers: len is always 0
			t.Stop()
			w.rule.signals = -1
		default:
			w.rule.signals = 1
			b.endc, b.ticker = t.C, t
		}
	}
	w.cur.Store(b)
	b.timer = w.clock.AfterFunc(d, func() { w.expire(b) })
}

// expire withdraws b if it is still the current bucket: the clock passed its
// end. It runs on the clock's timer goroutine, never the loop's.
func (w *window) expire(b *bucket) {
	if w.cur.CompareAndSwap(b, nil) && b.ticker != nil {
		b.ticker.Stop()
	}
}

// withdraw stops callers adding to the current bucket: the next outcome
// goes through the loop. The loop calls it when it publishes another bucket
// and when it drops the window.
func (w *window) withdraw() {
	b := w.cur.Swap(nil)
	if b == nil {
		return
	}
	if b.ticker != nil {
		b.ticker.Stop() // endc stays: a caller still holding b sees the end
	}
	if b.timer != nil {
		b.timer.Stop()
	}
}

// failedWithin reports whether a failure was placed less than the window's
// span before now. Safe for any goroutine.
func (w *window) failedWithin(now time.Time) bool {
	if w == nil {
		return false
	}
	last := w.lastFailure.Load()
	return last != noFailure && now.UnixNano()-last < int64(w.rule.size)
}

// windowFailures reports whether the failure-rate window (if any) holds a
// failure at now, on the breaker's clock: a breaker with one is not idle
// and healthy, even if it has no consecutive failures (the group's
// droppability check). Safe for any goroutine.
func (s *snapshot) windowFailures(now time.Time) bool {
	return s.window.failedWithin(now)
}
