package actor

import (
	"sync"
	"sync/atomic"
)

// Watch registers hooks that follow the group's membership: made is called
// for every breaker in the group when Watch is called and for every breaker
// made later, dropped for every breaker the group forgets from then on
// (dropped for being idle, evicted for the cap, [Group.Remove]d, or stopped
// by [Group.Stop]). Either may be nil. Integrations use it to follow a
// group without scanning it: to keep a map from breaker name to breaker, or
// to instrument each breaker once.
//
// Ordering. Hooks run one at a time for the whole group (never two at once,
// whatever the watcher), in the order of the membership changes, never with
// a lock of the group held. So for each breaker, made returns before its
// dropped is called, and the dropped of a key's breaker returns before the
// made of the next breaker of that key. Every watcher sees made exactly once
// for each breaker it later sees dropped.
//
// Goroutine. A hook runs on the goroutine that changed the membership (the
// Get that made the breaker, the Remove, the Stop, the group's sweeper, or
// Watch itself for the breakers already there) unless another goroutine is
// running hooks at that moment: then that goroutine runs it, right after its
// current hooks. So Get usually returns after made ran for the breaker it
// made, but that is not guaranteed; a hook must not assume it runs on a
// goroutine that holds the breaker.
//
// A hook may call Get, Remove, Range and Len (what they change is hooked
// after the current hook returns). It must not block for long (it holds up
// every other hook of the group) and must not call Watch or Stop, which wait
// for hooks: Watch returns once made has run for every breaker already in
// the group, and Stop once every dropped hook has returned.
//
// cancel unregisters the hooks: no call starts after cancel returns, but one
// already running on another goroutine may still be finishing, so a watcher
// that tears down state the hooks touch guards it with a lock of its own.
// cancel is safe to call more than once, from a hook too. Watch after Stop
// registers nothing.
func (g *Group[K]) Watch(made, dropped func(key K, b *Breaker)) (cancel func()) {
	if !g.usable() || (made == nil && dropped == nil) {
		return func() {}
	}
	w := &watcher[K]{made: made, dropped: dropped}
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		return func() {}
	}
	g.watchers = append(g.watchers[:len(g.watchers):len(g.watchers)], w) // copy on write: queued items keep theirs
	if made != nil && len(g.members) > 0 {
		only := &[]*watcher[K]{w}
		for _, m := range g.members {
			g.hooks.push(hookItem[K]{key: m.key, b: m.b, made: true, watchers: only})
		}
	}
	g.mu.Unlock()
	g.flushHooks()
	return func() {
		if w.canceled.Swap(true) {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for i, o := range g.watchers {
			if o == w {
				next := make([]*watcher[K], 0, len(g.watchers)-1)
				g.watchers = append(append(next, g.watchers[:i]...), g.watchers[i+1:]...)
				break
			}
		}
	}
}

type watcher[K comparable] struct {
	made, dropped func(key K, b *Breaker)
	canceled      atomic.Bool
}

// hookItem is one membership change to hand to the watchers registered
// when it happened.
type hookItem[K comparable] struct {
	key      K
	b        *Breaker
	made     bool
	watchers *[]*watcher[K]
}

// hookQueue carries membership changes, queued under the group's mu in the
// order they happen, to the goroutine that runs the hooks: one goroutine at
// a time, so hooks run one at a time and in order, and never under mu.
type hookQueue[K comparable] struct {
	items          []hookItem[K]
	running        bool      // a goroutine is running hooks (in deliverLocked)
	queued, called uint64    // items queued so far, items whose hooks have returned
	cond           sync.Cond // on the group's mu: signalled when called advances or running ends
}

func (q *hookQueue[K]) push(it hookItem[K]) {
	q.items = append(q.items, it)
	q.queued++
}

// hookLocked queues m's made or dropped hooks, if any watcher has one.
func (g *Group[K]) hookLocked(m *member[K], made bool) {
	ws := g.watchers
	for _, w := range ws {
		if (made && w.made != nil) || (!made && w.dropped != nil) {
			g.hooks.push(hookItem[K]{key: m.key, b: m.b, made: made, watchers: &ws})
			return
		}
	}
}

// hooksDueLocked reports whether hooks are queued and no goroutine runs
// them: then whoever queued them runs them, once it has released mu. While
// a goroutine runs hooks it runs what is queued meanwhile too, so the others
// need not take mu again for it.
func (g *Group[K]) hooksDueLocked() bool {
	return len(g.hooks.items) > 0 && !g.hooks.running
}

// runHooks runs the queued hooks unless another goroutine is running them.
func (g *Group[K]) runHooks() {
	g.lockWaiting()
	defer g.mu.Unlock()
	g.deliverLocked()
}

// flushHooks returns once every hook queued before the call has returned,
// running them itself when no other goroutine is.
func (g *Group[K]) flushHooks() {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := &g.hooks
	for target := q.queued; q.called < target; {
		if !q.running {
			g.deliverLocked()
			continue
		}
		q.cond.Wait()
	}
}

// deliverLocked runs queued hooks until the queue is empty, unless another
// goroutine is already doing it. It takes what is queued as one batch and
// releases mu once for the whole batch, not once per hook: a sweep that
// drops a chunk of members then lets a waiting Get in once, instead of
// racing it for mu after every hook. A hook that panics ends the run (the
// panic goes on) without stalling the queue: its item counts as called, and
// the rest of its batch runs first at the next change.
func (g *Group[K]) deliverLocked() {
	q := &g.hooks
	if q.running || len(q.items) == 0 {
		return
	}
	q.running = true
	var batch []hookItem[K]
	next := 0 // in batch: the hook being called
	defer func() {
		if next < len(batch) { // a hook panicked (or called runtime.Goexit): mu is not held
			g.mu.Lock()
			q.called += uint64(next + 1) // those before it, and itself
			q.items = append(batch[next+1:len(batch):len(batch)], q.items...)
		}
		q.running = false
		q.cond.Broadcast()
	}()
	for len(q.items) > 0 {
		batch, q.items = q.items, nil
		g.mu.Unlock()
		for next = 0; next < len(batch); next++ {
			batch[next].call()
		}
		g.lockWaiting() // a sweep lets it in between chunks, as it does Get
		q.called += uint64(len(batch))
		q.cond.Broadcast()
	}
}

func (it *hookItem[K]) call() {
	for _, w := range *it.watchers {
		if w.canceled.Load() {
			continue
		}
		if it.made {
			if w.made != nil {
				w.made(it.key, it.b)
			}
		} else if w.dropped != nil {
			w.dropped(it.key, it.b)
		}
	}
}
