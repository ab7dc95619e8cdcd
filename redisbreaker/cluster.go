package redisbreaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A Cluster shares what this instance's breakers learn with the other
// instances of a service through Redis, and trips this instance's breakers
// when enough of the others vote. Redis carries hints; each breaker decides.
// Nothing on a breaker's call path waits for Redis.
//
// A Cluster runs two goroutines until [Cluster.Close]: the worker, which
// does every Redis operation one at a time, and the hint receiver, which
// listens on the namespace's pub/sub channel. [Cluster.Join] adds one
// goroutine per joined breaker that forwards its events; [JoinGroup] adds
// one per group.
type Cluster struct {
	// Immutable:
	client  redis.UniversalClient
	o       options
	index   string // the index key
	channel string // the hint channel
	split   bool   // Redis Cluster or Ring: the index is written by its own script

	ctx    context.Context // cancelled by Close; every Redis operation derives from it
	cancel context.CancelFunc
	pubsub *redis.PubSub
	wg     sync.WaitGroup // the worker, the receiver and every reader
	wakec  chan struct{}  // from readers, Join and the receiver -> worker; buffered 1: a pending wake is enough

	healthy atomic.Bool
	stats   struct{ dropped, gaps, votes, trips, polls, reads, errors atomic.Uint64 }

	// Guarded by mu; written by Join, leave, the readers and the receiver,
	// taken by the worker:
	mu       sync.Mutex
	closed   bool
	byName   map[string][]*member
	members  map[*member]struct{}
	queue    []*member           // members with news, each at most once; at most o.queue
	rescan   bool                // news did not fit in queue: the worker looks at every member
	hints    map[string]struct{} // names to re-read; at most o.queue
	fullRead bool                // re-read every name that holds votes (a hint was lost)
	leaves   map[any]func()      // what Close must leave: *member (Join) or a group's join

	w worker // owned by the worker goroutine
}

// member is one joined breaker.
type member struct {
	name string
	b    *actor.Breaker

	// Guarded by Cluster.mu: news from the reader, taken by the worker.
	queued  bool
	ownOpen bool        // opened by its own rules since the worker last looked (and not closed since)
	closed  bool        // closed since the worker last looked
	latest  actor.State // the state of the latest event
	seq     uint64      // the Seq of the latest event; 0: none yet

	// tripMu serialises the worker's Trip with leave: once leave returns,
	// the cluster never trips the breaker again.
	tripMu sync.Mutex
	left   bool

	// Owned by the worker:
	view         actor.State // the breaker's state as far as the worker knows
	closePending bool        // it closed and the server time of the close is not known yet
	lastClose    int64       // the server time (ms) of its last close; 0: not closed since it joined
}

// Stats are a cluster's counters since NewCluster.
type Stats struct {
	Dropped uint64 // news or hints that did not fit in a bounded queue (the worker re-scanned instead)
	Gaps    uint64 // gaps in a breaker's events (its subscription fell behind and lost the oldest), each taken as a close
	Votes   uint64 // vote scripts that ran: casts, renewals and withdrawals
	Trips   uint64 // local breakers this cluster tripped because of a quorum
	Polls   uint64 // successful reads of the index of voted names
	Reads   uint64 // successful reads of one name's votes
	Errors  uint64 // Redis operations that failed or timed out
}

// NewCluster returns a cluster that shares votes through client. It starts
// the cluster's worker and hint receiver, and tries Redis at once; until
// Redis answers, [Cluster.Healthy] is false and joined breakers decide
// alone. The client stays the caller's: Close does not close it.
//
// Configure the client so that a stalled Redis cannot hold the worker:
// ContextTimeoutEnabled: true (without it go-redis ignores the deadline
// the cluster gives each operation), short read and write timeouts, and few
// retries (see the package doc).
func NewCluster(client redis.UniversalClient, opts ...Option) (*Cluster, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: NewCluster(nil client)", ErrInvalid)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	// A ClusterClient or a Ring sends a script to the node of its first
	// key: the index (its own slot or shard) must be written by a script of
	// its own, or it would land on the node of some name.
	var split bool
	switch client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		split = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		client:  client,
		o:       o,
		index:   indexKey(o.namespace),
		channel: hintChannel(o.namespace),
		split:   split,
		ctx:     ctx,
		cancel:  cancel,
		wakec:   make(chan struct{}, 1),
		byName:  make(map[string][]*member),
		members: make(map[*member]struct{}),
		hints:   make(map[string]struct{}),
		leaves:  make(map[any]func()),
	}
	c.w.init(c)
	// Subscribe records the channel and sends SUBSCRIBE when it can; the
	// PubSub reconnects and re-subscribes by itself after an error.
	c.wg.Add(1)
	go c.w.run()
	if !o.noHints {
		c.pubsub = client.Subscribe(ctx, c.channel)
		c.wg.Add(1)
		go c.receive()
	}
	return c, nil
}

// Healthy reports whether Redis answered the cluster's last attempt. It is
// false before the first answer and after any failed operation, until one
// succeeds again; while false, joined breakers decide alone.
func (c *Cluster) Healthy() bool { return c.healthy.Load() }

// Stats returns the cluster's counters.
func (c *Cluster) Stats() Stats {
	return Stats{
		Dropped: c.stats.dropped.Load(),
		Gaps:    c.stats.gaps.Load(),
		Votes:   c.stats.votes.Load(),
		Trips:   c.stats.trips.Load(),
		Polls:   c.stats.polls.Load(),
		Reads:   c.stats.reads.Load(),
		Errors:  c.stats.errors.Load(),
	}
}

// InstanceID returns the id this instance votes under.
func (c *Cluster) InstanceID() string { return c.o.id }

