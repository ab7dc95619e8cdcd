// Package bench measures the actor breaker side by side with the popular Go
// circuit breakers: sony/gobreaker v2, failsafe-go, mercari/go-circuitbreaker
// and eapache/go-resiliency.
//
// It is its own module so that the library's go.mod never pulls the peers.
// Every implementation runs the same scenarios with the same protected
// operation (work) and an equivalent configuration:
//
//   - ClosedCall: a call through the breaker whose operation succeeds.
//   - ClosedCallParallel: the same from 8×GOMAXPROCS goroutines (b.RunParallel).
//   - TwoStep: ask for a permit, run the operation, report its outcome
//     (actor Permit+Report, gobreaker TwoStepCircuitBreaker Allow+done,
//     failsafe-go TryAcquirePermit+RecordError, mercari Ready+Done;
//     eapache has no two-step API).
//   - OpenRejection: the breaker is open (tripped once before the timer
//     starts, with a one-hour open period) and refuses the call.
//   - Mixed, MixedParallel: every 10th call of each goroutine fails; the trip
//     threshold is never reached, so the breaker stays closed.
//   - Reactivation: a failure, then a success, on one of 1,024 breakers in
//     turn: for the actor, two activations of a sleeping breaker.
//   - Idle: memory and idle CPU of 100,000 idle breakers; Idle1M: of
//     1,000,000 (actor and gobreaker); IdleAfterTrip: of 1,000,000 actor
//     breakers that have been through one open, half-open, closed cycle;
//     IdleOpen: of 100,000 open breakers, their retry timers armed.
//
// Configuration, the same for every implementation: trip after
// tripAfter consecutive failures (1 for OpenRejection), stay open for an hour,
// never clear counts on a timer. See newActor, newGobreaker, ... for how each
// library spells that. Run ./run for the full comparison; CI runs each
// benchmark once with -benchtime=1x.
package bench
