package httpbreaker_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/httpbreaker"
)

// A client with one breaker per backend host: after three failures in a row
// a host is refused at once, without a request, until its retry timer lets
// a probe through. Other hosts are not affected.
func ExampleTransport() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer backend.Close()

	// README transport begins
	transport, err := httpbreaker.NewTransport(nil, // nil: http.DefaultTransport
		httpbreaker.WithGroupOptions(actor.WithAllowedFails(3), actor.WithRetryTimer(30*time.Second)))
	if err != nil {
		log.Fatal(err)
	}
	defer transport.Stop()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	for i := 1; i <= 4; i++ {
		resp, err := client.Get(backend.URL)
		var refused *actor.OpenError
		switch {
		case errors.As(err, &refused):
			fmt.Printf("call %d: refused, retry in %v\n", i, refused.RetryAfter().Round(time.Second))
		case err != nil:
			fmt.Printf("call %d: %v\n", i, err)
		default:
			io.Copy(io.Discard, resp.Body) // the failing response is returned untouched
			resp.Body.Close()
			fmt.Printf("call %d: %s\n", i, resp.Status)
		}
	}
	// README transport ends
	// Output:
	// call 1: 503 Service Unavailable
	// call 2: 503 Service Unavailable
	// call 3: 503 Service Unavailable
	// call 4: refused, retry in 30s
}

// A server that sheds load route by route: the failing route answers 503
// with Retry-After while its breaker is open, without running its handler;
// the other routes are served as usual.
func ExampleMiddleware() {
	// README middleware begins
	breakers, err := httpbreaker.NewMiddleware(
		httpbreaker.WithGroupOptions(actor.WithAllowedFails(2), actor.WithRetryTimer(10*time.Second)))
	if err != nil {
		log.Fatal(err)
	}
	defer breakers.Stop()

	mux := http.NewServeMux()
	mux.Handle("GET /report", breakers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the database is down", http.StatusInternalServerError)
	})))
	mux.Handle("GET /health", breakers.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	// README middleware ends
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/report", "/report", "/report", "/health"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Println(path, resp.StatusCode, "Retry-After:", ra)
		} else {
			fmt.Println(path, resp.StatusCode)
		}
	}
	srv.Client().CloseIdleConnections()
	// Output:
	// /report 500
	// /report 500
	// /report 503 Retry-After: 10
	// /health 200
}
