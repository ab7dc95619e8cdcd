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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shortStory is a short version of the default story, sized so that a busy
// two-core machine still shows it: payments' breaker opens within the first
// few failures of a 0.8s outage, and the recovery leaves room for a
// Retry-After of 1s and a probe; search throttles for 0.3s early on and asks
// for 1s with Retry-After.
func shortStory(t *testing.T, extra ...string) config {
	t.Helper()
	args := append([]string{
		"-duration", "2500ms",
		"-outage", "300ms+800ms",
		"-throttle", "100ms+300ms",
		"-retry-timer", "150ms",
		"-workers", "8",
		"-rate", "150",
	}, extra...)
	cfg, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatalf("parseArgs(%q): %v", args, err)
	}
	cfg.tick = 100 * time.Millisecond
	cfg.callTimeout = 300 * time.Millisecond
	cfg.okDelay = time.Millisecond
	cfg.failDelay = 5 * time.Millisecond
	cfg.outageRetryAfter = 1
	cfg.throttleRetryAfter = 1
	return cfg
}

// The backends of the story, by their index in config.scripts.
const (
	payments = 0 // the outage: 503 with Retry-After, some calls hang
	search   = 1 // the throttling: 429 with Retry-After
	profile  = 2 // healthy throughout
)

// jsonLine is what every -json line has, and what the checks below read.
type jsonLine struct {
	Type    string   `json:"type"`
	Elapsed *float64 `json:"elapsed_s"`

	// "tick", "summary"
	Backends []struct {
		Backend        string         `json:"backend"`
		State          string         `json:"state"`
		WithBreaker    map[string]any `json:"with_breaker"`
		WithoutBreaker map[string]any `json:"without_breaker"`
	} `json:"backends"`

	// "event", "phase"
	Backend string `json:"backend"`
	Key     string `json:"key"`
	Seq     uint64 `json:"seq"`
	To      string `json:"to"`
	Reason  string `json:"reason"`
	Phase   string `json:"phase"`

	// "summary"
	Interrupted bool `json:"interrupted"`
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
		case l.Type != "tick" && l.Type != "event" && l.Type != "phase" && l.Type != "summary":
			t.Fatalf("line %d: unknown type %q: %s", n, l.Type, sc.Bytes())
		case l.Elapsed == nil:
			t.Fatalf("line %d: no elapsed_s: %s", n, sc.Bytes())
		case (l.Type == "tick" || l.Type == "summary") && len(l.Backends) != 3:
			t.Fatalf("line %d: %d backends, want 3: %s", n, len(l.Backends), sc.Bytes())
		case (l.Type == "event" || l.Type == "phase") && l.Backend == "":
			t.Fatalf("line %d: names no backend: %s", n, sc.Bytes())
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

// TestStory checks the story the demo tells, backend by backend, not its
// timings: payments' breaker opens during the outage, spares it most calls
// and closes after the recovery; search's breaker stays open exactly as long
// as its Retry-After asks; profile's breaker never opens. The -json output
// parses and agrees.
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
	if len(s.hosts) != 3 {
		t.Fatalf("summary of %d backends, want 3", len(s.hosts))
	}
	for _, h := range s.hosts {
		if h.without.troubleToOpen != nil || h.without.recoveryToClosed != nil || h.without.opened != 0 {
			t.Errorf("%s: the plain client reports breaker transitions", h.script.name)
		}
		if h.without.refused != 0 {
			t.Errorf("%s: the plain client refused %d calls", h.script.name, h.without.refused)
		}
	}

	p := s.hosts[payments]
	if p.with.troubleToOpen == nil {
		t.Errorf("payments: the breaker did not open during the outage; transitions: %v", p.transitions)
	}
	if p.with.recoveryToClosed == nil {
		t.Errorf("payments: the breaker did not close after the recovery; transitions: %v", p.transitions)
	}
	with, without := p.with.troubleReached, p.without.troubleReached
	t.Logf("calls that reached payments during the outage: %d with the breaker, %d without", with, without)
	if without == 0 || float64(with) >= 0.5*float64(without) {
		t.Errorf("during the outage payments got %d calls with the breaker and %d without; want fewer than half", with, without)
	}
	if p.with.troubleRefused == 0 {
		t.Error("payments: no call refused during the outage")
	}

	sr := s.hosts[search]
	ra := time.Duration(cfg.throttleRetryAfter) * time.Second
	if len(sr.with.openPeriods) == 0 {
		t.Fatalf("search: the breaker did not open and half-open again; transitions: %v", sr.transitions)
	}
	if got := sr.with.openPeriods[0]; got != ra {
		t.Errorf("search: the breaker stayed open %v, want the Retry-After of %v; transitions: %v", got, ra, sr.transitions)
	}
	if sr.with.troubleReached >= sr.without.troubleReached {
		t.Errorf("while throttling search got %d calls with the breaker and %d without; want fewer",
			sr.with.troubleReached, sr.without.troubleReached)
	}

	pr := s.hosts[profile]
	if len(pr.transitions) != 0 || pr.with.refused != 0 {
		t.Errorf("profile, always healthy: transitions %v, %d refused; want none", pr.transitions, pr.with.refused)
	}
	// Calls in flight when the story ends are sent but may never arrive.
	if pr.with.reached == 0 || pr.with.reached+uint64(cfg.workers) < pr.with.sent {
		t.Errorf("profile: %d calls sent through the breaker, %d reached it; want all but those cut short at the end",
			pr.with.sent, pr.with.reached)
	}

	lines := parseJSONLines(t, out.Bytes())
	var ticks, phases int
	events := map[string][]jsonLine{}
	for _, l := range lines {
		switch l.Type {
		case "tick":
			ticks++
		case "phase":
			phases++
		case "event":
			events[l.Backend] = append(events[l.Backend], l)
		}
	}
	if ticks == 0 {
		t.Error("no tick lines")
	}
	if phases != 4 {
		t.Errorf("%d phase lines, want 4 (two for payments, two for search)", phases)
	}
	sum := lines[len(lines)-1]
	for i, h := range s.hosts {
		name := h.script.name
		evs := events[name]
		if len(evs) != len(h.transitions) {
			t.Errorf("%s: %d event lines, %d transitions", name, len(evs), len(h.transitions))
		}
		for k, ev := range evs {
			if ev.Seq != uint64(k+1) || ev.Key != h.key || ev.To == "" || ev.Reason == "" {
				t.Errorf("%s: event line %d: seq %d, key %q, to %q, reason %q; want seq %d, key %q, a state and a reason",
					name, k, ev.Seq, ev.Key, ev.To, ev.Reason, k+1, h.key)
			}
		}
		b := sum.Backends[i]
		if b.Backend != name {
			t.Errorf("summary line: backend %d is %q, want %q", i, b.Backend, name)
		}
		if got := b.WithBreaker["trouble_reached"]; got != float64(h.with.troubleReached) {
			t.Errorf("summary line: %s with_breaker.trouble_reached = %v, want %d", name, got, h.with.troubleReached)
		}
		if got := b.WithoutBreaker["trouble_to_open_s"]; got != nil {
			t.Errorf("summary line: %s without_breaker.trouble_to_open_s = %v, want null", name, got)
		}
	}
}

