package actor

import "time"

// Slow calls (WithSlowCall, CONTRACT semantic 17b) are decided by the
// goroutine that reports, like classification: it compares the breaker
// clock's time at the report with the time of the grant, and a call slower
// than the option's duration is reported as a Failure. Only breakers with the
// option read the clock: once at the grant (stored in the Permit, or a local
// of Call) and once at the report.

// slow reports whether a call started at started is slower than WithSlowCall
// allows, now.
func (b *Breaker) slow(started time.Time) bool {
	return b.m.clock.Since(started) > b.slowCall
}

// slow reports whether p is reported too late to count as anything but a
// Failure.
func (p *Permit) slow() bool {
	return p.b.slowCall > 0 && p.b.slow(p.granted)
}
