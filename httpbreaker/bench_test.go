package httpbreaker

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The overhead targets: RoundTrip over a next that returns a canned
// response, for a host that has its breaker, and the middleware over the
// bare handler, on the closed path. Compare "bare" with "breaker" in each:
//
//	go test -run '^$' -bench . -benchmem ./httpbreaker

var canned = &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}}

func cannedNext(*http.Request) (*http.Response, error) { return canned, nil }

func BenchmarkRoundTrip(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "http://backend.example:8080/users/1", nil)
	req.RequestURI = ""
	next := roundTripFunc(cannedNext)
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := next.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("breaker", func(b *testing.B) {
		tr, err := NewTransport(next)
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Stop()
		tr.RoundTrip(req) // the host has its breaker from now on
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("breaker/parallel", func(b *testing.B) {
		tr, err := NewTransport(next)
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Stop()
		tr.RoundTrip(req)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}

func BenchmarkMiddleware(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	})
	w := discardWriter{h: http.Header{}}
	req := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	req.Pattern = "GET /users/{id}" // as a ServeMux route sets it
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bare.ServeHTTP(w, req)
		}
	})
	b.Run("breaker", func(b *testing.B) {
		m, err := NewMiddleware()
		if err != nil {
			b.Fatal(err)
		}
		defer m.Stop()
		h := m.Wrap(bare)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
	b.Run("breaker/parallel", func(b *testing.B) {
		m, err := NewMiddleware()
		if err != nil {
			b.Fatal(err)
		}
		defer m.Stop()
		h := m.Wrap(bare)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.ServeHTTP(w, req)
			}
		})
	})
	// Around a ServeMux the middleware asks the mux for the pattern, and the
	// mux routes again: the cost of not wrapping each route.
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", bare)
	plain := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	b.Run("mux/bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mux.ServeHTTP(w, plain)
		}
	})
	b.Run("mux/breaker", func(b *testing.B) {
		m, err := NewMiddleware(WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Stop()
		h := m.Wrap(mux)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, plain)
		}
	})
}
