package redisbreaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// worker does every Redis operation of a cluster, one at a time, on its
// own goroutine: breakers hand it news through the cluster's bounded queue
// and never wait for it.
type worker struct {
	c     *Cluster
	names map[string]*nameState
	// pending are members that closed while the worker did not know the
	// server's time: the next successful script's TIME becomes their close.
	pending   []*member
	lost      bool      // Redis failed and the Warn was logged; an Info is due when it is back
	failed    bool      // the last operation failed: a full re-read is due when one succeeds
	backSince time.Time // lost, and answering without a failure since then
	// voteAt is when the vote timer fires (zero: not armed).
	voteAt time.Time
}

// nameState is this instance's vote for one name.
type nameState struct {
	want  bool      // vote (true) or withdraw (false), as the latest news says
	dirty bool      // want is not yet written to Redis
	voted bool      // Redis holds (or may hold) this instance's vote
	next  time.Time // the earliest time the next vote script may run (one per poll interval)
}

func (w *worker) init(c *Cluster) {
	w.c = c
	w.names = make(map[string]*nameState)
}

func (w *worker) run() {
	c := w.c
	defer c.wg.Done()
	poll := time.NewTicker(c.o.poll) // real time: the votes live on the server's clock
	defer poll.Stop()
	voteTimer := time.NewTimer(time.Hour)
	voteTimer.Stop()
	defer voteTimer.Stop()

	w.poll()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-poll.C:
			w.takeNews()
			w.poll()
		case <-c.wakec:
			w.takeNews()
		case <-voteTimer.C:
			w.voteAt = time.Time{}
		}
		if c.ctx.Err() != nil {
			return
		}
		next := w.writeVotes(time.Now())
		if !next.IsZero() && (w.voteAt.IsZero() || next.Before(w.voteAt)) {
			w.voteAt = next
			voteTimer.Reset(time.Until(next))
		}
	}
}

// takeNews applies what the readers and the receiver queued: breaker
// transitions, names to re-read, and a lost hint's full re-read.
func (w *worker) takeNews() {
	c := w.c
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	if c.rescan {
		// Some news did not fit in the queue; every member still carries
		// its flags, so looking at all of them loses nothing.
		c.rescan = false
		queue = queue[:0:0]
		for m := range c.members {
			queue = append(queue, m)
		}
	}
	type news struct {
		m               *member
		ownOpen, closed bool
		latest          actor.State
	}
	got := make([]news, 0, len(queue))
	for _, m := range queue {
		got = append(got, news{m, m.ownOpen, m.closed, m.latest})
		m.queued, m.ownOpen, m.closed = false, false, false
	}
	hints := make([]string, 0, len(c.hints))
	for name := range c.hints {
		hints = append(hints, name)
	}
	clear(c.hints)
	full := c.fullRead
	c.fullRead = false
	c.mu.Unlock()

	for _, n := range got {
		m := n.m
		m.view = n.latest
		if n.closed {
			m.closePending = true
			w.pending = append(w.pending, m)
			if ns := w.names[m.name]; ns != nil {
				// Withdraw only what Redis may hold.
				ns.want, ns.dirty = false, ns.voted
			}
		}
		if n.ownOpen {
			ns := w.name(m.name)
			ns.want, ns.dirty = true, true
		}
	}
	switch {
	case full:
		w.poll()
	case len(hints) > 0:
		w.read(hints)
	}
}

func (w *worker) name(name string) *nameState {
	ns := w.names[name]
	if ns == nil {
		ns = &nameState{}
		w.names[name] = ns
	}
	return ns
}

