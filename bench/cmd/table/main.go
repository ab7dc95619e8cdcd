// Command table reads raw `go test -bench` output of the bench module and
// prints markdown tables of medians: one row per scenario and CPU count, one
// column per implementation, each cell "ns/op (ratio to gobreaker), allocs/op";
// a table of memory and idle CPU per breaker; and the issue 9 targets for the
// actor, met or missed.
//
// Usage:
//
//	go run ./cmd/table [-base gobreaker] [-targets=false] FILE...
//
// With no FILE it reads standard input.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	base := fs.String("base", "gobreaker", "implementation the ratios are relative to")
	targets := fs.Bool("targets", true, "check the issue 9 targets for impl=actor")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs := newResults()
	if fs.NArg() == 0 {
		if err := rs.parse(stdin); err != nil {
			return err
		}
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = rs.parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(rs.samples) == 0 {
		return errors.New("no benchmark results in the input")
	}
	w := bufio.NewWriter(stdout)
	rs.hotPath(w, *base)
	rs.idle(w)
	if *targets {
		rs.targets(w, *base)
	}
	return w.Flush()
}

// row identifies a table row: a scenario at one GOMAXPROCS.
type row struct {
	scenario string
	cpu      int
}

// cell identifies one measured series: a row and an implementation.
type cell struct {
	row
	impl string
}

type results struct {
	samples map[cell]map[string][]float64 // unit -> one value per run
	impls   []string                      // in order of first appearance
	machine []string                      // goos, goarch, cpu lines
}

func newResults() *results {
	return &results{samples: map[cell]map[string][]float64{}}
}

var cpuSuffix = regexp.MustCompile(`-(\d+)$`)

// parse adds the benchmark lines of r. A line is
// "BenchmarkScenario/impl=NAME[-CPU] N value unit value unit ...".
func (rs *results) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		for _, key := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, key) && !slices.Contains(rs.machine, line) {
				rs.machine = append(rs.machine, line)
			}
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		c, ok := parseName(strings.TrimPrefix(fields[0], "Benchmark"))
		if !ok {
			continue
		}
		if !slices.Contains(rs.impls, c.impl) {
			rs.impls = append(rs.impls, c.impl)
		}
		units := rs.samples[c]
		if units == nil {
			units = map[string][]float64{}
			rs.samples[c] = units
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("bad value %q in %q", fields[i], line)
			}
			units[fields[i+1]] = append(units[fields[i+1]], v)
		}
	}
	return sc.Err()
}

// parseName splits "Scenario/impl=NAME-2" into its cell. A name without a
// CPU suffix ran at GOMAXPROCS=1. Names without impl= are not ours.
func parseName(name string) (cell, bool) {
	c := cell{row: row{cpu: 1}}
	if m := cpuSuffix.FindStringSubmatch(name); m != nil {
		c.cpu, _ = strconv.Atoi(m[1])
		name = strings.TrimSuffix(name, m[0])
	}
	var rest []string
	for i, part := range strings.Split(name, "/") {
		if v, ok := strings.CutPrefix(part, "impl="); ok && i > 0 {
			c.impl = v
			continue
		}
		rest = append(rest, part)
	}
	c.scenario = strings.Join(rest, "/")
	return c, c.impl != ""
}

// median returns the median of c's values in unit, and how many there are.
func (rs *results) median(c cell, unit string) (float64, int, bool) {
	vs := rs.samples[c][unit]
	if len(vs) == 0 {
		return 0, 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], n, true
	}
	return (s[n/2-1] + s[n/2]) / 2, n, true
}

// Scenarios in table order, with the words for a row.
var scenarios = []struct{ name, label string }{
	{"ClosedCall", "closed call"},
	{"ClosedCallParallel", "closed call, parallel"},
	{"TwoStep", "two-step (permit, report)"},
	{"OpenRejection", "open rejection"},
	{"Mixed", "mixed, 10% failures"},
	{"MixedParallel", "mixed, 10% failures, parallel"},
	{"Reactivation", "re-activation: a failure, then a success, on a sleeping breaker"},
}

