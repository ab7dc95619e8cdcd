package httpbreaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func newMiddleware(t *testing.T, mock *clock.Mock, opts ...Option) *Middleware {
	t.Helper()
	opts = append([]Option{WithGroupOptions(actor.WithClock(mock), actor.WithAllowedFails(2), actor.WithRetryTimer(30*time.Second))}, opts...)
	m, err := NewMiddleware(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// statusHandler answers with *status and counts its calls.
type statusHandler struct {
	status atomic.Int64
	calls  atomic.Int64
}

func newStatusHandler(status int) *statusHandler {
	h := &statusHandler{}
	h.status.Store(int64(status))
	return h
}

func (h *statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	w.WriteHeader(int(h.status.Load()))
	io.WriteString(w, "answered")
}

// serve runs srv and returns a client for it; both end at cleanup.
func serve(t *testing.T, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

// TestMiddlewareKeyedOnPattern: two routes, one failing; the failing one
// sheds its own load with 503 and Retry-After, the other is untouched.
func TestMiddlewareKeyedOnPattern(t *testing.T) {
	for _, wrapMux := range []bool{false, true} {
		name := "inside the routes"
		if wrapMux {
			name = "around the mux"
		}
		t.Run(name, func(t *testing.T) {
			m := newMiddleware(t, newMock())
			failing, healthy := newStatusHandler(500), newStatusHandler(200)
			mux := http.NewServeMux()
			var h http.Handler = mux
			if wrapMux {
				mux.Handle("GET /fail/{id}", failing)
				mux.Handle("GET /ok", healthy)
				h = m.Wrap(mux)
			} else {
				mux.Handle("GET /fail/{id}", m.Wrap(failing))
				mux.Handle("GET /ok", m.Wrap(healthy))
			}
			srv, client := serve(t, h)
			for i := 0; i < 2; i++ {
				if status, _, _ := get(t, client, srv.URL+"/fail/"+string(rune('a'+i))); status != 500 {
					t.Fatalf("call %d: status %d, want the handler's 500", i+1, status)
				}
			}
			resp, err := client.Get(srv.URL + "/fail/c")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" {
				t.Fatalf("while open: %d, Retry-After %q; want 503 and 30", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if n := failing.calls.Load(); n != 2 {
				t.Fatalf("the failing handler ran %d times, want 2: not while open", n)
			}
			for i := 0; i < 3; i++ {
				if status, body, _ := get(t, client, srv.URL+"/ok"); status != 200 || body != "answered" {
					t.Fatalf("the healthy route: %d %q", status, body)
				}
			}
			if s := breakerOf(t, m.Group(), "GET /fail/{id}").State(); s != actor.StateOpen {
				t.Fatalf("the failing route's breaker is %v", s)
			}
			if c := breakerOf(t, m.Group(), "GET /ok").Counts(); c.Successes != 3 {
				t.Fatalf("the healthy route's counts: %+v", c)
			}
			if n := m.Group().Len(); n != 2 {
				t.Fatalf("%d breakers, want one per pattern", n)
			}
		})
	}
}

// TestMiddlewareMuxWithoutRoute: a request the mux has no route for is the
// mux's to answer (404): no breaker, no warning.
func TestMiddlewareMuxWithoutRoute(t *testing.T) {
	logs := &records{}
	m := newMiddleware(t, newMock(), WithLogger(slog.New(logs)))
	mux := http.NewServeMux()
	mux.Handle("GET /ok", newStatusHandler(200))
	srv, client := serve(t, m.Wrap(mux))
	if status, _, _ := get(t, client, srv.URL+"/nothing/here"); status != 404 {
		t.Fatalf("status %d, want the mux's 404", status)
	}
	if n := m.Group().Len(); n != 0 || len(logs.at(slog.LevelWarn)) != 0 || m.Unprotected() != 0 {
		t.Fatalf("a request without a route made %d breakers, %d warnings, %d unprotected", n, len(logs.at(slog.LevelWarn)), m.Unprotected())
	}
}

func TestMiddlewareStatuses(t *testing.T) {
	rows := []struct {
		status int
		want   actor.Outcome
	}{
		{200, actor.Success}, {204, actor.Success}, {404, actor.Success}, {408, actor.Success},
		{429, actor.Success}, {500, actor.Failure}, {501, actor.Success}, {502, actor.Failure},
		{503, actor.Failure}, {599, actor.Failure},
	}
	for _, row := range rows {
		m := newMiddleware(t, newMock(), WithKey(func(*http.Request) string { return "k" }))
		rec := httptest.NewRecorder()
		m.Wrap(newStatusHandler(row.status)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != row.status {
			t.Fatalf("recorded %d, want %d", rec.Code, row.status)
		}
		assertCounted(t, breakerOf(t, m.Group(), "k"), row.want)
	}
	// A handler that writes nothing answers 200.
	m := newMiddleware(t, newMock(), WithKey(func(*http.Request) string { return "k" }))
	m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	assertCounted(t, breakerOf(t, m.Group(), "k"), actor.Success)
	// An informational status is not the answer.
	m = newMiddleware(t, newMock(), WithKey(func(*http.Request) string { return "k" }))
	m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusBadGateway)
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	assertCounted(t, breakerOf(t, m.Group(), "k"), actor.Failure)
}

func TestMiddlewarePanics(t *testing.T) {
	for _, tc := range []struct {
		value any
		want  actor.Outcome
	}{
		{"boom", actor.Failure},
		{errors.New("boom"), actor.Failure},
		{http.ErrAbortHandler, actor.Ignored},
	} {
		m := newMiddleware(t, newMock(), WithKey(func(*http.Request) string { return "k" }))
		h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(200) // what it wrote does not matter: it did not finish
			panic(tc.value)
		}))
		func() {
			defer func() {
				if v := recover(); v != tc.value {
					t.Fatalf("recovered %v, want %v: the panic must go on", v, tc.value)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}()
		assertCounted(t, breakerOf(t, m.Group(), "k"), tc.want)
	}
}

// TestMiddlewarePanicThroughServer: the server sees the panic (and closes
// the connection), and the route's breaker counts it.
func TestMiddlewarePanicThroughServer(t *testing.T) {
	m := newMiddleware(t, newMock())
	mux := http.NewServeMux()
	mux.Handle("GET /panic", m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = slogDiscard() // the server logs the panic; keep the test output clean
	srv.Start()
	defer srv.Close()
	if _, err := srv.Client().Get(srv.URL + "/panic"); err == nil {
		t.Fatal("the client got an answer from a panicking handler")
	}
	srv.Client().CloseIdleConnections()
	assertCounted(t, breakerOf(t, m.Group(), "GET /panic"), actor.Failure)
}

// TestMiddlewareClientGone: the client went away, then the handler wrote a
// 500: ignored.
func TestMiddlewareClientGone(t *testing.T) {
	m := newMiddleware(t, newMock())
	arrived := make(chan struct{}, 1) // buffered: the handler never waits for the test
	finished := make(chan struct{}, 1)
	wrapped := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wrapped.ServeHTTP(w, r)
		finished <- struct{}{}
	}))
	srv, client := serve(t, mux)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
	errc := make(chan error, 1) // buffered: the goroutine never waits for the test
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, arrived, "the request to reach the handler")
	cancel()
	waitFor(t, errc, "the client to give up")
	waitFor(t, finished, "the handler to finish")
	assertCounted(t, breakerOf(t, m.Group(), "GET /slow"), actor.Ignored)
}

