package actor

import "sync"

// SubscriberBuffer is how many events a subscription holds for a subscriber
// that is not receiving. One that falls further behind loses the oldest
// events first; the gap shows in Event.Seq.
const SubscriberBuffer = 32

// subscriber is one subscription. Only the loop sends on ch, closes it, or
// (to drop the oldest event) receives from it besides the subscriber.
type subscriber struct {
	ch chan Event
}

// offer delivers ev without ever blocking the loop: when the buffer is full
// it drops the oldest event to make room.
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

// Subscribe returns a channel that receives every transition made after
// Subscribe returns, in order, and a cancel function that closes the channel.
// The channel buffers [SubscriberBuffer] events; a subscriber that falls
// further behind loses the oldest ones (the gap shows in Event.Seq) and never
// delays the breaker or other subscribers. cancel is safe to call more than
// once and after Stop. After Stop, the channel is closed; Subscribe after
// Stop returns a closed channel.
func (b *Breaker) Subscribe() (events <-chan Event, cancel func()) {
	if !b.usable() {
		return closedEvents(), func() {}
	}
	s := &subscriber{ch: make(chan Event, SubscriberBuffer)} // buffered: see SubscriberBuffer
	if !b.send(&request{kind: subscribeReq, sub: s}) {
		return closedEvents(), func() {}
	}
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			req := &request{kind: unsubscribeReq, sub: s, done: make(chan struct{})}
			if b.send(req) {
				<-req.done
			}
			// Otherwise the loop closed every subscription on its way out.
		})
	}
	return s.ch, cancel
}

func closedEvents() <-chan Event {
	ch := make(chan Event)
	close(ch)
	return ch
}
