package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// A dependency is a real HTTP server on 127.0.0.1 that follows the schedule:
// 200 when healthy; during the outage 503, with every hangEvery-th call
// hanging for hangDelay first. Every response waits on the request's context,
// so a caller that gives up frees its handler and Shutdown is quick.
type dependency struct {
	// Immutable after startDependency.
	url    string
	sched  schedule
	script config // okDelay, failDelay, hangDelay, hangEvery
	server *http.Server
	served chan struct{} // closed when Serve has returned

	// Written by handlers, read by anyone.
	received    [numPhases]atomic.Uint64 // calls that reached the dependency, by phase
	outageCalls atomic.Uint64            // numbers the outage's calls to pick those that hang
}

// startDependency listens on a free port of 127.0.0.1 and serves until
// shutdown.
func startDependency(sched schedule, script config) (*dependency, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the dependency: %w", err)
	}
	d := &dependency{
		url:    "http://" + ln.Addr().String() + "/",
		sched:  sched,
		script: script,
		served: make(chan struct{}),
	}
	d.server = &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(d.served)
		d.server.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	return d, nil
}

// ServeHTTP answers one call according to the phase it arrives in.
func (d *dependency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := d.sched.phaseAt(time.Now())
	d.received[p].Add(1)
	if p != phaseOutage {
		wait(r.Context(), d.script.okDelay)
		io.WriteString(w, "ok\n")
		return
	}
	delay := d.script.failDelay
	if d.outageCalls.Add(1)%uint64(d.script.hangEvery) == 0 {
		delay = d.script.hangDelay
	}
	wait(r.Context(), delay)
	http.Error(w, "outage", http.StatusServiceUnavailable)
}

// totalReceived is the number of calls that reached the dependency so far.
func (d *dependency) totalReceived() uint64 {
	var n uint64
	for p := range d.received {
		n += d.received[p].Load()
	}
	return n
}

// shutdown stops the server, waiting for running handlers until ctx is done,
// and then for Serve to return.
func (d *dependency) shutdown(ctx context.Context) error {
	err := d.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = d.server.Close()
	}
	<-d.served
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