// TestMiddlewareRetryAfterRoundsUp: the header is whole seconds, rounded
// up, at least 1.
func TestMiddlewareRetryAfterRoundsUp(t *testing.T) {
	mock := newMock()
	m := newMiddleware(t, mock, WithKey(func(*http.Request) string { return "k" }),
		WithGroupOptions(actor.WithRetryTimer(1500*time.Millisecond)))
	h := m.Wrap(newStatusHandler(503))
	serveOnce := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec
	}
	serveOnce()
	serveOnce()
	if rec := serveOnce(); rec.Code != 503 || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("open for 1.5s: %d, Retry-After %q; want 503 and 2", rec.Code, rec.Header().Get("Retry-After"))
	}
	mock.Add(1400 * time.Millisecond)
	if rec := serveOnce(); rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("0.1s left: Retry-After %q, want 1", rec.Header().Get("Retry-After"))
	}
}

// TestMiddlewareNoKey: a handler wrapped outside any mux, with no WithKey,
// passes through unprotected, warned once.
func TestMiddlewareNoKey(t *testing.T) {
	logs := &records{}
	m := newMiddleware(t, newMock(), WithLogger(slog.New(logs)))
	h := newStatusHandler(500)
	srv, client := serve(t, m.Wrap(h))
	for i := 0; i < 4; i++ {
		if status, _, _ := get(t, client, srv.URL+"/any/path"); status != 500 {
			t.Fatalf("call %d: %d, want the handler's own 500 every time", i+1, status)
		}
	}
	if h.calls.Load() != 4 || m.Unprotected() != 4 || m.Group().Len() != 0 {
		t.Fatalf("calls %d, unprotected %d, breakers %d; want 4, 4, 0", h.calls.Load(), m.Unprotected(), m.Group().Len())
	}
	if w := logs.at(slog.LevelWarn); len(w) != 1 {
		t.Fatalf("Warn records %q, want one", w)
	}
	// WithKey returning "" is no key too.
	m2 := newMiddleware(t, newMock(), WithLogger(slog.New(logs)), WithKey(func(*http.Request) string { return "" }))
	m2.Wrap(h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if m2.Unprotected() != 1 {
		t.Fatal("an empty key was not let through unprotected")
	}
}

func TestMiddlewareKeyCap(t *testing.T) {
	logs := &records{}
	m := newMiddleware(t, newMock(), WithGroupOptions(actor.WithMaxBreakers(1)), WithLogger(slog.New(logs)))
	failing, other := newStatusHandler(500), newStatusHandler(500)
	mux := http.NewServeMux()
	mux.Handle("/a", m.Wrap(failing))
	mux.Handle("/b", m.Wrap(other))
	srv, client := serve(t, mux)
	get(t, client, srv.URL+"/a")
	get(t, client, srv.URL+"/a") // /a's breaker opens: it is never dropped
	for i := 0; i < 3; i++ {
		get(t, client, srv.URL+"/b")
	}
	if other.calls.Load() != 3 || m.Unprotected() != 3 {
		t.Fatalf("/b ran %d times, %d unprotected; want 3, 3", other.calls.Load(), m.Unprotected())
	}
	var warns []string
	for _, msg := range logs.at(slog.LevelWarn) {
		if strings.HasPrefix(msg, "httpbreaker:") {
			warns = append(warns, msg)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("Warn records from httpbreaker: %q, want one", warns)
	}
}

func TestMiddlewareCustomKey(t *testing.T) {
	m := newMiddleware(t, newMock(), WithKey(func(r *http.Request) string { return r.Header.Get("X-Route") }))
	h := newStatusHandler(500)
	wrapped := m.Wrap(h)
	send := func(route string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Route", route)
		wrapped.ServeHTTP(rec, req)
		return rec.Code
	}
	send("a")
	send("a")
	if code := send("a"); code != 503 {
		t.Fatalf("route a after two failures: %d, want 503", code)
	}
	if code := send("b"); code != 500 {
		t.Fatalf("route b: %d, want the handler's 500", code)
	}
}

func TestMiddlewareStop(t *testing.T) {
	m := newMiddleware(t, newMock(), WithKey(func(*http.Request) string { return "k" }))
	h := newStatusHandler(200)
	m.Stop()
	m.Stop() // idempotent
	rec := httptest.NewRecorder()
	m.Wrap(h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || h.calls.Load() != 1 {
		t.Fatalf("after Stop: %d, %d calls; want the handler to answer", rec.Code, h.calls.Load())
	}
	var zero Middleware
	zero.Wrap(h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if h.calls.Load() != 2 {
		t.Fatal("a zero Middleware did not let the request through")
	}
}

// TestMiddlewareWriterKeepsItsPowers: Flush, Hijack and the
// ResponseController reach the server's writer through the wrapper.
func TestMiddlewareWriterKeepsItsPowers(t *testing.T) {
	m := newMiddleware(t, newMock())
	mux := http.NewServeMux()
	mux.Handle("GET /flush", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the writer is not an http.Flusher")
		}
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
			t.Error("the writer has no Unwrap")
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		io.WriteString(w, "part one;")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
	})))
	mux.Handle("GET /hijack", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		buf.Flush()
	})))
	mux.Handle("GET /copy", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, strings.NewReader("copied")) // through ReadFrom
	})))
	// A hijacked response reaches the client before the handler returns and
	// the middleware reports: wait for the handler to finish.
	finished := make(chan struct{}, 1) // buffered: the server never waits for the test
	srv, client := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		finished <- struct{}{}
	}))
	if status, body, err := get(t, client, srv.URL+"/flush"); err != nil || status != 200 || body != "part one;part two" {
		t.Fatalf("/flush: %d %q %v", status, body, err)
	}
	waitFor(t, finished, "the flushing handler to finish")
	if status, body, err := get(t, client, srv.URL+"/hijack"); err != nil || status != 200 || body != "hijacked" {
		t.Fatalf("/hijack: %d %q %v", status, body, err)
	}
	waitFor(t, finished, "the hijacking handler to finish")
	if status, body, err := get(t, client, srv.URL+"/copy"); err != nil || status != 200 || body != "copied" {
		t.Fatalf("/copy: %d %q %v", status, body, err)
	}
	waitFor(t, finished, "the copying handler to finish")
	for _, key := range []string{"GET /flush", "GET /hijack", "GET /copy"} {
		assertCounted(t, breakerOf(t, m.Group(), key), actor.Success)
	}
	// Hijack on a writer that cannot: the ResponseController's error.
	sw := &statusWriter{w: httptest.NewRecorder()}
	if _, _, err := sw.Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("Hijack on a recorder: %v, want http.ErrNotSupported", err)
	}
}
