package httpbreaker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Transport is an http.RoundTripper with one circuit breaker per key (by
// default per scheme, host and port: see [WithKey]). It sends each request
// through next under a permit of its key's breaker and counts the outcome
// (see [Classify]); it returns every response untouched. When the breaker
// refuses, it sends nothing, closes the request body and returns a nil
// response and the breaker's *actor.OpenError (errors.Is(err,
// actor.ErrOpen)).
//
// The breakers live in an [actor.Group] capped at [DefaultMaxBreakers]
// keys: at the cap, when no idle breaker can make room, a request goes
// through unprotected rather than failing (counted by
// [Transport.Unprotected], logged once at Warn).
//
// A Transport is safe for concurrent use. Make one with [NewTransport]; the
// zero Transport refuses every request with an error. Call [Transport.Stop]
// when done with it.
type Transport struct {
	// Immutable after NewTransport:
	next          http.RoundTripper
	group         *actor.Group[string]
	now           func() time.Time                          // the breakers' clock, for Retry-After dates
	key           func(*http.Request) string                // nil: HostKey through keys
	classify      func(*http.Response, error) actor.Outcome // nil: Classify
	maxRetryAfter time.Duration                             // 0: Retry-After not honoured
	logger        *slog.Logger                              // nil: slog.Default()

	keys        keyCache
	unprotected atomic.Uint64
	warnedFull  atomic.Bool
}

var (
	errZeroTransport = fmt.Errorf("%w: httpbreaker: Transport not made by NewTransport", actor.ErrInvalid)
	errNoURL         = fmt.Errorf("%w: httpbreaker: nil request or URL", actor.ErrInvalid)
)

// NewTransport returns a Transport that sends requests through next;
// a nil next means http.DefaultTransport. Invalid options (nil ones too)
// make it return nil and an error wrapping actor.ErrInvalid.
func NewTransport(next http.RoundTripper, opts ...Option) (*Transport, error) {
	c, err := buildConfig(transportSide, opts)
	if err != nil {
		return nil, err
	}
	g, err := c.newGroup()
	if err != nil {
		return nil, err
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &Transport{
		next:          next,
		group:         g,
		now:           g.Clock().Now, // Retry-After dates are read on the breakers' clock
		key:           c.key,
		classify:      c.classify,
		maxRetryAfter: c.maxRetryAfter,
		logger:        c.logger,
	}, nil
}

// RoundTrip sends req through next under a permit of its key's breaker, as
// the [Transport] doc says. It does not modify req. Its errors: the
// breaker's *actor.OpenError when it refuses; one wrapping
// actor.ErrStopped after [Transport.Stop]; req's context error when the
// context is done before the permit is granted; otherwise next's.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t == nil || t.group == nil {
		closeBody(req)
		return nil, errZeroTransport
	}
	if req == nil || req.URL == nil {
		closeBody(req)
		return nil, errNoURL
	}
	var key string
	if t.key != nil {
		key = t.key(req)
	} else {
		key = t.keys.key(req.URL)
	}
	b, err := t.group.Get(key)
	if err != nil {
		if errors.Is(err, actor.ErrGroupFull) {
			t.unprotectedAt(key)
			return t.next.RoundTrip(req)
		}
		closeBody(req)
		return nil, t.failed(key, err)
	}
	ctx := req.Context()
	p, err := b.Permit(ctx)
	if err != nil {
		closeBody(req)
		if errors.Is(err, actor.ErrStopped) {
			return nil, t.failed(key, err)
		}
		return nil, err // the refusal as it is (callers match it), or ctx's error
	}
	classified := false
	defer func() {
		if !classified {
			p.ReportOutcome(actor.Failure) // next or the classifier panicked: the panic goes on
		}
	}()
	resp, err := t.next.RoundTrip(req)
	var o actor.Outcome
	switch {
	case err != nil && canceled(ctx):
		o = actor.Ignored // the caller gave up: not the backend's fault
	case t.classify != nil:
		if o = t.classify(resp, err); o != actor.Success && o != actor.Ignored {
			o = actor.Failure
		}
	default:
		o = Classify(resp, err)
	}
	classified = true
	p.ReportRetryAfter(o, t.retryAfter(o, resp))
	return resp, err
}

// retryAfter returns the open period a failing resp asks for, capped, or 0.
func (t *Transport) retryAfter(o actor.Outcome, resp *http.Response) time.Duration {
	if o != actor.Failure || resp == nil || t.maxRetryAfter == 0 ||
		(resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0
	}
	return min(parseRetryAfter(resp.Header.Get("Retry-After"), t.now), t.maxRetryAfter)
}

func (t *Transport) failed(key string, err error) error {
	if errors.Is(err, actor.ErrStopped) {
		return fmt.Errorf("httpbreaker: transport stopped: %w", err)
	}
	return fmt.Errorf("httpbreaker: breaker for %q: %w", key, err)
}

func (t *Transport) unprotectedAt(key string) {
	t.unprotected.Add(1)
	if !t.warnedFull.Swap(true) {
		logger(t.logger).Warn("httpbreaker: the transport's breakers are at their cap and none is idle; requests to new keys go through unprotected",
			"key", key, "breakers", t.group.Len())
	}
}

// Unprotected returns how many requests went through without a breaker
// because the key cap was reached.
func (t *Transport) Unprotected() uint64 {
	if t == nil {
		return 0
	}
	return t.unprotected.Load()
}

// CloseIdleConnections calls next's CloseIdleConnections, if it has one.
// http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if t == nil {
		return
	}
	if ci, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// Group returns the group that holds the Transport's breakers, keyed as
// [WithKey] says: to subscribe to their events, read their states, or
// instrument them.
func (t *Transport) Group() *actor.Group[string] {
	if t == nil {
		return nil
	}
	return t.group
}

// Stop stops every breaker of the Transport. Later requests fail with an
// error wrapping actor.ErrStopped, sending nothing. Stop is idempotent; it
// does not close next's idle connections (see
// [Transport.CloseIdleConnections]).
func (t *Transport) Stop() {
	if t != nil && t.group != nil {
		t.group.Stop()
	}
}

func closeBody(req *http.Request) {
	if req != nil && req.Body != nil {
		req.Body.Close()
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.Default()
}
