package httpbreaker

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Middleware sheds a server's load route by route: one circuit breaker per
// route pattern, so a failing handler trips its own breaker and nothing
// else. Wrap handlers with [Middleware.Wrap].
//
// The key of a request is, in this order: what [WithKey] returns, when
// given; when the wrapped handler is itself an *http.ServeMux
// (m.Wrap(mux)), the pattern the mux will route r to (a request the mux has
// no route for, which it answers with 404 or a redirect, passes through),
// even when that mux is mounted on a route of another one (its pattern is
// the narrower); or r.Pattern, when the wrapped handler is registered on a
// ServeMux (mux.Handle(pattern, m.Wrap(h))). A request with no key, or a new key at the key
// cap ([DefaultMaxBreakers]), passes through unprotected, counted by
// [Middleware.Unprotected] and logged once at Warn. It is never keyed on its
// raw path: paths are unbounded.
//
// A handler's 5xx answer other than 501, and a panic (which goes on to the
// server), count as failures, except a panic with http.ErrAbortHandler,
// which is ignored; a request whose client went away (r.Context() cancelled)
// is ignored whatever the handler answered; everything else is a success.
// While a route's breaker refuses, its requests are answered with 503
// Service Unavailable and a Retry-After header (the refusal's RetryAfter in
// whole seconds, rounded up, at least 1) without calling the handler.
//
// Make one with [NewMiddleware]; a zero Middleware lets every request
// through unprotected. Call [Middleware.Stop] when done with it; after
// Stop, requests pass through unprotected.
type Middleware struct {
	// Immutable after NewMiddleware:
	group  *actor.Group[string]
	key    func(*http.Request) string // nil: the route pattern
	logger *slog.Logger               // nil: slog.Default()

	unprotected atomic.Uint64
	warnedNoKey atomic.Bool
	warnedFull  atomic.Bool
}

// NewMiddleware returns a Middleware. Invalid options (nil ones too, and
// ones that apply only to NewTransport, WithClassifier and
// WithMaxRetryAfter) make it return nil and an error wrapping
// actor.ErrInvalid.
func NewMiddleware(opts ...Option) (*Middleware, error) {
	c, err := buildConfig(middlewareSide, opts)
	if err != nil {
		return nil, err
	}
	g, err := c.newGroup()
	if err != nil {
		return nil, err
	}
	return &Middleware{group: g, key: c.key, logger: c.logger}, nil
}

// Wrap returns next guarded by m: the func(http.Handler) http.Handler
// shape. A nil next is http.DefaultServeMux, as for http.Server.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	mux, _ := next.(*http.ServeMux)
	return &handler{m: m, next: next, mux: mux}
}

type handler struct {
	m    *Middleware
	next http.Handler
	mux  *http.ServeMux // next, when it is a ServeMux: it tells the pattern
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	if m == nil || m.group == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	key, routed := h.keyOf(r)
	if key == "" {
		if !routed {
			m.noKey(r)
		}
		h.next.ServeHTTP(w, r)
		return
	}
	b, err := m.group.Get(key)
	if err != nil {
		if errors.Is(err, actor.ErrGroupFull) {
			m.full(key)
		}
		// ErrStopped, or per-key options that fail: serve unprotected.
		h.next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	p, err := b.Permit(ctx)
	if err != nil {
		if oe, ok := err.(*actor.OpenError); ok { // as Permit returns it; no errors.As, which would allocate
			refuse(w, oe)
			return
		}
		// Stopped, or the client already went away: serve it unprotected.
		h.next.ServeHTTP(w, r)
		return
	}

	sw := writers.Get().(*statusWriter)
	sw.w, sw.status = w, 0
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked (or called runtime.Goexit). Count it and let
		// the panic go on to the server; sw is not reused, as the handler
		// did not finish with it.
		v := recover()
		if v == http.ErrAbortHandler {
			p.ReportOutcome(actor.Ignored) // the handler's way to abort a response on purpose
		} else {
			p.ReportOutcome(actor.Failure)
		}
		if v != nil {
			panic(v)
		}
	}()
	h.next.ServeHTTP(sw, r)
	finished = true
	status := sw.status
	sw.w = nil
	writers.Put(sw)

	o := statusOutcome(status, false)
	if canceled(ctx) {
		o = actor.Ignored // the client went away: the handler's answer says nothing
	}
	p.ReportOutcome(o)
}

// keyOf returns r's key; routed is true when next is a ServeMux that has no
// route for r and will answer it itself (404, redirect), so a missing key is
// not a configuration to warn about.
func (h *handler) keyOf(r *http.Request) (key string, routed bool) {
	switch {
	case h.m.key != nil:
		return h.m.key(r), false
	case h.mux != nil:
		// Before r.Pattern: an outer mux's pattern (m.Wrap(inner) mounted
		// at "/api/") would put every route of the inner mux on one breaker.
		_, pattern := h.mux.Handler(r)
		return pattern, true
	case r.Pattern != "":
		return r.Pattern, false
	}
	return "", false
}

// refuse answers for a breaker that refused: 503 with Retry-After.
func refuse(w http.ResponseWriter, oe *actor.OpenError) {
	w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(oe.RetryAfter()), 10))
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

func (m *Middleware) noKey(r *http.Request) {
	m.unprotected.Add(1)
	if !m.warnedNoKey.Swap(true) {
		logger(m.logger).Warn("httpbreaker: a request has no key, so it goes through unprotected; "+
			"wrap handlers registered on a ServeMux, wrap the ServeMux itself, or give WithKey",
			"method", r.Method) // never the raw path: it may carry ids or secrets, and paths are unbounded
	}
}

func (m *Middleware) full(key string) {
	m.unprotected.Add(1)
	if !m.warnedFull.Swap(true) {
		logger(m.logger).Warn("httpbreaker: the middleware's breakers are at their cap and none is idle; requests to new keys go through unprotected",
			"key", key, "breakers", m.group.Len())
	}
}

// Unprotected returns how many requests went through without a breaker:
// with no key, or at the key cap.
func (m *Middleware) Unprotected() uint64 {
	if m == nil {
		return 0
	}
	return m.unprotected.Load()
}

// Group returns the group that holds the Middleware's breakers, keyed by
// route pattern (or as [WithKey] says).
func (m *Middleware) Group() *actor.Group[string] {
	if m == nil {
		return nil
	}
	return m.group
}

// Stop stops every breaker of the Middleware; requests then pass through
// unprotected. Stop is idempotent.
func (m *Middleware) Stop() {
	if m != nil && m.group != nil {
		m.group.Stop()
	}
}
