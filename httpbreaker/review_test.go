package httpbreaker

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// A classifier that panics counts as a Failure for its permit and the panic
// goes on: no permit is left outstanding (a probe would be held until its
// timeout), as for the actor package's own classifiers (semantic 9).
func TestTransportClassifierPanics(t *testing.T) {
	tr, _ := newTransport(t, newMock(), roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	}), WithClassifier(func(*http.Response, error) actor.Outcome { panic("classifier") }))
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	func() {
		defer func() {
			if v := recover(); v != "classifier" {
				t.Fatalf("recovered %v, want the classifier's panic", v)
			}
		}()
		tr.RoundTrip(req)
	}()
	assertCounted(t, breakerOf(t, tr.Group(), "http://example.test:80"), actor.Failure)
}

// A middleware around a ServeMux that is itself mounted on an outer route
// keys on the inner mux's patterns: one breaker per route, not one for the
// whole subtree the outer pattern covers.
func TestMiddlewareInnerMuxPatternWins(t *testing.T) {
	m := newMiddleware(t, newMock())
	failing, healthy := newStatusHandler(500), newStatusHandler(200)
	inner := http.NewServeMux()
	inner.Handle("GET /api/fail", failing)
	inner.Handle("GET /api/ok", healthy)
	outer := http.NewServeMux()
	outer.Handle("/api/", m.Wrap(inner))
	srv, client := serve(t, outer)
	for range 2 {
		get(t, client, srv.URL+"/api/fail")
	}
	if status, _, _ := get(t, client, srv.URL+"/api/ok"); status != 200 {
		t.Fatalf("the healthy route answered %d: shed with the failing one", status)
	}
	breakerOf(t, m.Group(), "GET /api/fail")
	breakerOf(t, m.Group(), "GET /api/ok")
}

// plainWriter can do nothing but write: no Flush, no Hijack.
type plainWriter struct{ rec *httptest.ResponseRecorder }

func (w plainWriter) Header() http.Header         { return w.rec.Header() }
func (w plainWriter) Write(p []byte) (int, error) { return w.rec.Write(p) }
func (w plainWriter) WriteHeader(code int)        { w.rec.WriteHeader(code) }

// http.ResponseController's Flush through the wrapper reports what the
// wrapped writer can do: http.ErrNotSupported when it cannot flush.
func TestMiddlewareFlushErrorReachesResponseController(t *testing.T) {
	m := newMiddleware(t, newMock())
	var err error
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err = http.NewResponseController(w).Flush()
	}))
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Pattern = "GET /x"
	h.ServeHTTP(plainWriter{httptest.NewRecorder()}, r)
	if !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("ResponseController.Flush through the wrapper: %v, want http.ErrNotSupported", err)
	}
}

// Only the Failure that opens the breaker sets the open period: a
// Retry-After on an earlier failure is not remembered.
func TestTransportRetryAfterOnlyFromTheOpeningFailure(t *testing.T) {
	srv := newBackend(t)
	mock := newMock()
	_, client := newTransport(t, mock, srv.Client().Transport)
	get(t, client, srv.URL+"/?status=503&retry-after=120")
	get(t, client, srv.URL+"/?status=500")
	_, _, err := get(t, client, srv.URL)
	var oe *actor.OpenError
	if !errors.As(err, &oe) || !oe.Until.Equal(mock.Now().Add(30*time.Second)) {
		t.Fatalf("after a 503 with Retry-After then a plain 500: %v; want open for the retry timer (30s)", err)
	}
}