// writeVotes runs the vote script for every name whose vote changed and
// whose interval has passed, and returns when the next one is due (zero:
// none waits).
func (w *worker) writeVotes(now time.Time) (next time.Time) {
	c := w.c
	for name, ns := range w.names {
		if !ns.dirty {
			if !ns.voted && !ns.want && !now.Before(ns.next) {
				delete(w.names, name) // nothing left to remember
			}
			continue
		}
		if now.Before(ns.next) {
			if next.IsZero() || ns.next.Before(next) {
				next = ns.next
			}
			continue
		}
		ns.next = now.Add(c.o.poll)
		if err := w.vote(name, ns.want); err != nil {
			// Stays dirty: retried after the interval. A vote that timed
			// out may have been written: withdraw it on a close.
			ns.voted = ns.voted || ns.want
			if next.IsZero() || ns.next.Before(next) {
				next = ns.next
			}
			continue
		}
		ns.dirty = false
		ns.voted = ns.want
	}
	return next
}

func (w *worker) vote(name string, cast bool) error {
	c := w.c
	keys := []string{votesKey(c.o.namespace, name), castKey(c.o.namespace, name)}
	if !c.split {
		keys = append(keys, c.index)
	}
	flag := "0"
	if cast {
		flag = "1"
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.o.timeout)
	defer cancel()
	res, err := voteScript.Run(ctx, c.client, keys, c.o.id, flag, c.o.ttl.Milliseconds(), name, c.channel).Int64Slice()
	if err == nil && len(res) != 4 {
		err = fmt.Errorf("redisbreaker: vote script returned %v", res)
	}
	if err == nil && c.split {
		err = indexScript.Run(ctx, c.client, []string{c.index}, name, res[2], res[3]).Err()
	}
	if !w.answered(err) {
		return err
	}
	c.stats.votes.Add(1)
	w.serverTime(res[0])
	return nil
}

// poll reads the index of voted names, then the votes of each such name
// that has a closed breaker here. Its cost follows the names in trouble, not
// the number of joined breakers.
func (w *worker) poll() {
	c := w.c
	ctx, cancel := context.WithTimeout(c.ctx, c.o.timeout)
	defer cancel()
	res, err := namesScript.Run(ctx, c.client, []string{c.index}).Slice()
	if err == nil && len(res) == 0 {
		err = errors.New("redisbreaker: the names script returned nothing")
	}
	if !w.answered(err) {
		return
	}
	c.stats.polls.Add(1)
	now, _ := res[0].(int64)
	w.serverTime(now)
	names := make([]string, 0, len(res)-1)
	for _, v := range res[1:] {
		if s, ok := v.(string); ok {
			names = append(names, s)
		}
	}
	w.read(names)
}

// read reads the votes of the names that have a closed breaker here
// (pipelined: one round trip) and trips what the quorum says.
func (w *worker) read(names []string) {
	c := w.c
	c.mu.Lock()
	var want []string
	for _, name := range names {
		for _, m := range c.byName[name] {
			if m.view == actor.StateClosed && !m.closePending {
				want = append(want, name)
				break
			}
		}
	}
	c.mu.Unlock()
	if len(want) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.o.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(want))
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range want {
			cmds[i] = readScript.Eval(ctx, p, []string{votesKey(c.o.namespace, name), castKey(c.o.namespace, name)})
		}
		return nil
	})
	if !w.answered(err) {
		return
	}
	for i, name := range want {
		now, casts, ok := parseVotes(cmds[i])
		if !ok {
			continue
		}
		c.stats.reads.Add(1)
		w.serverTime(now)
		w.decide(name, casts)
	}
}

// parseVotes reads readScript's answer: the server's time and the cast
// times of the live votes.
func parseVotes(cmd *redis.Cmd) (now int64, casts []int64, ok bool) {
	res, err := cmd.Slice()
	if err != nil || len(res)%2 != 1 {
		return 0, nil, false
	}
	if now, ok = res[0].(int64); !ok {
		return 0, nil, false
	}
	for i := 2; i < len(res); i += 2 {
		cast, ok := res[i].(int64)
		if !ok {
			return 0, nil, false
		}
		casts = append(casts, cast)
	}
	return now, casts, true
}