// TestRetryAfterCapped checks that -max-retry-after caps the open period a
// Retry-After header sets, and that 0 ignores the header: every opening then
// lasts the capped header value or the retry timer (after a hanging call,
// which has no header).
func TestRetryAfterCapped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cap  string
		want time.Duration // search's open period
	}{
		{"300ms", 300 * time.Millisecond},
		{"0s", 150 * time.Millisecond}, // the retry timer
	} {
		// One after the other, to keep the machine's load (and timeouts) down.
		t.Run(tc.cap, func(t *testing.T) {
			cfg := shortStory(t, "-max-retry-after", tc.cap, "-duration", "1200ms", "-outage", "300ms+500ms", "-rate", "90")
			s, err := tell(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatalf("tell: %v", err)
			}
			sr := s.hosts[search]
			if len(sr.with.openPeriods) == 0 {
				t.Fatalf("search: the breaker did not open and half-open again; transitions: %v", sr.transitions)
			}
			if got := sr.with.openPeriods[0]; got != tc.want {
				t.Errorf("search: the breaker stayed open %v, want %v; transitions: %v", got, tc.want, sr.transitions)
			}
			for _, d := range s.hosts[payments].with.openPeriods {
				if d != tc.want && d != cfg.retryTimer {
					t.Errorf("payments: the breaker stayed open %v, want %v (Retry-After, capped) or %v (the retry timer)",
						d, tc.want, cfg.retryTimer)
				}
			}
		})
	}
}

// TestTextView runs a short story through run and checks that people get
// the live view and the summary table, without colour when stdout is not a
// terminal.
func TestTextView(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	args := []string{"-duration", "800ms", "-outage", "200ms+300ms", "-throttle", "100ms+200ms", "-retry-timer", "100ms", "-rate", "90"}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run(%q): %v\nstderr: %s", args, err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"circuitbreaker demo",
		"=== payments: outage: 503 with Retry-After: 2",
		"=== payments: recovery:",
		"=== search: throttling: 429 with Retry-After: 2",
		">>> payments  closed -> open",
		">>> search    closed -> open",
		"Summary",
		"calls that reached it during the outage",
		"calls that reached it during the throttling",
		"p99 time a caller waited",
		"from recovery to breaker closed",
		"profile: healthy throughout",
		"With the breakers, payments got",
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
		{[]string{"-throttle", "1s"}, "-throttle"},
		{[]string{"-throttle", "1s+-1s"}, "-throttle"},
		{[]string{"-throttle", "14s+2s"}, "-throttle"},
		{[]string{"-max-retry-after", "-1s"}, "-max-retry-after"},
		{[]string{"-max-retry-after", "later"}, "-max-retry-after"},
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
		"-max-retry-after duration", "(default 5m0s)",
		"-workers n", "(default 8)",
		"-rate n", "(default 300)",
		"-outage START+LENGTH", "(default 4s+6s)",
		"-throttle START+LENGTH", "(default 1s+1.5s)",
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
	s := schedule{start: start, scripts: defaultConfig().scripts()}
	for _, tc := range []struct {
		backend int
		at      time.Duration
		want    phase
	}{
		{payments, 0, phaseHealthy},
		{payments, 4*time.Second - 1, phaseHealthy},
		{payments, 4 * time.Second, phaseTrouble},
		{payments, 10*time.Second - 1, phaseTrouble},
		{payments, 10 * time.Second, phaseRecovery},
		{search, time.Second, phaseTrouble},
		{search, 2500 * time.Millisecond, phaseRecovery},
		{profile, 5 * time.Second, phaseHealthy},
	} {
		if got := s.phaseAt(tc.backend, start.Add(tc.at)); got != tc.want {
			t.Errorf("phaseAt(%d, %v) = %v, want %v", tc.backend, tc.at, got, tc.want)
		}
	}
	want := []change{
		{time.Second, search, phaseTrouble},
		{2500 * time.Millisecond, search, phaseRecovery},
		{4 * time.Second, payments, phaseTrouble},
		{10 * time.Second, payments, phaseRecovery},
	}
	if got := s.changes(); !slices.Equal(got, want) {
		t.Errorf("changes() = %v, want %v", got, want)
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