// parallelism matches the benchmarks' b.SetParallelism.
const parallelism = 8

func label(r row) string {
	l := r.scenario
	for _, s := range scenarios {
		if s.name == r.scenario {
			l = s.label
		}
	}
	cpus := plural(r.cpu, "CPU")
	if strings.HasSuffix(r.scenario, "Parallel") {
		return fmt.Sprintf("%s: %d goroutines on %s", l, parallelism*r.cpu, cpus)
	}
	return fmt.Sprintf("%s, %s", l, cpus)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// rows returns the hot-path rows present, in table order.
func (rs *results) rows() []row {
	seen := map[row]bool{}
	for c := range rs.samples {
		if !isIdle(c.scenario) {
			seen[c.row] = true
		}
	}
	order := func(s string) int {
		for i, sc := range scenarios {
			if sc.name == s {
				return i
			}
		}
		return len(scenarios)
	}
	var out []row
	for r := range seen {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b row) int {
		if d := order(a.scenario) - order(b.scenario); d != 0 {
			return d
		}
		if a.scenario != b.scenario {
			return strings.Compare(a.scenario, b.scenario)
		}
		return a.cpu - b.cpu
	})
	return out
}

// isIdle says whether a scenario is one of the memory and idle-CPU ones.
func isIdle(scenario string) bool { return strings.HasPrefix(scenario, "Idle") }

// columns puts actor first, then base, then the others as they appeared;
// only implementations with results in a scenario that keep says to.
func (rs *results) columns(base string, keep func(scenario string) bool) []string {
	has := map[string]bool{}
	for c := range rs.samples {
		if keep(c.scenario) {
			has[c.impl] = true
		}
	}
	cols := []string{}
	for _, impl := range append([]string{"actor", base}, rs.impls...) {
		if has[impl] && !slices.Contains(cols, impl) {
			cols = append(cols, impl)
		}
	}
	return cols
}

