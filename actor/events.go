package actor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"
)

// SubscriberBuffer is how many events a subscription holds for a subscriber
// that is not receiving. One that falls further behind loses the oldest
// events first; the gap shows in Event.Seq.
const SubscriberBuffer = 32

// subscriber is one subscription. Only the executor sends on ch or (to drop
// the oldest event) receives from it besides the subscriber; whoever closes
// it (the executor, a cancel after the breaker was collected, or the
// breaker's cleanup) wins closed first.
type subscriber struct {
	ch     chan Event
	closed atomic.Bool
}

// close closes the channel once, whoever asks first.
func (s *subscriber) close() {
	if s.closed.CompareAndSwap(false, true) {
		close(s.ch)
	}
}

// offer delivers ev without ever blocking the executor: when the buffer is
// full it drops the oldest event to make room.
func (s *subscriber) offer(ev Event) {
	for {
		select {
		case s.ch <- ev:
			return
		default:
		}
		select {
		case <-s.ch:
		default:
		}
	}
}

// subList is a breaker's subscribers. The executor replaces the slice (copy
// on write) rather than editing it, so that the breaker's cleanup, which
// runs once the breaker is unreachable and holds only the subList, sees the
// last one through the atomic pointer. A nil *subList has no subscribers.
type subList struct {
	list atomic.Pointer[[]*subscriber]
}

func (l *subList) all() []*subscriber {
	if l == nil {
		return nil
	}
	if p := l.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *subList) offer(ev Event) {
	for _, s := range l.all() {
		s.offer(ev)
	}
}

// closeAll closes every subscription: at Stop, and by the cleanup of a
// breaker that was garbage collected.
func (l *subList) closeAll() {
	for _, s := range l.all() {
		s.close()
	}
	if l != nil {
		l.list.Store(nil)
	}
}

// add is run by the executor. The first subscription makes the list and
// registers its cleanup: when the breaker is collected (semantic 14: a
// subscriber's channel does not keep it alive), its subscriptions are
// closed, so a reader ranging over one ends.
func (b *Breaker) addSub(s *subscriber) {
	if b.subs == nil {
		b.subs = new(subList)
		runtime.AddCleanup(b, (*subList).closeAll, b.subs)
	}
	old := b.subs.all()
	next := make([]*subscriber, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	b.subs.list.Store(&next)
}

// removeSub is run by the executor: it closes s and drops it.
func (b *Breaker) removeSub(s *subscriber) {
	s.close()
	old := b.subs.all()
	next := make([]*subscriber, 0, len(old))
	for _, o := range old {
		if o != s {
			next = append(next, o)
		}
	}
	b.subs.list.Store(&next)
}

// Subscribe returns a channel that receives every transition made after
// Subscribe returns, in order, and a cancel function that closes the channel.
// The channel buffers [SubscriberBuffer] events; a subscriber that falls
// further behind loses the oldest ones (the gap shows in Event.Seq) and never
// delays the breaker or other subscribers. cancel is safe to call more than
// once and after Stop. After Stop, the channel is closed; Subscribe after
// Stop returns a closed channel. A subscription does not keep the breaker
// alive: the breaker holds the channel, not the other way round, and when
// an unreferenced breaker is garbage collected its channels are closed.
func (b *Breaker) Subscribe() (events <-chan Event, cancel func()) {
	if !b.usable() || b.snap.Load().stopped {
		return closedEvents(), func() {}
	}
	s := &subscriber{ch: make(chan Event, SubscriberBuffer)} // buffered: see SubscriberBuffer
	req := &request{kind: subscribeReq, sub: s, reply: make(chan bool, 1)}
	b.post(req)
	<-req.reply // served: the subscription is in place (or closed, after Stop)
	wb := weak.Make(b)
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			b := wb.Value()
			if b == nil {
				s.close() // collected: no executor can be offering to s
				return
			}
			req := &request{kind: unsubscribeReq, sub: s, reply: make(chan bool, 1)}
			b.post(req)
			<-req.reply
		})
	}
	return s.ch, cancel
}

func closedEvents() <-chan Event {
	ch := make(chan Event)
	close(ch)
	return ch
}
