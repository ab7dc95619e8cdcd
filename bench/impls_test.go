package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	eapache "github.com/eapache/go-resiliency/breaker"
	"github.com/failsafe-go/failsafe-go"
	failsafecb "github.com/failsafe-go/failsafe-go/circuitbreaker"
	mercari "github.com/mercari/go-circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// The protected operation, the same for every implementation.

var errWork = errors.New("work failed")

// work is the operation every breaker protects. It is not inlined, so each
// implementation pays for one real call, and nothing around it can be folded
// away.
//
//go:noinline
func work(fail bool) (int, error) {
	if fail {
		return 0, errWork
	}
	return 1, nil
}

// Adapters from work to each library's function type. Each is a package-level
// function (no closure, no allocation) that calls work once.

func actorOK(context.Context) (int, error)   { return work(false) }
func actorFail(context.Context) (int, error) { return work(true) }
func plainOK() (int, error)                  { return work(false) } // gobreaker and failsafe-go
func plainFail() (int, error)                { return work(true) }
func mcOK() (any, error)                     { return work(false) } // 1 fits runtime's static small ints: no alloc
func mcFail() (any, error)                   { return work(true) }
func eaOK() error                            { _, err := work(false); return err }
func eaFail() error                          { _, err := work(true); return err }

// Configuration shared by all implementations.
const (
	// tripAfter consecutive failures open a breaker in the closed-state
	// scenarios. With every 10th call failing a run of consecutive failures is
	// 1 long per goroutine (a few under RunParallel), so 100 keeps every
	// breaker closed; each benchmark checks that it did.
	tripAfter = 100
	// openFor is the retry timer / open timeout: long enough that a tripped
	// breaker stays open for the whole OpenRejection benchmark.
	openFor = time.Hour
)

// quiet is a logger that logs nothing: no level is enabled.
var quiet = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.Level(math.MaxInt)}))

// newActor: WithAllowedFails(n) is "n consecutive failures"; the logger
// discards so that the trip in OpenRejection prints nothing into the
// benchmark output (Warn on open; counted failures log at Debug, which the
// default logger would not print either). Real clock, as in production.
func newActor(tb testing.TB, fails int) *actor.Breaker {
	tb.Helper()
	b, err := actor.New(
		actor.WithAllowedFails(fails),
		actor.WithRetryTimer(openFor),
		actor.WithLogger(quiet),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Stop)
	return b
}

// gobreakerSettings: ReadyToTrip on ConsecutiveFailures (the default trips
// after more than 5); Interval 0 never clears the counts while closed;
// Timeout is the open period.
func gobreakerSettings(fails int) gobreaker.Settings {
	return gobreaker.Settings{
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(fails) },
	}
}

func newGobreaker(fails int) *gobreaker.CircuitBreaker[int] {
	return gobreaker.NewCircuitBreaker[int](gobreakerSettings(fails))
}

func newGobreakerTwoStep(fails int) *gobreaker.TwoStepCircuitBreaker[int] {
	return gobreaker.NewTwoStepCircuitBreaker[int](gobreakerSettings(fails))
}

// newFailsafe: WithFailureThreshold(n) is count based, n failures out of the
// last n executions, which is n consecutive failures. WithDelay is the open
// period.
func newFailsafe(fails int) failsafecb.CircuitBreaker[int] {
	return failsafecb.NewBuilder[int]().
		WithFailureThreshold(uint(fails)).
		WithDelay(openFor).
		Build()
}

// newFailsafeExecutor builds the executor once, outside the timed loop: the
// cheapest way to use failsafe-go (failsafe.Get(fn, cb) builds one per call).
func newFailsafeExecutor(cb failsafecb.CircuitBreaker[int]) failsafe.Executor[int] {
	return failsafe.With[int](cb)
}

// newMercari: consecutive-failure trip function; WithCounterResetInterval(-1)
// turns off the counter-reset ticker (the default, 1s, starts a ticker
// goroutine per closed breaker); WithOpenTimeout is the open period.
func newMercari(fails int) *mercari.CircuitBreaker {
	return mercari.New(
		mercari.WithTripFunc(mercari.NewTripFuncConsecutiveFailures(int64(fails))),
		mercari.WithCounterResetInterval(-1),
		mercari.WithOpenTimeout(openFor),
	)
}

// eapacheNeverTrips is eapache's error threshold in the closed-state
// scenarios. eapache has no consecutive-failure mode: it opens after
// errorThreshold errors that come without an error-free gap of `timeout`
// (successes do not reset the count), and the same timeout is its open
// period. So it gets an unreachable threshold and never trips; its
// per-failure work (lock, time.Now, increment, compare) does not depend on the
// threshold. In OpenRejection it gets 1, like the others.
const eapacheNeverTrips = math.MaxInt

func newEapache(errorThreshold int) *eapache.Breaker {
	return eapache.New(errorThreshold, 1, openFor)
}
