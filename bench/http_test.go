package bench

import (
	"net/http"
	"testing"

	failsafecb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/httpbreaker"
)

// BenchmarkHTTPRoundTrip: one request through a breaker RoundTripper whose
// next returns a canned 200 (no network), for a host that already has its
// breaker: what the breaker adds to a round trip.
//
//   - impl=bare: next itself, the baseline.
//   - impl=actor: httpbreaker.Transport, one breaker per host.
//   - impl=failsafe: failsafehttp.NewRoundTripper with one circuit breaker
//     (failsafe-go has no per-host breakers) that counts the same statuses
//     as httpbreaker.Classify.
//
// Run: cd bench && go test -run '^$' -bench HTTP -benchmem -count 6
func BenchmarkHTTPRoundTrip(b *testing.B) {
	canned := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}}
	next := roundTripFunc(func(*http.Request) (*http.Response, error) { return canned, nil })
	req, err := http.NewRequest(http.MethodGet, "http://backend.example:8080/users/1", nil)
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, rt http.RoundTripper) {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(resp, err)
		}
	}
	b.Run("impl=bare", func(b *testing.B) {
		start(b)
		for i := 0; i < b.N; i++ {
			check(b, next)
		}
	})
	b.Run("impl=actor", func(b *testing.B) {
		tr, err := httpbreaker.NewTransport(next, httpbreaker.WithLogger(quiet), httpbreaker.WithGroupOptions(
			actor.WithAllowedFails(tripAfter), actor.WithRetryTimer(openFor)))
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Stop()
		check(b, tr) // the host has its breaker from now on
		start(b)
		for i := 0; i < b.N; i++ {
			check(b, tr)
		}
	})
	b.Run("impl=failsafe", func(b *testing.B) {
		cb := failsafecb.NewBuilder[*http.Response]().
			HandleIf(func(resp *http.Response, err error) bool {
				return httpbreaker.Classify(resp, err) == actor.Failure
			}).
			WithFailureThreshold(tripAfter).
			WithDelay(openFor).
			Build()
		rt := failsafehttp.NewRoundTripper(next, cb)
		check(b, rt)
		start(b)
		for i := 0; i < b.N; i++ {
			check(b, rt)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
