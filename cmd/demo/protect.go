package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A hostEvent is one transition of one backend's breaker. It has the shape
// of actor.GroupEvent[string]: Key is the transport's key for the backend.
type hostEvent struct {
	Key string
	actor.Event
}

// breakers is the breaker side of the story: the RoundTripper that keeps one
// breaker per backend, and what the view reads from it.
type breakers struct {
	transport *interimTransport
	events    <-chan hostEvent // every transition of every backend's breaker; closed after stop
	stop      func()           // stops the breakers; events closes once they are delivered
}

// breaker returns the breaker of a key, or nil.
func (br *breakers) breaker(key string) *actor.Breaker {
	return br.transport.byKey[key]
}

// hostKey is the breaker key the transport uses for u: scheme://host:port.
func hostKey(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// newBreakers wraps next in a transport with one breaker per backend host,
// configured by cfg's breaker flags.
//
// TODO(issue 12): this is a stand-in until httpbreaker lands on main; it
// becomes httpbreaker.NewTransport(next, WithGroupOptions(...),
// WithMaxRetryAfter(cfg.maxRetryAfter)) and its Group's Subscribe.
func newBreakers(next http.RoundTripper, cfg config, keys []string) (*breakers, error) {
	opts := []actor.Option{
		actor.WithAllowedFails(cfg.allowedFails),
		actor.WithRetryTimer(cfg.retryTimer),
		// The view prints every transition; the library's log lines would repeat them.
		actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))),
	}
	if cfg.probeTimeout > 0 {
		opts = append(opts, actor.WithProbeTimeout(cfg.probeTimeout))
	}
	t := &interimTransport{next: next, maxRetryAfter: cfg.maxRetryAfter, byKey: map[string]*actor.Breaker{}}
	stop := func() {
		for _, b := range t.byKey {
			b.Stop()
		}
	}
	events := make(chan hostEvent)
	var forwarders sync.WaitGroup
	for _, key := range keys {
		b, err := actor.New(append(opts, actor.WithName(key))...)
		if err != nil {
			stop()
			forwarders.Wait()
			return nil, err
		}
		t.byKey[key] = b
		sub, _ := b.Subscribe() // closed by Stop
		forwarders.Add(1)
		go func() {
			defer forwarders.Done()
			for ev := range sub {
				events <- hostEvent{key, ev}
			}
		}()
	}
	go func() {
		forwarders.Wait()
		close(events)
	}()
	return &breakers{
		transport: t,
		events:    events,
		stop:      stop,
	}, nil
}

// interimTransport stands in for httpbreaker.Transport (see newBreakers).
type interimTransport struct {
	next          http.RoundTripper
	maxRetryAfter time.Duration
	byKey         map[string]*actor.Breaker // immutable after newBreakers
}

func (t *interimTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.byKey[hostKey(req.URL)]
	if b == nil {
		return t.next.RoundTrip(req)
	}
	p, err := b.Permit(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	switch {
	case err != nil:
		p.Report(err)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		p.ReportRetryAfter(actor.Failure, min(time.Duration(secs)*time.Second, t.maxRetryAfter))
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented, resp.StatusCode == http.StatusRequestTimeout:
		p.ReportOutcome(actor.Failure)
	default:
		p.ReportOutcome(actor.Success)
	}
	return resp, err
}
