package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// A backend is a real HTTP server on 127.0.0.1 that follows its script:
// 200 when healthy; during its trouble the script's status (with
// Retry-After if the script says so), and every hangEvery-th call hangs for
// hangDelay first. Every response waits on the request's context, so a
// caller that gives up frees its handler and Shutdown is quick.
type backend struct {
	// Immutable after startBackend.
	url    string // "http://127.0.0.1:port/"
	addr   string // "127.0.0.1:port"
	index  int    // which of the schedule's scripts it follows
	sched  schedule
	timing config // okDelay, failDelay, hangDelay
	server *http.Server
	served chan struct{} // closed when Serve has returned

	// Written by handlers, read by anyone.
	received     [numPhases]atomic.Uint64 // calls that reached the backend, by phase
	troubleCalls atomic.Uint64            // numbers the trouble's calls to pick those that hang
}

// startBackend listens on a free port of 127.0.0.1 and serves script i of
// sched until shutdown.
func startBackend(sched schedule, i int, timing config) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start backend %s: %w", sched.scripts[i].name, err)
	}
	b := &backend{
		url:    "http://" + ln.Addr().String() + "/",
		addr:   ln.Addr().String(),
		index:  i,
		sched:  sched,
		timing: timing,
		served: make(chan struct{}),
	}
	b.server = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(b.served)
		b.server.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	return b, nil
}

// ServeHTTP answers one call according to the phase it arrives in.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc := b.sched.scripts[b.index]
	p := b.sched.phaseAt(b.index, time.Now())
	b.received[p].Add(1)
	if p != phaseTrouble {
		wait(r.Context(), b.timing.okDelay)
		io.WriteString(w, "ok\n")
		return
	}
	delay := b.timing.okDelay
	if sc.status >= 500 {
		delay = b.timing.failDelay // a failing server takes its time to fail
	}
	if sc.hangEvery > 0 && b.troubleCalls.Add(1)%uint64(sc.hangEvery) == 0 {
		delay = b.timing.hangDelay
	}
	wait(r.Context(), delay)
	if sc.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(sc.retryAfter))
	}
	http.Error(w, sc.trouble, sc.status)
}

// totalReceived is the number of calls that reached the backend so far.
func (b *backend) totalReceived() uint64 {
	var n uint64
	for p := range b.received {
		n += b.received[p].Load()
	}
	return n
}

// shutdown stops the server, waiting for running handlers until ctx is done,
// and then for Serve to return.
func (b *backend) shutdown(ctx context.Context) error {
	err := b.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = b.server.Close()
	}
	<-b.served
	return err
}

// wait returns after d or when ctx is done, whichever comes first.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
