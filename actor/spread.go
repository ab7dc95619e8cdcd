package actor

import (
	"runtime"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname, for procPin
)

// Busy breakers count clean Calls on per-CPU cache lines.
//
// A clean Call writes one counter (counters.calls). When Calls to one
// breaker run on several CPUs at once, that counter's cache line moves
// between them on every Call: on a 2-CPU machine, 16 goroutines calling
// 1,000 breakers spent two thirds of their time waiting for it, and a
// single breaker called from every core of a large machine serialises them
// on it. So a breaker that is busy from several CPUs spreads: it gets one
// counter per P (GOMAXPROCS, at most maxCells), each on its own 128 bytes,
// and a Call adds to the one of the P it runs on. Counts and the group's
// sweep add them up, so every count is still exact once its Call has
// returned (each is an atomic add that happens before the Call returns).
//
// 128 bytes, not 64: CPUs fetch cache lines in aligned pairs, and two
// counters in one pair, written by two CPUs, cost nearly as much as two in
// one line (4× slower on this project's benchmark machine).
//
// Spreading costs GOMAXPROCS × 128 bytes, so only breakers that need it
// pay. Every sampleEvery-th clean Call samples the P it runs on and the
// time, and a breaker spreads when spreadStrikes changes of P come in a
// row (spreadStrikes+1 samples), each sample within hotWindow of the one
// before: at least sampleEvery calls per hotWindow (2,560 a second), from
// changing CPUs. A breaker called now and then never spreads, and one
// called by a single goroutine rarely does (only if that goroutine keeps
// moving between Ps). Sampling costs a breaker 64 bytes (a hotCalls, on
// 64-bit platforms) from its first sample on, and the cells are sized once,
// for GOMAXPROCS at the time: Ps beyond it share cells.
//
// The time is the runtime's monotonic clock, not the breaker's: how often
// a cache line moves between CPUs is a matter of real time, and a mock
// clock that tests move in steps would say nothing about it. It is read
// once per sampleEvery calls, never for the breaker's state. Nothing
// observable changes when a breaker spreads.
//
// The P is a hint: the goroutine may move to another P right after asking,
// and then two Ps add to one counter, which is still exact, only slower.
const (
	sampleEvery   = 256
	hotWindow     = 100 * time.Millisecond
	spreadStrikes = 2
	maxCells      = 64 // 8 KiB: past 64 Ps, Ps share counters
)

// hotCalls is what counters.hot points to: a breaker's sampling state
// until it spreads, then (another hotCalls) its per-P counters. 64 bytes
// on 64-bit platforms, so that the header every spread Call reads is alone
// in its size class's slot.
type hotCalls struct {
	cells []cell // immutable; nil while sampling

	// Sampling (cells == nil). Updated racily by samplers: a lost update
	// only delays or hastens spreading.
	p       atomic.Int32 // the P of the last sample
	strikes atomic.Int32 // changes of P in a row, each sample within hotWindow of the one before
	at      atomic.Int64 // the time of the last sample: monotonic(), in ns
	_       [64 - 24 - 16]byte
}

// cell is one P's count of clean Calls, alone in its 128 bytes.
type cell struct {
	n atomic.Uint64
	_ [120]byte
}

// procPin returns the id of the P the calling goroutine runs on, and keeps
// the goroutine there until procUnpin. The runtime keeps the pair for the
// packages that link to them (go.dev/issue/67401); sync.Pool uses it too.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// A clean Call is counted in Call itself, which is over the inlining budget
// as a function:
//
//	if h := b.counts.hot.Load(); (h != nil && h.cells != nil) || b.counts.calls.Add(1)%sampleEvery == 0 {
//		b.countSpreadOrSample(h)
//	}

// countSpreadOrSample counts a clean Call of a spread breaker on its P's
// cell, or samples one that is not spread (its Call is counted already).
func (b *Breaker) countSpreadOrSample(h *hotCalls) {
	p := procPin()
	procUnpin()
	if h == nil || h.cells == nil {
		b.sample(int32(p), monotonic())
		return
	}
	if p >= len(h.cells) { // GOMAXPROCS grew since the breaker spread, or is over maxCells
		p %= len(h.cells)
	}
	h.cells[p].n.Add(1)
}

// monotonic is the runtime's monotonic clock, in nanoseconds since the
// package was initialised.
func monotonic() int64 { return int64(time.Since(started)) }

var started = time.Now()

// sample records a sample of a breaker that has not spread: the P a clean
// Call ran on and the time (monotonic, in ns). It spreads the breaker when
// the samples say it is busy from several CPUs.
func (b *Breaker) sample(p int32, now int64) {
	h := b.counts.hot.Load()
	if h == nil {
		h = new(hotCalls)
		h.p.Store(p)
		h.at.Store(now)
		b.counts.hot.CompareAndSwap(nil, h)
		return
	}
	if h.cells != nil {
		return // spread meanwhile
	}
	prevP, prevAt := h.p.Swap(p), h.at.Swap(now)
	if prevP == p || now-prevAt > int64(hotWindow) {
		h.strikes.Store(0)
		return
	}
	if h.strikes.Add(1) >= spreadStrikes {
		h.strikes.Store(0) // with one P, ask again only after another run of changes
		b.spread(h, runtime.GOMAXPROCS(0))
	}
}

// spread replaces the sampling state h (nil: none yet) with n per-P
// counters (at most maxCells); one P needs none, and a breaker that has
// spread keeps its counters. The calls counted so far stay in
// counters.calls.
func (b *Breaker) spread(h *hotCalls, n int) {
	if n < 2 || (h != nil && h.cells != nil) {
		return
	}
	b.counts.hot.CompareAndSwap(h, &hotCalls{cells: make([]cell, min(n, maxCells))})
}

// callCount is the number of clean Calls counted: counters.calls and, once
// the breaker has spread, every P's counter.
func (c *counters) callCount() uint64 {
	n := c.calls.Load()
	if h := c.hot.Load(); h != nil {
		for i := range h.cells {
			n += h.cells[i].n.Load()
		}
	}
	return n
}