func (rs *results) hotPath(w io.Writer, base string) {
	rows := rs.rows()
	if len(rows) == 0 {
		return
	}
	cols := rs.columns(base, func(s string) bool { return !isIdle(s) })
	runs := 0
	fmt.Fprintf(w, "| scenario | %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---|", len(cols)))
	for _, r := range rows {
		baseNs, _, haveBase := rs.median(cell{r, base}, "ns/op")
		cells := make([]string, len(cols))
		for i, impl := range cols {
			ns, n, ok := rs.median(cell{r, impl}, "ns/op")
			if !ok {
				cells[i] = "—"
				continue
			}
			runs = max(runs, n)
			s := formatNs(ns)
			if haveBase && baseNs > 0 {
				s += fmt.Sprintf(" (%s)", formatRatio(ns/baseNs))
			}
			if allocs, _, ok := rs.median(cell{r, impl}, "allocs/op"); ok {
				s += ", " + formatAllocs(allocs)
				// go test truncates allocs/op: 1 alloc per 10 calls shows as 0.
				if bytes, _, ok := rs.median(cell{r, impl}, "B/op"); ok && allocs == 0 && bytes > 0 {
					s += fmt.Sprintf(" (%.0f B/op: under 1 alloc)", bytes)
				}
			}
			cells[i] = s
		}
		fmt.Fprintf(w, "| %s | %s |\n", label(r), strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\nMedians of %s per cell; in parentheses the ratio to %s in the same row (for two-step: gobreaker's TwoStepCircuitBreaker).\n",
		plural(runs, "run"), base)
	if len(rs.machine) > 0 {
		fmt.Fprintf(w, "Machine: %s.\n", strings.Join(rs.machine, ", "))
	}
	fmt.Fprintln(w)
}

// idleColumn is one column of the idle table: a scenario and an implementation.
type idleColumn struct{ scenario, impl string }

// idleScenarios are the idle benchmarks, in column order, with what their
// column adds to the implementation's name.
var idleScenarios = []struct{ name, suffix string }{
	{"Idle", ""},
	{"Idle1M", ", 1M"},
	{"IdleAfterTrip", ", 1M, after one open/half-open/closed cycle"},
	{"IdleOpen", ", open"},
}

func (c idleColumn) String() string {
	for _, s := range idleScenarios {
		if s.name == c.scenario {
			return c.impl + s.suffix
		}
	}
	return c.impl + ", " + c.scenario
}

// idle prints the memory and idle CPU table of the Idle benchmarks.
func (rs *results) idle(w io.Writer) {
	var cols []idleColumn
	for _, impl := range rs.columns("gobreaker", isIdle) {
		for _, scenario := range idleScenarios {
			if c := rs.idleCell(scenario.name, impl); c.impl != "" {
				cols = append(cols, idleColumn{scenario.name, impl})
			}
		}
	}
	if len(cols) == 0 {
		return
	}
	metrics := []struct{ unit, label string }{
		{"bytes/breaker", "bytes per idle breaker (heap + stacks)"},
		{"heap-B/breaker", "of which heap"},
		{"stack-B/breaker", "of which goroutine stacks"},
		{"goroutines/breaker", "goroutines per breaker"},
		{"cpu-fraction", "process CPU while idle (fraction of one core)"},
		{"ns/op", "time to create one breaker"},
	}
	runs := 0
	names := make([]string, len(cols))
	for i, col := range cols {
		names[i] = col.String()
	}
	fmt.Fprintf(w, "| idle breakers | %s |\n", strings.Join(names, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---|", len(cols)))
	for _, m := range metrics {
		cells := make([]string, len(cols))
		for i, col := range cols {
			v, n, ok := rs.median(rs.idleCell(col.scenario, col.impl), m.unit)
			runs = max(runs, n)
			switch {
			case !ok:
				cells[i] = "—"
			case m.unit == "cpu-fraction":
				cells[i] = fmt.Sprintf("%.5f", v)
			case m.unit == "ns/op":
				cells[i] = formatNs(v)
			case m.unit == "goroutines/breaker":
				cells[i] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				cells[i] = fmt.Sprintf("%.0f B", v)
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", m.label, strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\nMedians of %s, each with BENCH_IDLE_BREAKERS breakers (default 100,000; open: tripped, an hour to go), or BENCH_IDLE_1M_BREAKERS (default 1,000,000) for the 1M columns. Memory is measured after runtime.GC with every breaker alive; idle CPU is getrusage over the idle window, the Go runtime's own background work included (gobreaker starts no goroutine: its column is that floor).\n\n",
		plural(runs, "run"))
}

// idleCell finds the cell of an idle scenario and implementation, at the
// lowest CPU count it ran with; its impl is "" if there is none.
func (rs *results) idleCell(scenario, impl string) cell {
	var found cell
	for c := range rs.samples {
		if c.scenario == scenario && c.impl == impl && (found.impl == "" || c.cpu < found.cpu) {
			found = c
		}
	}
	return found
}

// Issue 9's targets for the actor, as ratios to gobreaker in the same row.
var hotTargets = []struct {
	scenario  string
	maxRatio  float64
	maxAllocs float64 // < 0: not a target
}{
	{"ClosedCall", 0.13, 0},
	{"ClosedCallParallel", 0.10, 0},
	{"OpenRejection", 0.2, 0},
	{"TwoStep", 0.31, 1}, // no worse than before issue 9
	{"Mixed", 0.5, 0},
	{"MixedParallel", 0.5, 0},
}

const (
	maxBytesPerBreaker = 512
	// maxActivationNs bounds one re-activation of a sleeping breaker; the
	// Reactivation benchmark's op is two of them.
	maxActivationNs = 1000
	// maxIdleCPU is how much more of a core than gobreaker's floor idle
	// actors may use and still count as "no measurable CPU".
	maxIdleCPU = 0.001
)

func (rs *results) targets(w io.Writer, base string) {
	fmt.Fprintf(w, "Issue 9 targets for actor (ratio to %s, same row):\n\n", base)
	for _, r := range rs.rows() {
		for _, t := range hotTargets {
			if t.scenario != r.scenario {
				continue
			}
			ns, _, ok := rs.median(cell{r, "actor"}, "ns/op")
			baseNs, _, okBase := rs.median(cell{r, base}, "ns/op")
			if !ok || !okBase || baseNs == 0 {
				continue
			}
			ratio := ns / baseNs
			verdict := metOrMissed(ratio <= t.maxRatio)
			line := fmt.Sprintf("- %s: %s ≤ %s: %s", label(r), formatRatio(ratio), formatRatio(t.maxRatio), verdict)
			if ratio > t.maxRatio {
				line += fmt.Sprintf(" (%s the target)", formatRatio(ratio/t.maxRatio))
			}
			if t.maxAllocs >= 0 {
				allocs, _, _ := rs.median(cell{r, "actor"}, "allocs/op")
				bytes, _, _ := rs.median(cell{r, "actor"}, "B/op")
				line += fmt.Sprintf("; %s (%.0f B/op) ≤ %s: %s", formatAllocs(allocs), bytes, formatAllocs(t.maxAllocs),
					metOrMissed(allocs <= t.maxAllocs && (t.maxAllocs > 0 || bytes == 0)))
			}
			fmt.Fprintln(w, line)
		}
	}
	for _, r := range rs.rows() {
		if r.scenario != "Reactivation" {
			continue
		}
		if ns, _, ok := rs.median(cell{r, "actor"}, "ns/op"); ok {
			fmt.Fprintf(w, "- re-activation, %s: %s per activation ≤ %s: %s\n", plural(r.cpu, "CPU"), formatNs(ns/2),
				formatNs(maxActivationNs), metOrMissed(ns/2 <= maxActivationNs))
		}
	}
	for _, col := range []idleColumn{{"Idle1M", "actor"}, {"IdleAfterTrip", "actor"}, {"Idle", "actor"}} {
		c := rs.idleCell(col.scenario, col.impl)
		if bytes, _, ok := rs.median(c, "bytes/breaker"); ok && col.scenario != "Idle" {
			fmt.Fprintf(w, "- idle memory (%s): %.0f B per breaker ≤ %d B: %s\n", col, bytes, maxBytesPerBreaker, metOrMissed(bytes <= maxBytesPerBreaker))
		}
		if g, _, ok := rs.median(c, "goroutines/breaker"); ok && col.scenario != "Idle" {
			fmt.Fprintf(w, "- goroutines per idle breaker (%s): %s = 0: %s\n", col, strconv.FormatFloat(g, 'f', -1, 64), metOrMissed(g == 0))
		}
		if cpu, _, ok := rs.median(c, "cpu-fraction"); ok && col.scenario == "Idle" {
			floor, _, _ := rs.median(rs.idleCell("Idle", base), "cpu-fraction")
			fmt.Fprintf(w, "- idle CPU (%s): %.5f of a core (%s: %.5f) ≤ %s's + %.3f: %s\n", col, cpu, base, floor, base, maxIdleCPU, metOrMissed(cpu <= floor+maxIdleCPU))
		}
	}
	fmt.Fprintln(w)
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func formatNs(ns float64) string {
	switch {
	case ns < 10:
		return fmt.Sprintf("%.2f ns", ns)
	case ns < 100:
		return fmt.Sprintf("%.1f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.0f ns", ns)
	}
	return fmt.Sprintf("%.1f ms", ns/1e6)
}

func formatRatio(r float64) string {
	switch {
	case r < 0.1:
		return fmt.Sprintf("%.3f×", r)
	case r < 10:
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.0f×", r)
}

func formatAllocs(a float64) string {
	s := strconv.FormatFloat(a, 'f', -1, 64)
	if a != float64(int64(a)) {
		s = fmt.Sprintf("%.1f", a)
	}
	if a == 1 {
		return s + " alloc"
	}
	return s + " allocs"
}