// Join shares b under b.Name(): when b opens by its own rules this instance
// votes for the name, and when enough instances vote, b is tripped while it
// is closed. leave undoes Join (idempotent); once it returns the cluster
// never trips b again. leave does not wait for Redis: this instance's vote
// for the name, if any, ages out like a dead instance's.
//
// Join(nil), a breaker with an empty name, and Join after Close are errors.
// Joining the same breaker twice makes two members that act alike.
func (c *Cluster) Join(b *actor.Breaker) (leave func(), err error) {
	if b == nil {
		return nil, errors.New("redisbreaker: Join(nil)")
	}
	name := b.Name()
	if name == "" {
		return nil, errors.New("redisbreaker: Join: the breaker has no name (give it actor.WithName)")
	}
	if err := c.checkName(name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	events, cancel := b.Subscribe()
	m := c.addLocked(name, b)
	c.wake()
	done := make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		for ev := range events {
			c.note(m, ev)
		}
	}()
	var once sync.Once
	leave = func() {
		once.Do(func() {
			cancel()
			<-done
			c.remove(m)
			c.mu.Lock()
			delete(c.leaves, m)
			c.mu.Unlock()
		})
	}
	c.leaves[m] = leave
	return leave, nil
}

// checkName refuses, under Redis Cluster or a Ring, a name that cannot be
// its keys' hash tag: in <namespace>:{}x}:votes the braces hold nothing, so
// the server hashes the whole key, a name's two keys land in different
// slots, and every vote script would fail with CROSSSLOT.
func (c *Cluster) checkName(name string) error {
	if c.split && strings.HasPrefix(name, "}") {
		return fmt.Errorf("redisbreaker: Join: the name %q starts with '}': under Redis Cluster its keys cannot share a slot", name)
	}
	return nil
}

// addLocked registers a member and asks the worker for a poll, so that a
// breaker joining after a quorum formed is tripped too. A poll, not a read
// of the name: it reads only the names that hold votes, and a group joining
// with many breakers costs one poll, not a read per breaker.
func (c *Cluster) addLocked(name string, b *actor.Breaker) *member {
	st := b.State()
	m := &member{name: name, b: b, latest: st, view: st}
	c.byName[name] = append(c.byName[name], m)
	c.members[m] = struct{}{}
	c.fullRead = true
	return m
}

// remove forgets m; the worker never trips it again once remove returns.
func (c *Cluster) remove(m *member) {
	m.tripMu.Lock()
	m.left = true
	m.tripMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.members[m]; !ok {
		return
	}
	delete(c.members, m)
	list := c.byName[m.name]
	for i, x := range list {
		if x == m {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.byName, m.name)
	} else {
		c.byName[m.name] = list
	}
}

// note records an event of m's breaker for the worker. It coalesces: a
// breaker that flaps a thousand times before the worker looks is one entry.
//
// A gap in Seq means the subscription fell more than actor.SubscriberBuffer
// events behind and lost the oldest, which may have held a close: note
// takes it as one, so that a vote whose evidence may have ended is
// withdrawn rather than left to count towards a quorum until it expires. If
// the breaker is still failing by its own rules, its next own opening (this
// event, or a later one) votes again.
func (c *Cluster) note(m *member, ev actor.Event) {
	c.mu.Lock()
	gap := m.seq != 0 && ev.Seq > m.seq+1
	m.seq = ev.Seq
	m.latest = ev.To
	if gap {
		c.stats.gaps.Add(1)
	}
	switch {
	case ev.To == actor.StateClosed || gap:
		m.closed = true
		m.ownOpen = false
	}
	switch {
	case ev.To == actor.StateOpen && !ev.External:
		// Only an opening by the breaker's own rules is evidence. One made
		// by Trip (the cluster's own doing) or ForceOpen is not: voting for
		// it would echo the quorum back. A tripped breaker whose own probe
		// then fails does vote: that failure is its own.
		m.ownOpen = true
	}
	c.queueLocked(m)
	c.mu.Unlock()
	c.wake()
}

func (c *Cluster) queueLocked(m *member) {
	if m.queued {
		return
	}
	if len(c.queue) >= c.o.queue {
		c.rescan = true
		c.stats.dropped.Add(1)
		return
	}
	m.queued = true
	c.queue = append(c.queue, m)
}

// hint asks the worker to re-read name (from the receiver).
func (c *Cluster) hint(name string) {
	c.mu.Lock()
	_, joined := c.byName[name]
	if joined {
		c.hintLocked(name)
	}
	c.mu.Unlock()
	if joined {
		c.wake()
	}
}

func (c *Cluster) hintLocked(name string) {
	if _, ok := c.hints[name]; ok {
		return
	}
	if len(c.hints) >= c.o.queue {
		c.fullRead = true
		c.stats.dropped.Add(1)
		return
	}
	c.hints[name] = struct{}{}
}

// readAll asks the worker to re-read every name that holds votes.
func (c *Cluster) readAll() {
	c.mu.Lock()
	c.fullRead = true
	c.mu.Unlock()
	c.wake()
}

func (c *Cluster) wake() {
	select {
	case c.wakec <- struct{}{}:
	default:
	}
}

// Close leaves every joined breaker and group, stops the worker and the
// receiver, and returns when no goroutine of the cluster remains. It does
// not close the client, and leaves this instance's votes to expire. Close
// is idempotent; Join after Close is an error.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.closed = true
	leaves := make([]func(), 0, len(c.leaves))
	for _, leave := range c.leaves {
		leaves = append(leaves, leave)
	}
	c.mu.Unlock()
	for _, leave := range leaves {
		leave()
	}
	c.cancel()
	var err error
	if c.pubsub != nil {
		err = c.pubsub.Close() // unblocks the receiver
	}
	c.wg.Wait()
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}
