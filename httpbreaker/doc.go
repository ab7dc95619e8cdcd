// Package httpbreaker puts circuit breakers on HTTP: a [Transport] for
// clients, with one breaker per backend host, and a [Middleware] for
// servers, with one breaker per route. Both keep their breakers in an
// [actor.Group], reachable through Group(), and end them with Stop().
//
// # Clients
//
// A [Transport] is an http.RoundTripper. Each request is sent under a permit
// of its key's breaker (by default one per scheme, host and port). How a
// round trip counts (see [Classify]): a transport error, a 5xx other than
// 501, a 408 and a 429 are failures; a request whose caller cancelled its
// context is ignored; every other response is a success. Responses are
// returned untouched, failing ones too. While a breaker is open, requests
// to its host are refused at once: nothing is sent, the request body is
// closed, and the error matches actor.ErrOpen (errors.Is) and is an
// *actor.OpenError (errors.As), also through http.Client's *url.Error.
// A 429 or 503 with a Retry-After header that opens a breaker holds it open
// for as long as the server asked, capped by [WithMaxRetryAfter].
//
// # Servers
//
// A [Middleware] wraps handlers. A route whose handler answers 5xx (other
// than 501) or panics trips its own breaker, and while that breaker is open
// the route is answered with 503 and a Retry-After header without calling
// the handler: it sheds its own load and nothing else.
//
// # Where a retry library goes
//
// Outside the breaker: retry(breaker(call)). Each attempt then asks the
// breaker, so an open breaker ends the retries at once instead of feeding a
// failing backend more load, and every attempt is counted. A retry loop
// inside the breaker would count a whole burst of attempts as one outcome
// and keep hammering the backend the breaker is there to protect. Retry on
// errors that are not actor.ErrOpen, or wait for the refusal's RetryAfter().
//
// # Logging
//
// Besides what the breakers log (see package actor), this package logs
// once at Warn when requests start going through unprotected: at the key cap
// ([DefaultMaxBreakers]), and, for the Middleware, when a request has no key.
package httpbreaker
