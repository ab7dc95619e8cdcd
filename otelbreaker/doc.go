// Package otelbreaker reports circuit breakers to OpenTelemetry metrics.
//
// [InstrumentBreaker] follows one [actor.Breaker]; [InstrumentGroup] follows
// every breaker of an [actor.Group], those made later included. Both register
// three instruments on a meter named [ScopeName] (the instrumentation scope
// is this package's import path, as in the otelhttp and otelgrpc contrib
// packages):
//
//	circuitbreaker.state        Int64ObservableGauge: 0 closed, 1 half-open, 2 open, 3 forced-open, 4 disabled
//	circuitbreaker.calls        Int64ObservableCounter by circuitbreaker.outcome: success, failure, ignored, rejected
//	circuitbreaker.transitions  Int64Counter by circuitbreaker.from and circuitbreaker.to (state names)
//
// Every data point carries circuitbreaker.name, the breaker's [actor.Breaker.Name].
//
// The gauge and the calls counter are observed: a callback reads
// [actor.Breaker.State] and [actor.Breaker.Counts] when the metrics are
// collected, so an instrumented breaker costs nothing more per call. The
// transitions counter is fed by one goroutine that receives the breaker's (or
// group's) events; the stop function returned by the Instrument functions
// unregisters the callback, ends that goroutine and waits for it.
//
// Through OpenTelemetry's Prometheus exporter the instruments appear as
// circuitbreaker_state, circuitbreaker_calls_total and
// circuitbreaker_transitions_total (see the package example).
package otelbreaker
