package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// The quick start of the README (a test keeps the two the same): guard an
// HTTP dependency, and treat its 5xx answers as failures.
func Example() {
	ctx := context.Background()
	fetchUser := func(ctx context.Context) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users.internal/v1/users/42", nil)
		if err != nil {
			return nil, err
		}
		return http.DefaultClient.Do(req)
	}

	// README quick start begins
	b, err := actor.New(actor.WithName("users"), actor.WithAllowedFails(3), actor.WithRetryTimer(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop()

	healthy := actor.Validate(func(r *http.Response) bool { return r.StatusCode < 500 })
	resp, err := actor.Call(ctx, b, fetchUser, healthy) // fetchUser: func(context.Context) (*http.Response, error)
	if errors.Is(err, actor.ErrOpen) {
		log.Printf("users is failing, serving from cache: %v", err) // refused at once: fetchUser did not run
	}
	// README quick start ends

	if err == nil {
		resp.Body.Close()
	}
}

// Call runs a function under the breaker. Validate turns a result into a
// failure: here, a 5xx response from a dependency that answered.
func ExampleCall() {
	b, err := actor.New(actor.WithName("users"), actor.WithAllowedFails(2))
	if err != nil {
		panic(err)
	}
	defer b.Stop()

	// A stand-in for an HTTP call to a dependency that is down.
	fetch := func(ctx context.Context) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusServiceUnavailable}, nil
	}
	healthy := actor.Validate(func(r *http.Response) bool { return r.StatusCode < 500 })

	for i := 1; i <= 3; i++ {
		resp, err := actor.Call(context.Background(), b, fetch, healthy)
		switch {
		case errors.Is(err, actor.ErrOpen):
			fmt.Printf("call %d: refused fast, breaker %v\n", i, b.State())
		case err != nil:
			fmt.Printf("call %d: error %v\n", i, err)
		default:
			fmt.Printf("call %d: status %d\n", i, resp.StatusCode)
		}
	}
	// Output:
	// call 1: status 503
	// call 2: status 503
	// call 3: refused fast, breaker open
}

// Permit and Report are the two-step form, for code that is not one
// function call: ask first, do the work, then say how it went.
func ExampleBreaker_Permit() {
	b, err := actor.New(actor.WithName("inventory"))
	if err != nil {
		panic(err)
	}
	defer b.Stop()

	p, err := b.Permit(context.Background())
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	workErr := errors.New("connection reset") // the outcome of the work
	fmt.Println("applied:", p.Report(workErr))
	fmt.Println("reported twice:", p.Report(nil))
	fmt.Printf("%+v\n", b.Counts())
	// Output:
	// applied: true
	// reported twice: false
	// {Requests:1 Rejected:0 Successes:0 Failures:1 Ignored:0 ConsecutiveFailures:1}
}

// Subscribe delivers every transition, with its reason.
func ExampleBreaker_Subscribe() {
	mock := clock.NewMock()
	b, err := actor.New(actor.WithName("search"), actor.WithClock(mock),
		actor.WithAllowedFails(1), actor.WithRetryTimer(10*time.Second))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	events, cancel := b.Subscribe()
	defer cancel()

	p, _ := b.Permit(context.Background())
	p.ReportOutcome(actor.Failure)
	mock.Add(10 * time.Second)
	probe, _ := b.Permit(context.Background())
	probe.Report(nil)

	for range 3 {
		ev := <-events
		fmt.Printf("%d %s: %v -> %v (%s)\n", ev.Seq, ev.Breaker, ev.From, ev.To, ev.Reason)
	}
	// Output:
	// 1 search: closed -> open (1 consecutive failure)
	// 2 search: open -> half-open (retry timer elapsed)
	// 3 search: half-open -> closed (probe succeeded)
}

// Test your own code's behaviour with a mock clock: no sleeps. Report
// returns once its effect is visible, and a transition's timer is armed
// before its event is published, so a test can trip the breaker, advance
// the clock past the retry timer and wait for the half-open event.
func Example_testingWithMockClock() {
	mock := clock.NewMock()
	b, err := actor.New(actor.WithClock(mock), actor.WithRetryTimer(30*time.Second))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	events, cancel := b.Subscribe()
	defer cancel()

	failing := func(context.Context) (string, error) { return "", errors.New("timeout") }
	for range 3 {
		_, _ = actor.Call(context.Background(), b, failing)
	}
	fmt.Println("after 3 failures:", (<-events).To)

	_, err = actor.Call(context.Background(), b, failing)
	var open *actor.OpenError
	if errors.As(err, &open) {
		fmt.Println("refused, retry after", open.RetryAfter())
	}

	mock.Add(30 * time.Second)
	fmt.Println("after the retry timer:", (<-events).To)
	// Output:
	// after 3 failures: open
	// refused, retry after 30s
	// after the retry timer: half-open
}

// statusError is an error type a client library might return.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// WithClassifier decides how each error counts: here, a 4xx is the caller's
// mistake and says nothing about the dependency's health.
func ExampleWithClassifier() {
	b, err := actor.New(actor.WithAllowedFails(1), actor.WithClassifier(func(err error) actor.Outcome {
		var se *statusError
		if errors.As(err, &se) && se.code < 500 {
			return actor.Ignored
		}
		return actor.Failure
	}))
	if err != nil {
		panic(err)
	}
	defer b.Stop()

	for _, code := range []int{404, 400, 503} {
		_, err := actor.Call(context.Background(), b, func(context.Context) (int, error) {
			return 0, fmt.Errorf("GET /items: %w", &statusError{code})
		})
		fmt.Printf("%v -> breaker %v\n", err, b.State())
	}
	// Output:
	// GET /items: HTTP 404 -> breaker closed
	// GET /items: HTTP 400 -> breaker closed
	// GET /items: HTTP 503 -> breaker open
}

// WithAllowedErrors lists errors that are expected answers, not failures
// (the seed's allowed_exceptions): they are ignored, and logged at Info.
func ExampleWithAllowedErrors() {
	errNotFound := errors.New("not found")
	b, err := actor.New(actor.WithAllowedFails(2), actor.WithAllowedErrors(errNotFound),
		actor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	defer b.Stop()

	lookup := func(context.Context) (string, error) { return "", fmt.Errorf("user 42: %w", errNotFound) }
	for range 5 {
		_, _ = actor.Call(context.Background(), b, lookup)
	}
	fmt.Printf("%v after %d ignored errors\n", b.State(), b.Counts().Ignored)
	// Output:
	// closed after 5 ignored errors
}
