package main

import (
	"fmt"
	"io"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// textView is the live view for people: a line per tick with the numbers of
// that tick, a line per phase change and per breaker transition, and a
// summary table at the end.
type textView struct {
	w     io.Writer
	color bool // colour breaker states (ANSI)

	// The totals at the previous tick, to print each tick's own numbers.
	lastWith, lastWithout progress
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// state formats a breaker state padded to width, coloured if the view is.
func (v *textView) state(s actor.State, width int) string {
	text := fmt.Sprintf("%-*s", width, s)
	if !v.color {
		return text
	}
	color := ansiGreen
	switch s {
	case actor.StateOpen:
		color = ansiRed
	case actor.StateHalfOpen:
		color = ansiYellow
	}
	return color + text + ansiReset
}

func (v *textView) bold(s string) string {
	if !v.color {
		return s
	}
	return ansiBold + s + ansiReset
}

func (v *textView) begin(cfg config, with, without side) {
	probeTimeout := cfg.probeTimeout
	if probeTimeout == 0 {
		probeTimeout = cfg.retryTimer
	}
	outageEnd := cfg.outageStart + cfg.outageLength
	fmt.Fprintf(v.w, `%s the same callers meet the same failing dependency twice:
through a circuit breaker, and without one.

  dependency  healthy until %v, outage until %v, healthy again until %v
              outage: 503 after %v, and every %s call hangs
              two copies: %s (with breaker), %s (without)
  callers     %d workers on each side, %d calls/s in all; a call gives up after %v
  breaker     opens after %d failures in a row; %v later lets one probe call through
              (probe timeout %v): a 200 closes it, a failure opens it again

Each line counts the calls of the last %v.
  sent     calls the callers started (one still waiting on a hanging call misses its turn)
  reached  calls the dependency got        refused  calls the breaker answered at once
  failed   503s, and calls with no answer in time

                ------------- with breaker --------------   --- without breaker ---
   time  phase     state      sent  reached  refused  failed    sent  reached  failed
`,
		v.bold("circuitbreaker demo:"),
		cfg.outageStart, outageEnd, cfg.duration,
		cfg.failDelay, ordinal(cfg.hangEvery),
		with.dep.url, without.dep.url,
		cfg.workers, cfg.rate, cfg.callTimeout,
		cfg.allowedFails, cfg.retryTimer, probeTimeout,
		cfg.tick)
}

func (v *textView) phase(elapsed time.Duration, p phase) {
	what := "the dependency is healthy"
	switch p {
	case phaseOutage:
		what = "the dependency now answers 503, and some calls hang"
	case phaseRecovery:
		what = "the dependency is healthy again"
	}
	fmt.Fprintf(v.w, "%s  %s\n", seconds(elapsed), v.bold(fmt.Sprintf("=== %s: %s", p, what)))
}

func (v *textView) event(elapsed time.Duration, ev actor.Event) {
	fmt.Fprintf(v.w, "%s  >>> breaker %s -> %s: %s\n",
		seconds(elapsed), v.state(ev.From, 0), v.state(ev.To, 0), ev.Reason)
}

func (v *textView) tick(elapsed time.Duration, p phase, state actor.State, with, without progress) {
	dw, dwo := with.minus(v.lastWith), without.minus(v.lastWithout)
	v.lastWith, v.lastWithout = with, without
	fmt.Fprintf(v.w, "%s  %-8s  %s %5d  %7d  %7d  %6d   %5d  %7d  %6d\n",
		seconds(elapsed), p, v.state(state, 9),
		dw.sent, dw.reached, dw.refused, dw.failed,
		dwo.sent, dwo.reached, dwo.failed)
}

// minus returns the numbers added since earlier.
func (p progress) minus(earlier progress) progress {
	return progress{
		totals: totals{
			sent:    p.sent - earlier.sent,
			refused: p.refused - earlier.refused,
			failed:  p.failed - earlier.failed,
			ok:      p.ok - earlier.ok,
		},
		reached: p.reached - earlier.reached,
	}
}

func (v *textView) end(s summary) {
	fmt.Fprintln(v.w)
	if s.interrupted {
		fmt.Fprintf(v.w, "Interrupted after %.2fs: the numbers so far.\n", s.elapsed.Seconds())
	}
	fmt.Fprintf(v.w, "%s\n", v.bold("Summary"))
	row := func(label, with, without string) {
		fmt.Fprintf(v.w, "  %-40s  %12s  %15s\n", label, with, without)
	}
	w, wo := s.with, s.without
	row("", "with breaker", "without breaker")
	fmt.Fprintf(v.w, "  during the outage (%v to %v)\n", s.outageStart, s.outageStart+s.outageLength)
	row("  calls that reached the dependency", count(w.outageReached), count(wo.outageReached))
	row("  calls refused at once", count(w.outageRefused), count(wo.outageRefused))
	row("  median time a caller waited", latency(w.outageLatency.n, w.outageLatency.p50), latency(wo.outageLatency.n, wo.outageLatency.p50))
	row("  p99 time a caller waited", latency(w.outageLatency.n, w.outageLatency.p99), latency(wo.outageLatency.n, wo.outageLatency.p99))
	fmt.Fprintln(v.w, "  reaction times")
	took := func(d *time.Duration) string { return since(d, s.interrupted) }
	row("  from outage start to breaker open", took(w.outageToOpen), "-")
	row("  from recovery to breaker closed", took(w.recoveryToClosed), "-")
	row("  from recovery to a caller's first 200", took(w.recoveryToOK), took(wo.recoveryToOK))

	if wo.outageReached > 0 && w.outageReached <= wo.outageReached {
		spared := 100 * float64(wo.outageReached-w.outageReached) / float64(wo.outageReached)
		fmt.Fprintf(v.w, "\nWith the breaker, the failing dependency got %.0f%% fewer calls", spared)
		if w.outageLatency.n > 0 && wo.outageLatency.n > 0 {
			fmt.Fprintf(v.w, ",\nand callers waited %v instead of %v (median)",
				roundLatency(w.outageLatency.p50), roundLatency(wo.outageLatency.p50))
		}
		fmt.Fprintln(v.w, ".")
	}
	if w.recoveryToOK != nil && wo.recoveryToOK != nil {
		late := max(*w.recoveryToOK-*wo.recoveryToOK, 0)
		fmt.Fprintf(v.w, "Its price: after the recovery, callers waited %s longer for their first 200.\n", took(&late))
	}
}

// seconds formats an elapsed time for the live view: "  4.25s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%6.2fs", d.Seconds())
}

// since formats a time between two moments of the story: "never" if the
// second one never came, "not yet" if the story was cut short before it.
func since(d *time.Duration, interrupted bool) string {
	switch {
	case d == nil && interrupted:
		return "not yet"
	case d == nil:
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func count(n uint64) string { return fmt.Sprint(n) }

// latency formats a percentile of n measured calls.
func latency(n int, d time.Duration) string {
	if n == 0 {
		return "-"
	}
	return roundLatency(d).String()
}

// roundLatency keeps about three significant digits.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Millisecond)
}

// ordinal spells n as an ordinal: 1st, 2nd, 3rd, 4th, ...
func ordinal(n int) string {
	suffix := "th"
	switch n % 10 {
	case 1:
		suffix = "st"
	case 2:
		suffix = "nd"
	case 3:
		suffix = "rd"
	}
	if n%100 >= 11 && n%100 <= 13 {
		suffix = "th"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
