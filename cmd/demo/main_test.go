package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shortStory is a two-second version of the default story, sized so that a
// busy two-core machine still shows it: the breaker opens within the first
// few failures of a 0.8s outage, and the 0.9s recovery leaves room for
// several retry timers and probes.
func shortStory(t *testing.T, extra ...string) config {
	t.Helper()
	args := append([]string{
		"-duration", "2s",
		"-outage", "300ms+800ms",
		"-retry-timer", "150ms",
		"-workers", "8",
		"-rate", "300",
	}, extra...)
	cfg, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatalf("parseArgs(%q): %v", args, err)
	}
	cfg.tick = 100 * time.Millisecond
	cfg.callTimeout = 200 * time.Millisecond
	cfg.okDelay = time.Millisecond
	cfg.failDelay = 5 * time.Millisecond
	return cfg
}

// jsonLine is what every -json line has, and what the checks below read.
type jsonLine struct {
	Type    string   `json:"type"`
	Elapsed *float64 `json:"elapsed_s"`
	Seq     uint64   `json:"seq"`
	To      string   `json:"to"`
	Reason  string   `json:"reason"`

	Interrupted    bool           `json:"interrupted"`
	WithBreaker    map[string]any `json:"with_breaker"`
	WithoutBreaker map[string]any `json:"without_breaker"`
}

// parseJSONLines decodes out line by line, failing the test on any line
// that is not one JSON object with a known type and an elapsed time.
func parseJSONLines(t *testing.T, out []byte) []jsonLine {
	t.Helper()
	var lines []jsonLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", n, err, sc.Bytes())
		}
		switch {
		case l.Type != "tick" && l.Type != "event" && l.Type != "summary":
			t.Fatalf("line %d: unknown type %q: %s", n, l.Type, sc.Bytes())
		case l.Elapsed == nil:
			t.Fatalf("line %d: no elapsed_s: %s", n, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 || lines[len(lines)-1].Type != "summary" {
		t.Fatalf("the last line is not the summary:\n%s", out)
	}
	return lines
}

// TestStory checks the story the demo tells, not its timings: the breaker
// opens during the outage and closes after the recovery, and meanwhile it
// spares the failing dependency most calls. The -json output parses and
// agrees.
func TestStory(t *testing.T) {
	t.Parallel()
	cfg := shortStory(t, "-json")
	var out bytes.Buffer
	s, err := tell(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("tell: %v", err)
	}
	if s.interrupted {
		t.Error("summary says interrupted; nothing interrupted it")
	}

	if s.with.outageToOpen == nil {
		t.Errorf("the breaker did not open during the outage; transitions: %v", s.transitions)
	}
	if s.with.recoveryToClosed == nil {
		t.Errorf("the breaker did not close after the recovery; transitions: %v", s.transitions)
	}
	if s.without.outageToOpen != nil || s.without.recoveryToClosed != nil {
		t.Error("the run without a breaker reports breaker transitions")
	}

	with, without := s.with.outageReached, s.without.outageReached
	t.Logf("calls that reached the dependency during the outage: %d with the breaker, %d without", with, without)
	if without == 0 || float64(with) >= 0.5*float64(without) {
		t.Errorf("during the outage the dependency got %d calls with the breaker and %d without; want fewer than half", with, without)
	}
	if s.with.outageRefused == 0 || s.without.outageRefused != 0 {
		t.Errorf("refused during the outage: %d with the breaker, %d without; want some, and none",
			s.with.outageRefused, s.without.outageRefused)
	}

	lines := parseJSONLines(t, out.Bytes())
	var ticks int
	var events []jsonLine
	for _, l := range lines {
		switch l.Type {
		case "tick":
			ticks++
		case "event":
			events = append(events, l)
		}
	}
	if ticks == 0 {
		t.Error("no tick lines")
	}
	if len(events) != len(s.transitions) {
		t.Errorf("%d event lines, %d transitions", len(events), len(s.transitions))
	}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) || ev.To == "" || ev.Reason == "" {
			t.Errorf("event line %d: seq %d, to %q, reason %q; want seq %d and a state and a reason", i, ev.Seq, ev.To, ev.Reason, i+1)
		}
	}
	sum := lines[len(lines)-1]
	if got := sum.WithBreaker["outage_reached"]; got != float64(with) {
		t.Errorf("summary line: with_breaker.outage_reached = %v, want %d", got, with)
	}
	if got := sum.WithoutBreaker["outage_to_open_s"]; got != nil {
		t.Errorf("summary line: without_breaker.outage_to_open_s = %v, want null", got)
	}
}

// TestTextView runs a short story through run and checks that people get
// the live view and the summary table, without colour when stdout is not a
// terminal.
func TestTextView(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	args := []string{"-duration", "800ms", "-outage", "200ms+300ms", "-retry-timer", "100ms", "-rate", "200"}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run(%q): %v\nstderr: %s", args, err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"circuitbreaker demo",
		"=== outage:",
		"=== recovery:",
		">>> breaker closed -> open",
		"Summary",
		"calls that reached the dependency",
		"p99 time a caller waited",
		"from recovery to breaker closed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes in output to a buffer:\n%q", out)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// cancelOnWrite cancels a context at the first write: the view's first
