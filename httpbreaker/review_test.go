package httpbreaker

import (
	"net/http"
	"testing"

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
