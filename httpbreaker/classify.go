package httpbreaker

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Classify is the Transport's default classification of a round trip: a
// transport error (err != nil) is a Failure; a status of 500-599 other than
// 501 Not Implemented (the server does not support what was asked, which
// will not heal), 408 Request Timeout and 429 Too Many Requests is a
// Failure; any other status is a Success. It reads only resp.StatusCode.
// A request cancelled by its caller is Ignored before Classify is asked.
func Classify(resp *http.Response, err error) actor.Outcome {
	if err != nil || resp == nil {
		return actor.Failure
	}
	return statusOutcome(resp.StatusCode, true)
}

// statusOutcome classifies a status code; the client side also counts 408
// and 429, which a server's own handler answers for its clients' sake.
func statusOutcome(code int, client bool) actor.Outcome {
	switch {
	case code >= 500 && code <= 599 && code != http.StatusNotImplemented:
		return actor.Failure
	case client && (code == http.StatusRequestTimeout || code == http.StatusTooManyRequests):
		return actor.Failure
	}
	return actor.Success
}

// canceled reports whether ctx is done because its caller cancelled it (not
// because a deadline passed: a dependency too slow for it is failing).
func canceled(ctx context.Context) bool {
	return ctx.Err() == context.Canceled
}

// parseRetryAfter reads a Retry-After value (RFC 9110, section 10.2.3):
// delta-seconds, or an HTTP-date read against now. It returns 0 for 0, a
// date not after now, and anything it cannot parse: the retry timer then
// applies. A delay too large for a time.Duration comes back as the largest
// one, for the caller to cap.
func parseRetryAfter(v string, now func() time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		var secs int64
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0
			}
			const maxSecs = math.MaxInt64 / int64(time.Second)
			if digit := int64(c - '0'); secs <= (maxSecs-digit)/10 {
				secs = secs*10 + digit
			} else {
				return math.MaxInt64
			}
		}
		return time.Duration(secs) * time.Second
	}
	date, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(date.Sub(now()), 0)
}

// retryAfterSeconds is the Retry-After value for a refusal that lasts d: whole
// seconds, rounded up, at least 1 (0 would invite an immediate retry).
func retryAfterSeconds(d time.Duration) int64 {
	secs := int64((d + time.Second - 1) / time.Second)
	if d > math.MaxInt64-time.Second {
		secs = math.MaxInt64 / int64(time.Second)
	}
	return max(secs, 1)
}
