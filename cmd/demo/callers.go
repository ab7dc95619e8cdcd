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

// newHTTPTransport is the plain transport each side's client sends with,
// sized to keep one connection per worker and backend alive.
func newHTTPTransport(workers, backends int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        workers * backends,
		MaxIdleConnsPerHost: workers,
		IdleConnTimeout:     30 * time.Second,
	}
}

// get GETs url with client and returns the status code, having read the
// body to the end so that the connection can be reused.
func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// statusOK says which answers a caller is happy with. 5xx and 429 are the
// backend failing or asking to be left alone.
func statusOK(code int) bool { return code < 400 }

// tally counts calls. All fields are atomic: workers add, the view reads.
type tally struct {
	sent    atomic.Uint64 // calls started
	refused atomic.Uint64 // calls the breaker turned away without sending them
	failed  atomic.Uint64 // calls answered 5xx or 429, or that failed or timed out
	ok      atomic.Uint64 // calls answered below 400
}

// totals is a snapshot of a tally.
type totals struct {
	sent, refused, failed, ok uint64
}

func (t *tally) snapshot() totals {
	return totals{t.sent.Load(), t.refused.Load(), t.failed.Load(), t.ok.Load()}
}

// hostTally is one client's count of its calls to one backend.
type hostTally struct {
	all            tally
	byPhase        [numPhases]tally
	firstRecovered atomic.Int64 // when a call first succeeded after the trouble, as time since the start; 0: not yet
}

// callers are the workers of one client: with the breakers or without them.
type callers struct {
	// Immutable after startCallers.
	client  *http.Client
	urls    []string // one per backend, in the schedule's order
	sched   schedule
	timeout time.Duration // each call's own deadline

	// Atomic: written by the workers, read by the view.
	turn  atomic.Uint64 // picks the backend of the next call, round-robin
	hosts []hostTally   // one per backend

	// latencies[w][i][p] is written by worker w when it returns, read after
	// the workers are done: how long each call to backend i that started in
	// phase p kept its caller waiting.
	latencies [][][numPhases][]time.Duration
}

// startCallers starts cfg.workers workers that together make cfg.rate calls
// per second, spread round-robin over urls, until ctx is done. A worker
// still busy with a slow call misses its turn, as a real caller would: a
// backend that hangs slows the client's calls to every backend. wg is done
// when all workers have returned.
func startCallers(ctx context.Context, wg *sync.WaitGroup, cfg config, sched schedule, client *http.Client, urls []string) *callers {
	c := &callers{
		client:    client,
		urls:      urls,
		sched:     sched,
		timeout:   cfg.callTimeout,
		hosts:     make([]hostTally, len(urls)),
		latencies: make([][][numPhases][]time.Duration, cfg.workers),
	}
	pace := time.NewTicker(time.Second / time.Duration(cfg.rate))
	var workers sync.WaitGroup
	workers.Add(cfg.workers)
	for w := range cfg.workers {
		go func() {
			defer workers.Done()
			c.latencies[w] = c.work(ctx, pace.C)
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
// latencies of the calls it made, by backend and phase.
func (c *callers) work(ctx context.Context, ticks <-chan time.Time) [][numPhases][]time.Duration {
	latencies := make([][numPhases][]time.Duration, len(c.urls))
	for {
		select {
		case <-ctx.Done():
			return latencies
		case <-ticks:
		}
		i := int((c.turn.Add(1) - 1) % uint64(len(c.urls)))
		h := &c.hosts[i]
		began := time.Now()
		p := c.sched.phaseAt(i, began)
		h.all.sent.Add(1)
		h.byPhase[p].sent.Add(1)

		callCtx, cancel := context.WithTimeout(ctx, c.timeout)
		code, err := get(callCtx, c.client, c.urls[i])
		cancel()
		took := time.Since(began)
		if err != nil && ctx.Err() != nil {
			continue // the story is over: this call was cut short, not failed
		}

		o := classify(code, err)
		h.all.add(o)
		h.byPhase[p].add(o)
		if o == succeeded && p == phaseRecovery {
			h.firstRecovered.CompareAndSwap(0, int64(time.Since(c.sched.start)))
		}
		latencies[i][p] = append(latencies[i][p], took)
	}
}

// An outcome is what one call came to, seen from the caller.
type outcome int

const (
	refused   outcome = iota // the breaker turned the call away: the backend never saw it
	failed                   // 5xx, 429, timeout, or any other error
	succeeded                // an answer below 400
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

// latenciesSorted returns the latencies of the calls to backend i that
// started in phase p, in increasing order. Call it only after the workers
// are done.
func (c *callers) latenciesSorted(i int, p phase) []time.Duration {
	var all []time.Duration
	for _, l := range c.latencies {
		if l != nil {
			all = append(all, l[i][p]...)
		}
	}
	slices.Sort(all)
	return all
}
