package redisbreaker

import (
	"errors"
	"sync"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// JoinGroup shares every breaker of g, those there now and those it makes
// later, each under its own name (by default fmt.Sprint of its key), as
// [Cluster.Join] does for one. A breaker the group drops leaves with it. A
// breaker whose name Join would refuse (empty, or starting with '}' under
// Redis Cluster or a Ring) is not shared.
//
// It costs one goroutine per group, not per breaker: the group's event
// subscription brings every breaker's transitions, and the group's Watch
// hooks say which breakers there are. leave undoes JoinGroup (idempotent);
// once it returns the cluster trips none of g's breakers again.
//
// JoinGroup with a nil cluster or group, or after Close, is an error.
func JoinGroup[K comparable](c *Cluster, g *actor.Group[K]) (leave func(), err error) {
	if c == nil || g == nil {
		return nil, errors.New("redisbreaker: JoinGroup needs a cluster and a group")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	j := &groupJoin[K]{c: c, byKey: make(map[K]*member)}
	// Subscribe before Watch: a breaker made after Watch has all its
	// events in the subscription.
	events, cancelEvents := g.Subscribe()
	done := make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		for ev := range events {
			j.mu.Lock()
			m := j.byKey[ev.Key]
			j.mu.Unlock()
			// A breaker whose made hook has not run yet is unknown here;
			// made reads its state when it runs.
			if m != nil {
				c.note(m, ev.Event)
			}
		}
	}()
	// Watch runs made for the breakers already there before it returns, on
	// this goroutine; made takes c.mu, so release it meanwhile.
	c.mu.Unlock()
	cancelWatch := g.Watch(j.made, j.dropped)
	c.mu.Lock()

	var once sync.Once
	leave = func() {
		once.Do(func() {
			cancelWatch()
			cancelEvents()
			<-done
			j.mu.Lock()
			j.left = true
			members := j.byKey
			j.byKey = nil
			j.mu.Unlock()
			for _, m := range members {
				c.remove(m)
			}
			c.mu.Lock()
			delete(c.leaves, j)
			c.mu.Unlock()
		})
	}
	if c.closed { // Close ran while Watch did: it could not see this join
		c.mu.Unlock()
		leave()
		c.mu.Lock()
		return nil, ErrClosed
	}
	c.leaves[j] = leave
	return leave, nil
}

// groupJoin follows one group's membership.
type groupJoin[K comparable] struct {
	c     *Cluster
	mu    sync.Mutex // guards byKey and left: hooks, the reader and leave
	byKey map[K]*member
	left  bool
}

func (j *groupJoin[K]) made(key K, b *actor.Breaker) {
	name := b.Name()
	if name == "" || j.c.checkName(name) != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.left {
		return // a hook that started before leave's cancel
	}
	j.c.mu.Lock()
	if j.c.closed {
		j.c.mu.Unlock()
		return
	}
	m := j.c.addLocked(name, b)
	j.c.mu.Unlock()
	j.c.wake()
	if old := j.byKey[key]; old != nil {
		j.c.remove(old)
	}
	j.byKey[key] = m
}

func (j *groupJoin[K]) dropped(key K, b *actor.Breaker) {
	j.mu.Lock()
	m := j.byKey[key]
	if m == nil || m.b != b {
		j.mu.Unlock()
		return
	}
	delete(j.byKey, key)
	j.mu.Unlock()
	j.c.remove(m)
}
