package main

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/httpbreaker"
)

// A hostEvent is one transition of one backend's breaker; Key is the
// transport's key for the backend (httpbreaker.HostKey of its URL).
type hostEvent = actor.GroupEvent[string]

// breakers is the breaker side of the story: the RoundTripper that keeps one
// breaker per backend, and what the view reads from it.
type breakers struct {
	transport *httpbreaker.Transport
	events    <-chan hostEvent // every transition of every backend's breaker; closed by stop
	stop      func()           // stops the breakers and closes events after the transitions it holds
}

// newBreakers wraps next in an httpbreaker.Transport, which keeps one
// breaker per backend host:port, configured by cfg's breaker flags.
func newBreakers(next http.RoundTripper, cfg config) (*breakers, error) {
	perBreaker := []actor.GroupOption{
		actor.WithAllowedFails(cfg.allowedFails),
		actor.WithRetryTimer(cfg.retryTimer),
	}
	if cfg.probeTimeout > 0 {
		perBreaker = append(perBreaker, actor.WithProbeTimeout(cfg.probeTimeout))
	}
	t, err := httpbreaker.NewTransport(next,
		httpbreaker.WithGroupOptions(perBreaker...),
		httpbreaker.WithMaxRetryAfter(cfg.maxRetryAfter),
		// The view prints every transition; the library's log lines would repeat them.
		httpbreaker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))),
	)
	if err != nil {
		return nil, err
	}
	events, cancel := t.Group().Subscribe()
	return &breakers{
		transport: t,
		events:    events,
		stop: func() {
			t.Stop()
			cancel() // closes events; what it buffered can still be received
		},
	}, nil
}

// breaker returns the breaker of a key, or nil after stop.
func (br *breakers) breaker(key string) *actor.Breaker {
	b, err := br.transport.Group().Get(key)
	if err != nil {
		return nil
	}
	return b
}
