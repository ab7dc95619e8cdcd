package actor

import (
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// This file holds Group, one breaker per key. How it is built:
//
//   - The hit path of Get (a key that has a breaker) is one sync.Map load and
//     three atomics on the key's member: no lock, no clock, no allocation.
//     It marks the member used by storing the group's epoch in it, only when
//     the stored one is older; the sweeper advances the epoch.
//   - Everything else (making a breaker, dropping one, Remove, Stop, the cap's
//     LRU list) happens under one mutex, mu, which the hit path never takes.
//   - One sweeper, a function the group's clock calls (clock.AfterFunc) every
//     TTL/2 while the group has members, advances the epoch and walks the
//     members in chunks, dropping idle healthy ones. Permits and reports are
//     noticed there as a change in the breaker's Counts, so the breaker's
//     hot path never touches the group.
//   - Events reach group subscribers through the breaker's onEvent hook (see
//     withOnEvent), which the loop calls with every transition: subscribing
//     costs the breakers nothing while nothing transitions.
//   - Watch hooks run outside every lock, one at a time, in the order of the
//     membership changes (see hookQueue).

// DefaultIdleTTL is how long a healthy breaker of a [Group] may go unused
// before the group forgets it.
const DefaultIdleTTL = 10 * time.Minute

// ErrGroupFull is returned by [Group.Get] when the group holds
// [WithMaxBreakers] breakers and none of them can be dropped to make room:
// every one is open, half-open, forced open, disabled or has failures (so
// dropping it would reset a failing dependency). The key gets no breaker.
//
// What to do with it: treat the call as unprotected or refuse it, but do not
// retry Get in a loop. A cap is reached either because keys come from
// something unbounded (a raw URL path, a user id: fix the key, or cap lower
// and go unprotected for the excess, as the HTTP transport does), or because
// that many dependencies are failing at once, in which case room comes back
// as they recover (a recovered breaker is droppable from the next sweep, at
// most TTL/2 later). Raise the cap if that many keys are legitimate.
var ErrGroupFull = errors.New("circuitbreaker: group is full: no breaker can be dropped to make room")

var errNilGroup = fmt.Errorf("%w: the *Group is nil or not made by NewGroup", ErrInvalid)

// A GroupOption configures a [Group] in [NewGroup]. Every [Option] is also a
// GroupOption: it applies to every breaker the group makes ([WithName]
// excepted, an error at group level: names come from keys). [WithIdleTTL],
// [WithMaxBreakers] and [WithKeyOptions] configure the group itself.
type GroupOption interface {
	applyGroup(*groupOptions) error
}

type groupOptionFunc func(*groupOptions) error

func (f groupOptionFunc) applyGroup(o *groupOptions) error { return f(o) }

// applyGroup makes every breaker Option a GroupOption: the group keeps it
// and gives it to every breaker it makes.
func (f optionFunc) applyGroup(o *groupOptions) error {
	o.breaker = append(o.breaker, f)
	return nil
}

type groupOptions struct {
	breaker    []Option // for every breaker, in order
	keyOptions any      // func(K) []Option of WithKeyOptions; checked against K by NewGroup
	ttl        time.Duration
	max        int
	sweepHook  func() // tests only: called at the end of every sweep, outside the lock
	offerHook  func() // tests only: called by offer between its check and its send
}

// WithIdleTTL sets how long a healthy breaker may go unused (no Get, permit
// or report) before the group forgets it: it is dropped between d and 2×d
// after its last use, on the group's clock. Default [DefaultIdleTTL] (10
// minutes); d <= 0 is an error. An unhealthy breaker (open, half-open, with
// failures) is never dropped.
func WithIdleTTL(d time.Duration) GroupOption {
	return groupOptionFunc(func(o *groupOptions) error {
		if d <= 0 {
			return invalid("WithIdleTTL(%v): must be positive", d)
		}
		o.ttl = d
		return nil
	})
}

// WithMaxBreakers caps the number of breakers in the group. Making a breaker
// beyond the cap first drops the least recently used healthy one; when none
// can be dropped, [Group.Get] returns [ErrGroupFull]. Default 0: no cap;
// n < 0 is an error. Recency is by Get, refined by the permits and reports
// each sweep notices: exact to within one sweep (TTL/2).
func WithMaxBreakers(n int) GroupOption {
	return groupOptionFunc(func(o *groupOptions) error {
		if n < 0 {
			return invalid("WithMaxBreakers(%d): must not be negative", n)
		}
		o.max = n
		return nil
	})
}

// WithKeyOptions gives per-key options: f is called (outside every lock of
// the group) each time the group makes a breaker for a key, and its options
// apply after the group's, so they win. It may name the breaker
// ([WithName]); it may not set the clock ([WithClock] among them makes Get
// of that key return an error): the group and its breakers share one clock.
// An invalid option for one key makes Get of that key return the error,
// naming the key, and store nothing; other keys are not affected. K must be
// the group's key type, or NewGroup returns an error. Default: none. A nil
// f is an error.
func WithKeyOptions[K comparable](f func(key K) []Option) GroupOption {
	return groupOptionFunc(func(o *groupOptions) error {
		if f == nil {
			return invalid("WithKeyOptions(nil): a function is required")
		}
		o.keyOptions = f
		return nil
	})
}

// withSweepHook is for tests: f is called at the end of every sweep.
func withSweepHook(f func()) GroupOption {
	return groupOptionFunc(func(o *groupOptions) error { o.sweepHook = f; return nil })
}

// withOfferHook is for tests: f is called by every offer of an event to a
// subscriber, after the member was found present and before the send.
func withOfferHook(f func()) GroupOption {
	return groupOptionFunc(func(o *groupOptions) error { o.offerHook = f; return nil })
}

// GroupEvent is a transition of one breaker of a [Group], with its key.
type GroupEvent[K comparable] struct {
	Key K
	Event
}

// A Group holds one breaker per key (host, route, tenant...), made on first
// use by [Group.Get] and forgotten when idle. One failing key opens only its
// own breaker. Breakers of different keys share nothing but their options
// and clock.
//
// Memory stays bounded: a breaker that stays healthy (closed, no consecutive
// failures) and unused for the idle TTL ([WithIdleTTL]) is dropped, and
// [WithMaxBreakers] caps the count. A failing breaker is never dropped, so
// churn cannot reset it. No goroutine runs per key: one sweeper, run by the
// group's clock while the group has members, does the dropping.
//
// All methods are safe for concurrent use. A nil Group's methods return
// errors and zero values rather than panic. Call [Group.Stop] when done.
type Group[K comparable] struct {
	// Immutable after NewGroup:
	clock      clock.Clock
	ttl        time.Duration
	period     time.Duration // between sweeps: ttl/2, rounded up
	max        int
	breaker    []Option // the group's options for every breaker, WithClock(clock) last
	keyOptions func(K) []Option
	sweepHook  func()
	offerHook  func()
	done       chan struct{} // closed when Stop has finished

	// The hit path: read without mu.
	front   *frontCache[K] // string keys only: a direct-mapped cache in front of index; nil otherwise
	index   sync.Map       // K -> *member[K]; written under mu
	epoch   atomic.Uint32  // advanced by the sweeper, at the start of each sweep
	n       atomic.Int64   // len(members), for Len
	stopped atomic.Bool    // set under mu by Stop

	// Event subscribers, read by breaker loops without any lock (see offer).
	subs atomic.Pointer[[]*groupSub[K]] // copy on write, under mu

	mu      sync.Mutex
	waiting atomic.Int32 // goroutines in lockWaiting: a sweep lets them in between chunks
	// Owned by mu:
	members  []*member[K] // every member once; member.idx is its index
	lru      member[K]    // sentinel of the LRU list of droppable members: front is least recent
	lruLen   int
	timer    *clock.Timer // the armed sweep, if armed
	armSeq   uint64       // incremented by every arming and disarming: a stale firing is ignored
	armed    bool
	sweeping bool
	sweeps   sync.WaitGroup // one per arming whose callback may still run; Stop waits for them
	arming   *atomic.Bool   // the current arming's: set by whoever settles its count (its callback, or a disarm that stopped it)
	stopping bool
	watchers []*watcher[K] // copy on write: hook items keep the slice of their time
	hooks    hookQueue[K]
}

// member is one key's breaker with the group's bookkeeping.
type member[K comparable] struct {
	key K
	b   *Breaker

	// Written without mu:
	used    atomic.Uint32 // the epoch of the last use seen: Get stores it, the sweeper refines it
	gone    atomic.Bool   // set under mu while the member is being dropped; Get then takes the slow path
	dropped atomic.Bool   // set under mu once forgotten: its events no longer reach group subscribers

	// Owned by the group's mu:
	idx        int32  // in members
	filed      uint32 // used when the member took its place in the LRU list
	sum        uint64 // useCount at the last look
	prev, next *member[K]
}

// useCount is the sum of b's counters: any permit, refusal or report
// changes it, so a sweep that sees it unchanged knows b was not used.
func (b *Breaker) useCount() uint64 {
	c := &b.counts
	return c.requests.Load() + c.rejected.Load() + c.successes.Load() + c.failures.Load() + c.ignored.Load() + c.callCount()
}

// idleHealthy reports whether a group may drop b: closed, no consecutive
// failures, no failures in its failure-rate window, not stopped. Dropping
// such a breaker loses nothing: a fresh one for the same key starts in the
// same state.
func (b *Breaker) idleHealthy() bool {
	s := b.snap.Load()
	return s.state() == StateClosed && !s.failing && !s.stopped &&
		(s.window == nil || !s.windowFailures(b.m.clock.Now())) // policy: semantic 20
}

// idleEpochs is how many epochs (sweep periods of ttl/2) a member must go
// unused to be dropped. Each epoch lasts at least one period, and a use in
// epoch u happened before epoch u+1 began, so a member dropped when the epoch
// reaches u+3 went unused for at least two periods (the TTL); with timely
// sweeps, for at most three (1.5×TTL), or four when the use was a permit or
// report that a sweep noticed only at its next look (2×TTL).
const idleEpochs = 3

// A sweep looks at members in chunks, each under one hold of mu, which
// only making and dropping breakers wait for (Get of a present key never
// does). A chunk ends after sweepChunk members or sweepHold, whichever comes
// first; the real clock (time.Now, not the group's: this bounds how long the
// CPU holds mu) is read every sweepClockEvery members. Between chunks the
// sweep waits up to sweepYield for the goroutines waiting for mu to get it.
// So a Get that makes a breaker waits for one chunk, not for a sweep of a
// million keys: well under a millisecond, with margin for a slow machine.
const (
	sweepChunk      = 256
	sweepClockEvery = 16
	sweepHold       = 200 * time.Microsecond
	sweepYield      = 200 * time.Microsecond
)

// NewGroup returns an empty group. Breaker options among opts apply to every
// breaker (an invalid one is an error here, not at Get); [WithClock] sets
// the clock of the group's sweeper and of all its breakers. An invalid option
// (a nil one too), [WithName], or a [WithKeyOptions] for another key type
// makes NewGroup return nil and an error naming it, wrapping [ErrInvalid].
// NewGroup starts no goroutine.
func NewGroup[K comparable](opts ...GroupOption) (*Group[K], error) {
	o := groupOptions{ttl: DefaultIdleTTL}
	for i, opt := range opts {
		if err := applyGroupOption(opt, &o, i+1, len(opts)); err != nil {
			return nil, err
		}
	}
	bo, err := buildOptions(o.breaker)
	if err != nil {
		return nil, err
	}
	if bo.nameSet {
		return nil, invalid("WithName(%q) given to NewGroup: every breaker would have that name; names come from keys, or from WithKeyOptions", bo.name)
	}
	g := &Group[K]{
		clock:     bo.clock,
		ttl:       o.ttl,
		period:    max((o.ttl+1)/2, time.Nanosecond),
		max:       o.max,
		sweepHook: o.sweepHook,
		offerHook: o.offerHook,
		done:      make(chan struct{}),
	}
	if o.keyOptions != nil {
		f, ok := o.keyOptions.(func(K) []Option)
		if !ok {
			return nil, invalid("WithKeyOptions: got a %T, but the group's keys are %v", o.keyOptions, reflect.TypeFor[K]())
		}
		g.keyOptions = f
	}
	// The clock buildOptions settled on (the default one included) is shared.
	g.breaker = append(o.breaker[:len(o.breaker):len(o.breaker)], WithClock(bo.clock))
	g.lru.prev, g.lru.next = &g.lru, &g.lru
	g.hooks.cond.L = &g.mu
	if _, ok := any(*new(K)).(string); ok {
		g.front = &frontCache[K]{seed: maphash.MakeSeed()}
	}
	return g, nil
}

// frontSlots is the size of a string-keyed group's front cache: 32 KiB.
const frontSlots = 4096

// frontCache is a direct-mapped cache of members for string keys, in front
// of the sync.Map: a hit is a hash, one load and a string compare, about
// half the cost of sync.Map's Load. A slot is filled by a Get that finds
// its key in the index while the slot is empty, and emptied when its member
// is dropped; a member that was dropped meanwhile (a Get may refill a slot
// with a member being forgotten) is recognized by its dropped flag and
// treated as a miss. Keys that collide with a slot's key use the sync.Map.
type frontCache[K comparable] struct {
	seed  maphash.Seed
	slots [frontSlots]atomic.Pointer[member[K]]
}

func (c *frontCache[K]) slot(key K) *atomic.Pointer[member[K]] {
	s, _ := any(key).(string)
	return &c.slots[maphash.String(c.seed, s)&(frontSlots-1)]
}

func (c *frontCache[K]) forget(m *member[K]) {
	if c != nil {
		c.slot(m.key).CompareAndSwap(m, nil)
	}
}

func applyGroupOption(opt GroupOption, o *groupOptions, i, n int) (err error) {
	if opt == nil {
		return invalid("group option %d of %d is nil", i, n)
	}
	defer func() {
		if r := recover(); r != nil {
			err = invalid("group option %d of %d cannot be applied: %v", i, n, r)
		}
	}()
	return opt.applyGroup(o)
}

func (g *Group[K]) usable() bool { return g != nil && g.done != nil }

// Clock returns the clock the group's sweeper and all its breakers run on:
// the one given with [WithClock], else the real clock. Integrations use it
// to read times against the breakers' clock (an HTTP Retry-After date, say).
// A nil Group returns nil.
func (g *Group[K]) Clock() clock.Clock {
	if !g.usable() {
		return nil
	}
	return g.clock
}

// Get returns the breaker of key, making it if the key has none. Every
// caller gets the same breaker until the group drops it (idle, evicted for
// the cap, [Group.Remove] or [Group.Stop]); then Get makes a fresh one. A
// Get counts as a use of the breaker. Its name is fmt.Sprint(key) unless
// [WithKeyOptions] gives one.
//
// Get returns [ErrGroupFull] when the cap is reached and no breaker can be
// dropped, [ErrStopped] after Stop, and an error naming the key when the
// key's options are invalid. For a key that has a breaker it takes no lock
// and allocates nothing.
func (g *Group[K]) Get(key K) (*Breaker, error) {
	if g != nil {
		var slot *atomic.Pointer[member[K]]
		if g.front != nil {
			slot = g.front.slot(key)
			if m := slot.Load(); m != nil && m.key == key {
				if ep := g.epoch.Load(); m.used.Load() != ep {
					m.used.Store(ep)
				}
				if !m.gone.Load() && !m.dropped.Load() {
					return m.b, nil
				}
			}
		}
		if v, ok := g.index.Load(key); ok {
			m := v.(*member[K])
			if slot != nil && slot.Load() == nil {
				slot.CompareAndSwap(nil, m) // the first key to come keeps the slot until dropped
			}
			// Store the epoch, then check gone; the sweeper sets gone, then
			// checks used (both sequentially consistent), so either it sees
			// this use and keeps m, or this Get sees gone and takes the slow
			// path, which waits for the sweeper to decide.
			if ep := g.epoch.Load(); m.used.Load() != ep {
				m.used.Store(ep)
			}
			if !m.gone.Load() {
				return m.b, nil
			}
		}
	}
	return g.getSlow(key)
}

func (g *Group[K]) getSlow(key K) (*Breaker, error) {
	if !g.usable() {
		return nil, errNilGroup
	}
	if g.stopped.Load() {
		return nil, ErrStopped
	}
	opts, err := g.optionsFor(key)
	if err != nil {
		return nil, err
	}
	// Make the breaker before taking mu: New only allocates (no goroutine,
	// no timer), so one that loses a race for the key, or finds the group
	// full, is simply dropped; and an option clash between the group and the
	// key fails here, before anything was evicted to make room.
	m := &member[K]{key: key}
	b, err := New(append(opts, withOnEvent(func(ev Event) { g.offer(m, ev) }))...)
	if err != nil {
		return nil, fmt.Errorf("group key %v: %w", key, err)
	}
	m.b = b
	g.lockWaiting()
	if g.stopping {
		g.mu.Unlock()
		return nil, ErrStopped
	}
	// Under mu a member in the index is never gone: the sweeper sets and
	// clears gone within one hold of mu.
	if v, ok := g.index.Load(key); ok {
		m := v.(*member[K])
		m.used.Store(g.epoch.Load())
		g.mu.Unlock()
		return m.b, nil
	}
	if g.max > 0 && len(g.members) >= g.max && !g.evictLocked() {
		g.mu.Unlock()
		return nil, ErrGroupFull
	}
	m.used.Store(g.epoch.Load())
	m.filed = m.used.Load()
	m.idx = int32(len(g.members))
	g.members = append(g.members, m)
	g.n.Store(int64(len(g.members)))
	g.lruPushBack(m)
	g.index.Store(key, m)
	if !g.armed && !g.sweeping {
		g.armLocked()
	}
	g.hookLocked(m, true)
	run := g.hooksDueLocked()
	g.mu.Unlock()
	if run {
		g.runHooks()
	}
	return b, nil
}

// lockWaiting locks mu for Get, Remove and the hooks they run, counted in
// waiting while it waits, so that a sweep can let it in between two chunks
// (see sweep).
func (g *Group[K]) lockWaiting() {
	g.waiting.Add(1)
	g.mu.Lock()
	g.waiting.Add(-1)
}

// optionsFor returns the options of key's breaker: the group's, its name,
// then the key's own. It calls the WithKeyOptions function, outside every
// lock.
func (g *Group[K]) optionsFor(key K) ([]Option, error) {
	var keyOpts []Option
	if g.keyOptions != nil {
		keyOpts = g.keyOptions(key)
	}
	var probe options
	for i, opt := range keyOpts {
		if opt == nil {
			return nil, fmt.Errorf("group key %v: %w", key, invalid("WithKeyOptions: option %d of %d is nil", i+1, len(keyOpts)))
		}
		if err := applyOption(opt, &probe, i+1, len(keyOpts)); err != nil {
			return nil, fmt.Errorf("group key %v: %w", key, err)
		}
	}
	if probe.clock != nil {
		return nil, fmt.Errorf("group key %v: %w", key, invalid("WithClock given by WithKeyOptions: the group and its breakers share the group's clock"))
	}
	opts := make([]Option, 0, len(g.breaker)+len(keyOpts)+2)
	opts = append(opts, g.breaker...)
	if !probe.nameSet {
		opts = append(opts, WithName(keyName(key)))
	}
	return append(opts, keyOpts...), nil
}

// keyName is fmt.Sprint(key), without a copy for string keys.
func keyName[K comparable](key K) string {
	if s, ok := any(key).(string); ok {
		return s
	}
	return fmt.Sprint(key)
}

// Len returns the number of breakers in the group; 0 after Stop.
func (g *Group[K]) Len() int {
	if !g.usable() {
		return 0
	}
	return int(g.n.Load())
}

// Range calls f for each key and its breaker, until f returns false. It
// does not count as a use. It holds no lock while f runs, so f may call Get
// and Remove; a key made or dropped meanwhile may or may not be visited, no
// key is visited twice. After Stop it visits nothing.
func (g *Group[K]) Range(f func(key K, b *Breaker) bool) {
	if !g.usable() || f == nil {
		return
	}
	g.index.Range(func(k, v any) bool {
		return f(k.(K), v.(*member[K]).b)
	})
}

// Remove forgets key's breaker and reports whether the key had one. It does
// not stop the breaker: a call holding it goes on, and the breaker is
// garbage collected once idle and unreferenced. Its later transitions no
// longer reach the group's subscribers, and the next Get of key makes a fresh
// breaker (with a fresh Seq).
func (g *Group[K]) Remove(key K) bool {
	if !g.usable() {
		return false
	}
	g.lockWaiting()
	v, ok := g.index.Load(key)
	if ok {
		g.forgetLocked(v.(*member[K]))
	}
	run := g.hooksDueLocked()
	g.mu.Unlock()
	if run {
		g.runHooks()
	}
	return ok
}

// forgetLocked removes m from the group and queues its dropped hooks.
func (g *Group[K]) forgetLocked(m *member[K]) {
	g.index.CompareAndDelete(m.key, m)
	g.front.forget(m)
	last := len(g.members) - 1
	moved := g.members[last]
	g.members[m.idx], moved.idx = moved, m.idx
	g.members[last] = nil
	g.members = g.members[:last]
	g.n.Store(int64(len(g.members)))
	g.lruRemove(m)
	m.dropped.Store(true)
	g.fenceOffers()
	g.hookLocked(m, false)
	if len(g.members) == 0 && g.armed {
		g.disarmLocked() // no sweeper while the group is empty
	}
}

// tryDropLocked drops m unless it was used since the caller saw epoch u and
// use count sum, or is not healthy. gone makes a concurrent Get wait (see
// Get) instead of taking a breaker that is being forgotten.
func (g *Group[K]) tryDropLocked(m *member[K], u uint32, sum uint64) bool {
	m.gone.Store(true)
	if m.used.Load() != u || m.b.useCount() != sum || !m.b.idleHealthy() {
		m.gone.Store(false)
		return false
	}
	g.forgetLocked(m)
	return true
}

// evictLocked drops the least recently used droppable member to make room,
// and reports whether it found one. A member used since it took its place
// goes to the back; an unhealthy one leaves the list until a sweep finds it
// healthy again. A member is moved at most once per call (once moved, its
// filed epoch is its last use), so two passes over the list reach a
// droppable member if there is one, even when every member was used since
// it was filed; a call costs in proportion to the members it moves, each of
// which then stays put until it is used again.
func (g *Group[K]) evictLocked() bool {
	cur := g.epoch.Load()
	for tries := 2 * g.lruLen; tries > 0; tries-- {
		m := g.lru.next
		if m == &g.lru {
			return false
		}
		u := m.used.Load()
		if sum := m.b.useCount(); sum != m.sum {
			m.sum, u = sum, cur
			m.used.Store(cur)
		}
		switch {
		case u != m.filed:
			g.lruRemove(m)
			m.filed = u
			g.lruPushBack(m)
		case !m.b.idleHealthy():
			g.lruRemove(m)
		case g.tryDropLocked(m, u, m.sum):
			return true
		}
	}
	return false
}

func (g *Group[K]) lruPushBack(m *member[K]) {
	m.prev, m.next = g.lru.prev, &g.lru
	g.lru.prev.next = m
	g.lru.prev = m
	g.lruLen++
}

func (g *Group[K]) lruRemove(m *member[K]) {
	if m.prev == nil {
		return
	}
	m.prev.next, m.next.prev = m.next, m.prev
	m.prev, m.next = nil, nil
	g.lruLen--
}

// armLocked schedules the next sweep. clock.AfterFunc rather than a Timer:
// a mock clock never runs an AfterFunc inside the call (its Timer fires a
// due timer inside Timer, and a channel timer sends under the mock's lock),
// and the period is positive, so the sweep is never already due.
func (g *Group[K]) armLocked() {
	g.armSeq++
	seq := g.armSeq
	g.armed = true
	// Counted until its callback has run or a disarm has stopped it, so
	// that Stop returns only when no sweep goroutine of the group remains,
	// also when the real clock fires just as Stop disarms. The flag makes
	// that exactly one Done per arming, though a mock clock may run one
	// AfterFunc twice.
	settled := new(atomic.Bool)
	g.sweeps.Add(1)
	g.arming = settled
	g.timer = g.clock.AfterFunc(g.period, func() {
		if settled.CompareAndSwap(false, true) {
			defer g.sweeps.Done()
			g.sweep(seq)
		}
	})
}

func (g *Group[K]) disarmLocked() {
	g.armSeq++
	g.armed = false
	if g.timer != nil {
		if g.timer.Stop() && g.arming.CompareAndSwap(false, true) {
			g.sweeps.Done() // its callback will not run
		}
		g.timer = nil
	}
}

// sweep advances the epoch and looks at every member, in chunks (at most
// sweepChunk members or sweepHold) under mu: it drops idle healthy members,
// notes uses, and keeps the LRU list in order. It walks members from the
// end: a member removed meanwhile is replaced by the last one, which this
// sweep has already seen or is new, so every member present throughout is
// seen at least once.
//
// seq tells a firing of the current arming from a stale one: a mock clock
// can run one AfterFunc twice when another goroutine creates a timer during
// Add.
func (g *Group[K]) sweep(seq uint64) {
	g.mu.Lock()
	if g.stopping || !g.armed || seq != g.armSeq {
		g.mu.Unlock()
		return
	}
	g.armed, g.timer, g.sweeping = false, nil, true
	cur := g.epoch.Add(1)
	for i := len(g.members) - 1; i >= 0 && !g.stopping; {
		start := time.Now()
		for n := 0; n < sweepChunk && i >= 0; n++ {
			i = min(i, len(g.members)-1)
			if i < 0 {
				break
			}
			g.sweepMember(g.members[i], cur)
			i--
			if n%sweepClockEvery == sweepClockEvery-1 && time.Since(start) >= sweepHold {
				break
			}
		}
		// Run the chunk's dropped hooks now (they release mu once), rather
		// than leave a backlog for the next Get that makes a breaker to run.
		g.deliverLocked()
		g.mu.Unlock()
		g.yieldToWaiting()
		g.mu.Lock()
	}
	g.sweeping = false
	if !g.stopping && len(g.members) > 0 {
		g.armLocked()
	}
	if c := cap(g.members); c > 64 && len(g.members) < c/4 {
		g.members = append([]*member[K](nil), g.members...) // give back what a wave of keys left
	}
	g.mu.Unlock()
	g.runHooks()
	if g.sweepHook != nil {
		g.sweepHook()
	}
}

// yieldToWaiting lets other goroutines in before the sweep's next chunk.
// It always yields the processor once: a goroutine queued behind the
// sweeper on its processor (one that unlocked mu and handed it over, say)
// would otherwise wait for the scheduler to preempt the sweep, which takes
// 10ms or more. Then it waits up to sweepYield for the goroutines waiting
// for mu (Gets that make a breaker, Removes) to take it: the sweep, still
// running, would usually lock mu again before a waiter it woke is
// scheduled, and sync.Mutex hands mu over only once a waiter has waited a
// millisecond.
func (g *Group[K]) yieldToWaiting() {
	runtime.Gosched()
	for start := time.Now(); g.waiting.Load() > 0 && time.Since(start) < sweepYield; {
		runtime.Gosched()
	}
}

func (g *Group[K]) sweepMember(m *member[K], cur uint32) {
	if sum := m.b.useCount(); sum != m.sum {
		m.sum = sum
		m.used.Store(cur)
	}
	if m.b.snap.Load().stopped {
		// Stopped by whoever held it: useless to anyone who would Get it.
		g.forgetLocked(m)
		return
	}
	u := m.used.Load()
	healthy := m.b.idleHealthy()
	if healthy && cur-u >= idleEpochs && g.tryDropLocked(m, u, m.sum) {
		return
	}
	switch {
	case !healthy:
		g.lruRemove(m) // out of the cap's reach until it recovers
	case m.prev == nil:
		m.filed = u
		g.lruPushBack(m)
	case u != m.filed:
		g.lruRemove(m)
		m.filed = u
		g.lruPushBack(m)
	}
}

// Stop stops every breaker of the group, calls the dropped hooks of every
// [Group.Watch] for them, and closes the group's subscriptions. It returns
// when no goroutine of the group or its breakers remains and every hook has
// returned; so a hook must not call Stop. After Stop, Len is 0, Range visits
// nothing and Get returns [ErrStopped]. Stop is idempotent and safe to call
// concurrently.
func (g *Group[K]) Stop() {
	if !g.usable() {
		return
	}
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		<-g.done
		return
	}
	g.stopping = true
	g.stopped.Store(true)
	if g.armed {
		g.disarmLocked()
	}
	members := g.members
	g.members = nil
	for _, m := range members {
		g.index.CompareAndDelete(m.key, m)
		m.dropped.Store(true)
	}
	g.n.Store(0)
	g.lru.prev, g.lru.next, g.lruLen = &g.lru, &g.lru, 0
	subs := g.subs.Swap(nil)
	g.mu.Unlock()

	g.sweeps.Wait() // a sweep callback that fired before stopping was set, or fires meanwhile
	for _, m := range members {
		m.b.Stop()
	}
	g.mu.Lock()
	for _, m := range members {
		g.hookLocked(m, false)
	}
	g.mu.Unlock()
	g.flushHooks()
	if subs != nil {
		for _, s := range *subs {
			s.close()
		}
	}
	close(g.done)
}

