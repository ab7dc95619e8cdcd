package httpbreaker

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// epoch is where the tests' mock clocks start: a real date, so that
// Retry-After dates are ordinary ones.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newMock() *clock.Mock {
	m := clock.NewMock()
	m.Set(epoch)
	return m
}

// backend is an httptest server that answers with the status in the
// "status" query parameter (200 by default) and a Retry-After header from
// "retry-after", and counts the requests that reached it.
type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		status := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		if ra := r.URL.Query().Get("retry-after"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(status)
		io.WriteString(w, "body of "+strconv.Itoa(status))
	}))
	t.Cleanup(b.Close)
	return b
}

// newTransport makes a Transport over srv's client transport with the
// breakers on mock, stopped (and idle connections closed) at cleanup.
func newTransport(t *testing.T, mock *clock.Mock, next http.RoundTripper, opts ...Option) (*Transport, *http.Client) {
	t.Helper()
	opts = append([]Option{WithGroupOptions(actor.WithClock(mock), actor.WithAllowedFails(2), actor.WithRetryTimer(30*time.Second))}, opts...)
	tr, err := NewTransport(next, opts...)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		tr.Stop()
	})
	return tr, client
}

// get sends a GET and returns the status and body, or the error.
func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of %s: %v", url, err)
	}
	return resp.StatusCode, string(body), nil
}

// breakerOf returns the group's breaker for key, failing if there is none.
func breakerOf(t *testing.T, g *actor.Group[string], key string) *actor.Breaker {
	t.Helper()
	var found *actor.Breaker
	g.Range(func(k string, b *actor.Breaker) bool {
		if k == key {
			found = b
			return false
		}
		return true
	})
	if found == nil {
		var keys []string
		g.Range(func(k string, _ *actor.Breaker) bool { keys = append(keys, k); return true })
		t.Fatalf("no breaker for %q; keys: %q", key, keys)
	}
	return found
}

// closeRecorder is a request body that records that it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

// records is a slog handler that keeps every record.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// at returns the messages logged at level.
func (h *records) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msgs []string
	for _, r := range h.recs {
		if r.Level == level {
			msgs = append(msgs, r.Message)
		}
	}
	return msgs
}

// waitFor receives from c, failing the test after 10 s of real time.
func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// slogDiscard is a *log.Logger that drops everything, for http.Server's
// ErrorLog.
func slogDiscard() *log.Logger {
	return slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
}
