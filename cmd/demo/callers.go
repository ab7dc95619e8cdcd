package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A callFunc makes one call to the dependency and returns its status code.
type callFunc func(ctx context.Context) (int, error)

// newHTTPCall returns a callFunc that GETs url with a client of its own, and
// a function that closes the client's idle connections once the calls are over.
func newHTTPCall(url string, workers int) (callFunc, func()) {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers, // one kept-alive connection per worker
		IdleConnTimeout:     30 * time.Second,
	}
	client := &http.Client{Transport: transport} // each call's context bounds it
	call := func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		// Read the body to the end so the connection can be reused.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	return call, transport.CloseIdleConnections
}

// statusOK tells the breaker which answers count as failures: a 5xx is the
// dependency failing, anything else is the dependency working.
func statusOK(code int) bool { return code < 500 }

// throughBreaker returns a callFunc that makes call through b. A 5xx answer
// counts as a failure for the breaker; the caller still gets it unchanged.
func throughBreaker(b *actor.Breaker, call callFunc) callFunc {
	return func(ctx context.Context) (int, error) {
		return actor.Call(ctx, b, call, actor.Validate(statusOK))
	}
}

// tally counts calls. All fields are atomic: workers add, the view reads.
type tally struct {
	sent    atomic.Uint64 // calls started
	refused atomic.Uint64 // calls the breaker turned away without calling
	failed  atomic.Uint64 // calls answered 5xx, or that failed or timed out
	ok      atomic.Uint64 // calls answered below 500
}

// totals is a snapshot of a tally.
type totals struct {
	sent, refused, failed, ok uint64
}

func (t *tally) snapshot() totals {
	return totals{t.sent.Load(), t.refused.Load(), t.failed.Load(), t.ok.Load()}
}

// callers are the workers of one run: with the breaker or without it.
type callers struct {
	// Immutable after startCallers.
	call    callFunc
	sched   schedule
	timeout time.Duration // each call's own deadline

	// Atomic: written by the workers, read by the view.
	all            tally
	byPhase        [numPhases]tally
	firstRecovered atomic.Int64 // when a call first succeeded after the outage, as time since the start; 0: not yet

	// outageLatencies[i] is written by worker i when it returns, read after
	// the workers are done: how long each call that started during the
	// outage kept its caller waiting.
	outageLatencies [][]time.Duration
}

// startCallers starts cfg.workers workers that together make cfg.rate calls
// per second until ctx is done. A worker still busy with a slow call misses
// its turn, as a real caller would. wg is done when all workers have returned.
func startCallers(ctx context.Context, wg *sync.WaitGroup, cfg config, sched schedule, call callFunc) *callers {
	c := &callers{
		call:            call,
		sched:           sched,
		timeout:         cfg.callTimeout,
		outageLatencies: make([][]time.Duration, cfg.workers),
	}
	pace := time.NewTicker(time.Second / time.Duration(cfg.rate))
	var workers sync.WaitGroup
	workers.Add(cfg.workers)
	for i := range cfg.workers {
		go func() {
			defer workers.Done()
			c.outageLatencies[i] = c.work(ctx, pace.C)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		workers.Wait()
		pace.Stop()
	}()
	return c
}

// work makes one call per tick received until ctx is done and returns the
// latencies of the calls it started during the outage.
func (c *callers) work(ctx context.Context, ticks <-chan time.Time) []time.Duration {
	var latencies []time.Duration
	for {
		select {
		case <-ctx.Done():
			return latencies
		case <-ticks:
		}
		began := time.Now()
		p := c.sched.phaseAt(began)
		c.all.sent.Add(1)
		c.byPhase[p].sent.Add(1)

		callCtx, cancel := context.WithTimeout(ctx, c.timeout)
		code, err := c.call(callCtx)
		cancel()
		took := time.Since(began)
		if err != nil && ctx.Err() != nil {
			continue // the story is over: this call was cut short, not failed
		}

		o := classify(code, err)
		c.all.add(o)
		c.byPhase[p].add(o)
		if o == succeeded && p == phaseRecovery {
			c.firstRecovered.CompareAndSwap(0, int64(time.Since(c.sched.start)))
		}
		if p == phaseOutage {
			latencies = append(latencies, took)
		}
	}
}

// An outcome is what one call came to, seen from the caller.
type outcome int

const (
	refused   outcome = iota // the breaker turned the call away: the dependency never saw it
	failed                   // 5xx, timeout, or any other error
	succeeded                // an answer below 500
)

func classify(code int, err error) outcome {
	switch {
	case errors.Is(err, actor.ErrOpen):
		return refused
	case err != nil || !statusOK(code):
		return failed
	}
	return succeeded
}

func (t *tally) add(o outcome) {
	switch o {
	case refused:
		t.refused.Add(1)
	case failed:
		t.failed.Add(1)
	case succeeded:
		t.ok.Add(1)
	}
}

// outageLatenciesSorted returns all outage latencies in increasing order.
// Call it only after the workers are done.
func (c *callers) outageLatenciesSorted() []time.Duration {
	var all []time.Duration
	for _, l := range c.outageLatencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all
}
