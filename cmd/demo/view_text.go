package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// textView is the live view for people: a block per tick with the numbers
// of that tick (a line per backend), a line per phase change and per breaker
// transition, and a summary table and its conclusions at the end.
type textView struct {
	w     io.Writer
	color bool // colour breaker states (ANSI)

	sched    schedule    // set by begin
	openedAt []time.Time // by backend: when its breaker last opened

	// The totals at the previous tick, by backend, to print each tick's own numbers.
	lastWith, lastWithout []progress
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

func (v *textView) begin(cfg config, sched schedule, with, without side) {
	v.sched = sched
	v.openedAt = make([]time.Time, len(sched.scripts))
	v.lastWith = make([]progress, len(sched.scripts))
	v.lastWithout = make([]progress, len(sched.scripts))
	probeTimeout := cfg.probeTimeout
	if probeTimeout == 0 {
		probeTimeout = cfg.retryTimer
	}
	retryAfter := fmt.Sprintf("for what Retry-After says when the answer has one (at most %v), else %v", cfg.maxRetryAfter, cfg.retryTimer)
	if cfg.maxRetryAfter == 0 {
		retryAfter = fmt.Sprintf("for %v (Retry-After is ignored)", cfg.retryTimer)
	}
	fmt.Fprintf(v.w, "%s one HTTP client with a circuit breaker per backend\n"+
		"(httpbreaker.Transport) and a plain client call the same three backends.\n\n",
		v.bold("circuitbreaker demo:"))
	var ports [2][]string
	for i, sc := range sched.scripts {
		label := "backends"
		if i > 0 {
			label = ""
		}
		when := ""
		if sc.troubled() {
			when = fmt.Sprintf("%s from %v to %v: ", sc.trouble, sc.start, sc.end())
		}
		fmt.Fprintf(v.w, "  %-8s  %-8s  %s%s\n", label, sc.name, when, sc.describe())
		ports[0] = append(ports[0], port(with.backends[i].addr))
		ports[1] = append(ports[1], port(without.backends[i].addr))
	}
	fmt.Fprintf(v.w, "            two copies of each on 127.0.0.1, ports %s (with breakers) and %s (plain)\n",
		strings.Join(ports[0], ", "), strings.Join(ports[1], ", "))
	fmt.Fprintf(v.w, `  callers   %d workers per client, %d calls/s in all, taking the backends in turn;
            a call gives up after %v
  breakers  one per backend: opens after %d failures in a row (5xx, 429, no answer in time),
            stays open %s,
            then lets one probe call through (probe timeout %v): a 200 closes it, a failure opens it again

Each block counts the calls of the last %v, a line per backend.
  sent     calls the client started (a worker still waiting on a hanging call misses its turn)
  reached  calls the backend got             refused  calls the breaker answered at once
  failed   5xx and 429 answers, and calls with no answer in time

                              ------------- with breakers -------------   -- without breakers ---
   time  backend   phase      state      sent  reached  refused  failed    sent  reached  failed
`,
		cfg.workers, cfg.rate, cfg.callTimeout,
		cfg.allowedFails, retryAfter, probeTimeout,
		cfg.tick)
}

func (v *textView) phase(elapsed time.Duration, backend int, p phase) {
	sc := v.sched.scripts[backend]
	what := "healthy again"
	if p == phaseTrouble {
		what = sc.describe()
	}
	fmt.Fprintf(v.w, "%s  %s\n", seconds(elapsed), v.bold(fmt.Sprintf("=== %s: %s: %s", sc.name, sc.phaseName(p), what)))
}

func (v *textView) event(elapsed time.Duration, backend int, ev hostEvent) {
	var was string
	if ev.From == actor.StateOpen && !v.openedAt[backend].IsZero() {
		was = fmt.Sprintf(" (open %.2fs)", ev.At.Sub(v.openedAt[backend]).Seconds())
	}
	if ev.To == actor.StateOpen {
		v.openedAt[backend] = ev.At
	}
	fmt.Fprintf(v.w, "%s  >>> %-8s  %s -> %s: %s%s\n",
		seconds(elapsed), v.sched.scripts[backend].name, v.state(ev.From, 0), v.state(ev.To, 0), ev.Reason, was)
}

func (v *textView) tick(elapsed time.Duration, hosts []hostProgress) {
	for i, h := range hosts {
		dw, dwo := h.with.minus(v.lastWith[i]), h.without.minus(v.lastWithout[i])
		v.lastWith[i], v.lastWithout[i] = h.with, h.without
		at := strings.Repeat(" ", len(seconds(elapsed)))
		if i == 0 {
			at = seconds(elapsed)
		}
		sc := v.sched.scripts[i]
		fmt.Fprintf(v.w, "%s  %-8s  %-10s %s %5d  %7d  %7d  %6d   %5d  %7d  %6d\n",
			at, sc.name, sc.phaseName(h.phase), v.state(h.state, 9),
			dw.sent, dw.reached, dw.refused, dw.failed,
			dwo.sent, dwo.reached, dwo.failed)
	}
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
	row := func(label, with, without string) {
		fmt.Fprintf(v.w, "  %-44s  %13s  %16s\n", label, with, without)
	}
	took := func(d *time.Duration) string { return since(d, s.interrupted) }
	fmt.Fprintf(v.w, "%-46s  %13s  %16s\n", v.bold("Summary"), "with breakers", "without breakers")
	for _, h := range s.hosts {
		sc, w, wo := h.script, h.with, h.without
		if !sc.troubled() {
			fmt.Fprintf(v.w, "  %s: %s\n", sc.name, sc.describe())
			row("  calls that reached it", count(w.reached), count(wo.reached))
			row("  calls refused at once", count(w.refused), count(wo.refused))
			row("  times its breaker opened", count(uint64(w.opened)), "-")
			row("  median time a caller waited", latency(w.latency.n, w.latency.p50), latency(wo.latency.n, wo.latency.p50))
			row("  p99 time a caller waited", latency(w.latency.n, w.latency.p99), latency(wo.latency.n, wo.latency.p99))
			continue
		}
		fmt.Fprintf(v.w, "  %s: %s from %v to %v (%s)\n", sc.name, sc.trouble, sc.start, sc.end(), sc.describe())
		row("  calls that reached it during the "+sc.trouble, count(w.troubleReached), count(wo.troubleReached))
		row("  calls refused at once", count(w.troubleRefused), count(wo.troubleRefused))
		row("  median time a caller waited", latency(w.latency.n, w.latency.p50), latency(wo.latency.n, wo.latency.p50))
		row("  p99 time a caller waited", latency(w.latency.n, w.latency.p99), latency(wo.latency.n, wo.latency.p99))
		row("  from "+sc.trouble+" start to breaker open", took(w.troubleToOpen), "-")
		row("  longest time its breaker stayed open", took(w.longestOpen()), "-")
		row("  from recovery to breaker closed", took(w.recoveryToClosed), "-")
		row("  from recovery to a caller's first 200", took(w.recoveryToOK), took(wo.recoveryToOK))
	}
	for _, h := range s.hosts {
		fmt.Fprintln(v.w)
		v.conclude(h, took)
	}
}

// conclude says in a sentence or three what the breaker did for one backend.
func (v *textView) conclude(h hostSummary, took func(*time.Duration) string) {
	sc, w, wo := h.script, h.with, h.without
	if !sc.troubled() {
		switch {
		case w.opened > 0:
			fmt.Fprintf(v.w, "%s never failed, yet its breaker opened %d times: some of its calls ran out of time.\n", sc.name, w.opened)
		case wo.reached < w.reached:
			fmt.Fprintf(v.w, "%s never failed and its breaker never opened. It got %d calls with the breakers\n"+
				"and %d without, where calls hanging on another backend held up the plain client's workers.\n",
				sc.name, w.reached, wo.reached)
		default:
			fmt.Fprintf(v.w, "%s never failed and its breaker never opened.\n", sc.name)
		}
		return
	}
	if wo.troubleReached > 0 && w.troubleReached <= wo.troubleReached {
		spared := 100 * float64(wo.troubleReached-w.troubleReached) / float64(wo.troubleReached)
		fmt.Fprintf(v.w, "With the breakers, %s got %.0f%% fewer calls during its %s", sc.name, spared, sc.trouble)
		if sc.hangEvery > 0 && w.latency.n > 0 && wo.latency.n > 0 {
			fmt.Fprintf(v.w, ",\nand callers waited %v instead of %v (median)",
				roundLatency(w.latency.p50), roundLatency(wo.latency.p50))
		}
		fmt.Fprintln(v.w, ".")
	}
	if longest := w.longestOpen(); sc.retryAfter > 0 && longest != nil {
		fmt.Fprintf(v.w, "It asked for %ds with Retry-After, and its breaker stayed open up to %s.\n", sc.retryAfter, took(longest))
	}
	if w.recoveryToOK != nil && wo.recoveryToOK != nil {
		late := max(*w.recoveryToOK-*wo.recoveryToOK, 0)
		fmt.Fprintf(v.w, "The price: after the recovery, callers waited %s longer for their first 200.\n", took(&late))
	}
}

// port is the port of a host:port address.
func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return p
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