// line, so in the middle of the story.
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// TestInterrupt cancels the context (what Ctrl-C does) at the first tick of
// a long story: run returns promptly without error, the summary so far is
// printed and says so, and goleak (TestMain) finds no goroutine left.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	args := []string{"-json", "-duration", "1h", "-outage", "0s+30m"}
	done := make(chan error, 1) // buffered: the test may have given up
	go func() { done <- run(ctx, args, out, io.Discard) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	lines := parseJSONLines(t, out.Bytes())
	if sum := lines[len(lines)-1]; !sum.Interrupted {
		t.Errorf("summary does not say interrupted: %+v", sum)
	}
}

// TestInterruptText checks the text summary of a story cancelled before it
// began.
func TestInterruptText(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout bytes.Buffer
	if err := run(ctx, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"Interrupted after", "Summary", "not yet"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestBadFlags checks that each bad command line gives exit code 2 and one
// line on stderr that names the flag, before anything starts.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"-allowed-fails", "0"}, "-allowed-fails"},
		{[]string{"-allowed-fails", "x"}, "-allowed-fails"},
		{[]string{"-retry-timer", "0s"}, "-retry-timer"},
		{[]string{"-retry-timer", "soon"}, "-retry-timer"},
		{[]string{"-probe-timeout", "-1s"}, "-probe-timeout"},
		{[]string{"-workers", "0"}, "-workers"},
		{[]string{"-workers", "many"}, "-workers"},
		{[]string{"-rate", "0"}, "-rate"},
		{[]string{"-outage", "4s"}, "-outage"},
		{[]string{"-outage", "-1s+2s"}, "-outage"},
		{[]string{"-outage", "1s+0s"}, "-outage"},
		{[]string{"-outage", "10s+6s"}, "-outage"},
		{[]string{"-duration", "0s"}, "-duration"},
		{[]string{"-json=maybe"}, "-json"},
		{[]string{"-colour"}, "-colour"},
		{[]string{"extra"}, "extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a *usageError", tc.args, err)
			continue
		}
		code := exitCode(err, &stderr)
		msg := stderr.String()
		if code != 2 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 || stdout.Len() > 0 {
			t.Errorf("run(%q): exit code %d, stderr %q, stdout %q; want 2, one line naming %s, nothing",
				tc.args, code, msg, stdout.String(), tc.want)
		}
	}
}

// TestHelp checks that -h documents every flag with its default and exits 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-h) = %v, want flag.ErrHelp", err)
	}
	if code := exitCode(err, io.Discard); code != 0 {
		t.Errorf("exit code for -h: %d, want 0", code)
	}
	help := stderr.String()
	for _, want := range []string{
		"-allowed-fails n", "(default 3)",
		"-retry-timer duration", "(default 1s)",
		"-probe-timeout duration",
		"-workers n", "(default 8)",
		"-rate n", "(default 100)",
		"-outage START+LENGTH", "(default 4s+6s)",
		"-duration duration", "(default 15s)",
		"-json", "-no-color",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %q:\n%s", want, help)
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("-h printed on stdout: %s", stdout.String())
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{&usageError{"-workers must be at least 1"}, 2},
		{errors.New("listen: no ports"), 1},
	} {
		if got := exitCode(tc.err, io.Discard); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}

func TestStateColours(t *testing.T) {
	t.Parallel()
	plain := &textView{}
	if got := plain.state(actor.StateOpen, 9); got != "open     " {
		t.Errorf("plain state = %q", got)
	}
	coloured := &textView{color: true}
	if got := coloured.state(actor.StateOpen, 0); got != ansiRed+"open"+ansiReset {
		t.Errorf("coloured open = %q", got)
	}
}

func TestPhaseAt(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := schedule{start: start, outageStart: 4 * time.Second, outageEnd: 10 * time.Second}
	for _, tc := range []struct {
		at   time.Duration
		want phase
	}{
		{0, phaseHealthy},
		{4*time.Second - 1, phaseHealthy},
		{4 * time.Second, phaseOutage},
		{10*time.Second - 1, phaseOutage},
		{10 * time.Second, phaseRecovery},
	} {
		if got := s.phaseAt(start.Add(tc.at)); got != tc.want {
			t.Errorf("phaseAt(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var sorted []time.Duration
	for i := 1; i <= 200; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	l := percentilesOf(sorted)
	if l.n != 200 || l.p50 != 100*time.Millisecond || l.p99 != 198*time.Millisecond {
		t.Errorf("percentilesOf(1ms..200ms) = %+v, want n 200, p50 100ms, p99 198ms", l)
	}
	if l := percentilesOf([]time.Duration{time.Second}); l.p50 != time.Second || l.p99 != time.Second {
		t.Errorf("percentilesOf(1s) = %+v", l)
	}
	if l := percentilesOf(nil); l != (latencies{}) {
		t.Errorf("percentilesOf(nil) = %+v", l)
	}
}