// groupSub is one subscription to a group. Breaker loops offer to it
// concurrently, each under a read lock; cancel and Stop close it under the
// write lock, so no offer sends on a closed channel. The lock is held only
// for a non-blocking offer, so a loop never waits long.
type groupSub[K comparable] struct {
	mu     sync.RWMutex
	closed bool
	ch     chan GroupEvent[K]
}

func (s *groupSub[K]) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// offer is the breaker's onEvent hook: it runs on m's loop, so it never
// blocks. A member the group forgot no longer speaks for its key: offer
// checks that and sends under the subscription's read lock, and
// forgetLocked takes every write lock once after marking m dropped
// (fenceOffers), so no event of a forgotten breaker is delivered after
// Remove returns or after its key has a new breaker (per-key order).
func (g *Group[K]) offer(m *member[K], ev Event) {
	subs := g.subs.Load()
	if subs == nil || m.dropped.Load() {
		return
	}
	gev := GroupEvent[K]{Key: m.key, Event: ev}
	for _, s := range *subs {
		s.mu.RLock()
		if !s.closed && !m.dropped.Load() {
			if g.offerHook != nil {
				g.offerHook() // tests only
			}
			offerDropOldest(s.ch, gev)
		}
		s.mu.RUnlock()
	}
}

// fenceOffers returns once every offer that found a member present before
// it was marked dropped has sent its event. Called under g.mu, with the
// subscriptions' locks taken after it, as everywhere.
func (g *Group[K]) fenceOffers() {
	subs := g.subs.Load()
	if subs == nil {
		return
	}
	for _, s := range *subs {
		s.mu.Lock()
		//lint:ignore SA2001 an empty critical section is the point: it waits for the read locks held by offers in flight
		s.mu.Unlock()
	}
}