// decide trips every closed breaker of name that counts at least a quorum
// of votes cast after its own last close. casts are the live votes' cast
// times, one per instance.
func (w *worker) decide(name string, casts []int64) {
	c := w.c
	c.mu.Lock()
	members := append([]*member(nil), c.byName[name]...)
	c.mu.Unlock()
	for _, m := range members {
		if m.view != actor.StateClosed || m.closePending {
			continue
		}
		n := 0
		for _, cast := range casts {
			// A vote cast before this breaker's last close is what opened
			// it (or older news): it must not re-open a breaker that
			// recovered by its own probe.
			if cast > m.lastClose {
				n++
			}
		}
		if n < c.o.quorum {
			continue
		}
		w.trip(m, n)
	}
}

func (w *worker) trip(m *member, votes int) {
	c := w.c
	m.tripMu.Lock()
	defer m.tripMu.Unlock()
	c.mu.Lock()
	// News the worker has not taken (an opening and an operator's Reset
	// since it read the votes, say) makes its view stale: the votes it
	// counted may predate that close. The news wakes the worker, which
	// decides again once it knows the close's server time.
	stale := m.queued || c.rescan
	c.mu.Unlock()
	if m.left || stale || m.b.State() != actor.StateClosed {
		return
	}
	reason := fmt.Sprintf("redisbreaker: %d instances voted open in cluster %q (quorum %d)", votes, c.o.namespace, c.o.quorum)
	if m.b.Trip(reason) == nil {
		c.stats.trips.Add(1)
		// Open now; its event (External: no vote) will say so again. Until
		// then the poll need not read the name for it.
		m.view = actor.StateOpen
	}
}

// serverTime is the server's clock as a script just read it: every close
// the worker learned of before sending the script happened before it.
func (w *worker) serverTime(now int64) {
	for _, m := range w.pending {
		if m.closePending {
			m.closePending = false
			m.lastClose = now
		}
	}
	w.pending = w.pending[:0]
}

// answered records whether Redis answered an operation, logs the loss and
// the return once each, and asks for a full re-read whenever Redis answers
// after a failure (pub/sub hints sent meanwhile are lost). It reports
// err == nil.
//
// Redis counts as back, for the Info, once it has answered for a whole poll
// interval without a failure: a restarted server's first answers come
// mixed with the client's stale connections and dial back-off, and one
// loss must log one Warn and one Info, not a pair per flicker.
func (w *worker) answered(err error) bool {
	c := w.c
	if err == nil {
		if !c.healthy.Swap(true) && w.failed {
			w.failed = false
			c.readAll()
		}
		if w.lost {
			now := time.Now()
			if w.backSince.IsZero() {
				w.backSince = now
			}
			if now.Sub(w.backSince) >= c.o.poll {
				w.lost = false
				w.backSince = time.Time{}
				c.o.logger.Info("redisbreaker: Redis answers again; breakers share votes",
					"namespace", c.o.namespace, "instance", c.o.id)
			}
		}
		return true
	}
	c.healthy.Store(false)
	if c.ctx.Err() != nil {
		return false // closing: not a loss
	}
	c.stats.errors.Add(1)
	w.failed = true
	w.backSince = time.Time{}
	if !w.lost {
		w.lost = true
		c.o.logger.Warn("redisbreaker: lost Redis; breakers decide alone until it answers",
			"namespace", c.o.namespace, "instance", c.o.id, "error", err)
	}
	return false
}

// receive listens for hints until Close. The PubSub re-subscribes by itself
// after an error; a fresh subscription asks for a full re-read, since hints
// published while it was away are lost (pub/sub is at-most-once).
func (c *Cluster) receive() {
	defer c.wg.Done()
	for {
		msg, err := c.pubsub.ReceiveTimeout(c.ctx, c.o.poll)
		if c.ctx.Err() != nil {
			return
		}
		switch msg := msg.(type) {
		case *redis.Message:
			c.hint(msg.Payload)
		case *redis.Subscription:
			if msg.Kind == "subscribe" {
				c.readAll()
			}
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue // nothing published for a while
		}
		// Redis is down or the connection broke: wait a poll interval
		// before trying again (the worker's poll covers the gap).
		t := time.NewTimer(c.o.poll)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