// offerDropOldest sends v without blocking: when ch is full it drops the
// oldest value to make room, as subscriber.offer does. Several loops may
// offer at once; each retries until its own value is in.
func offerDropOldest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// Subscribe returns a channel that receives every transition of every
// breaker of the group made after Subscribe returns, with its key, in order
// per key (Seq is the breaker's own: a fresh breaker for a key starts again
// at 1), and a cancel function that closes the channel. The buffer and
// drop-oldest rule are a breaker's ([SubscriberBuffer] events; a subscriber
// that falls behind loses the oldest, never delaying a breaker). Transitions
// of a breaker the group has forgotten (dropped or removed) are not
// delivered: none comes after Remove returns or after the key has a new
// breaker. Subscribing costs the breakers nothing until they transition.
// cancel is safe to call more than once and after Stop; after Stop the
// channel is closed, and Subscribe returns a closed channel.
func (g *Group[K]) Subscribe() (events <-chan GroupEvent[K], cancel func()) {
	s := &groupSub[K]{ch: make(chan GroupEvent[K], SubscriberBuffer)} // buffered: see SubscriberBuffer
	if !g.usable() {
		s.close()
		return s.ch, func() {}
	}
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		s.close()
		return s.ch, func() {}
	}
	var next []*groupSub[K]
	if cur := g.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	g.subs.Store(&next)
	g.mu.Unlock()
	return s.ch, func() {
		g.mu.Lock()
		if cur := g.subs.Load(); cur != nil {
			var next []*groupSub[K]
			for _, o := range *cur {
				if o != s {
					next = append(next, o)
				}
			}
			g.subs.Store(&next)
		}
		g.mu.Unlock()
		s.close()
	}
}
