package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// config is everything the story depends on. The exported knobs are flags;
// the rest script the backends and the callers' patience, and only tests
// change them (to shorten the story).
type config struct {
	// Set by flags.
	allowedFails   int           // breaker: failures in a row that open it
	retryTimer     time.Duration // breaker: how long it stays open before probing
	probeTimeout   time.Duration // breaker: 0 leaves the library default (the retry timer)
	maxRetryAfter  time.Duration // transport: the longest Retry-After it honours; 0 ignores the header
	workers        int           // concurrent callers per client
	rate           int           // calls per second, all workers of one client together, all backends
	outageStart    time.Duration // when payments starts failing
	outageLength   time.Duration // how long it keeps failing
	throttleStart  time.Duration // when search starts throttling
	throttleLength time.Duration // how long it throttles
	duration       time.Duration // length of the whole story
	jsonOutput     bool          // JSON lines instead of the live view
	noColor        bool          // never colour the breaker state

	// Set by run from the environment.
	color bool // colour the breaker state (stdout is a terminal, NO_COLOR unset, no -no-color)

	// Not flags.
	tick               time.Duration // how often the live view prints a block
	callTimeout        time.Duration // how long a caller waits for one response
	okDelay            time.Duration // how long a healthy backend takes to answer 200
	failDelay          time.Duration // how long payments takes to answer 503 in its outage
	hangDelay          time.Duration // how long a hanging call takes (callers give up first)
	hangEvery          int           // during the outage every hangEvery-th call hangs
	outageRetryAfter   int           // seconds, in the outage's 503s
	throttleRetryAfter int           // seconds, in the throttling's 429s
}

// defaultConfig is the 15-second story that `go run ./cmd/demo` tells.
func defaultConfig() config {
	return config{
		allowedFails:   3,
		retryTimer:     time.Second,
		maxRetryAfter:  5 * time.Minute,
		workers:        8,
		rate:           300,
		outageStart:    4 * time.Second,
		outageLength:   6 * time.Second,
		throttleStart:  time.Second,
		throttleLength: 1500 * time.Millisecond,
		duration:       15 * time.Second,

		tick:               500 * time.Millisecond,
		callTimeout:        500 * time.Millisecond,
		okDelay:            5 * time.Millisecond,
		failDelay:          50 * time.Millisecond,
		hangDelay:          5 * time.Second,
		hangEvery:          5,
		outageRetryAfter:   2,
		throttleRetryAfter: 2,
	}
}

// scripts returns the three backends' scripts: payments has an outage,
// search throttles, profile stays healthy.
func (c config) scripts() []script {
	return []script{
		{
			name: "payments", trouble: "outage",
			start: c.outageStart, length: c.outageLength,
			status: http.StatusServiceUnavailable, retryAfter: c.outageRetryAfter, hangEvery: c.hangEvery,
		},
		{
			name: "search", trouble: "throttling",
			start: c.throttleStart, length: c.throttleLength,
			status: http.StatusTooManyRequests, retryAfter: c.throttleRetryAfter,
		},
		{name: "profile"},
	}
}

// A usageError is a bad command line. main exits with code 2 for it.
type usageError struct {
	msg string
}

func (e *usageError) Error() string { return e.msg + " (see -h)" }

// parseArgs turns the command line into a config. Flag errors come back as a
// one-line *usageError naming the flag; -h prints the usage on stderr and
// returns flag.ErrHelp.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	// The flag package would print each error followed by the whole usage;
	// main prints the error alone, on one line, instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	fs.IntVar(&cfg.allowedFails, "allowed-fails", cfg.allowedFails, "`n` failures in a row open the breaker")
	fs.DurationVar(&cfg.retryTimer, "retry-timer", cfg.retryTimer, "how long the breaker stays open before it lets one probe call through")
	fs.DurationVar(&cfg.probeTimeout, "probe-timeout", cfg.probeTimeout, "how long a probe may take before it counts as a failure (0: the same as -retry-timer, the library default)")
	fs.DurationVar(&cfg.maxRetryAfter, "max-retry-after", cfg.maxRetryAfter, "the longest open period a Retry-After header may set (0: ignore the header, use -retry-timer)")
	fs.IntVar(&cfg.workers, "workers", cfg.workers, "`n` concurrent callers on each side (with and without the breakers), shared by the three backends")
	fs.IntVar(&cfg.rate, "rate", cfg.rate, "`n` calls per second on each side, spread evenly over the three backends; a worker still waiting on a slow call misses its turn")
	fs.Var(spellFlag{&cfg.outageStart, &cfg.outageLength}, "outage", "`START+LENGTH` of payments' outage: when it starts and how long it lasts")
	fs.Var(spellFlag{&cfg.throttleStart, &cfg.throttleLength}, "throttle", "`START+LENGTH` of search's throttling")
	fs.DurationVar(&cfg.duration, "duration", cfg.duration, "length of the whole story; the outage and the throttling must end before it")
	fs.BoolVar(&cfg.jsonOutput, "json", false, "print JSON lines (one object per tick, per breaker event, and the summary) instead of the live view")
	fs.BoolVar(&cfg.noColor, "no-color", false, "do not colour the breaker state (colour is also off when stdout is not a terminal or NO_COLOR is set)")

	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			printUsage(fs, stderr)
			return config{}, err
		}
		return config{}, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return config{}, &usageError{fmt.Sprintf("unexpected argument %q: the demo takes only flags", fs.Arg(0))}
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// validate checks the flag values that parse but make no story.
func (c config) validate() error {
	bad := func(format string, args ...any) error {
		return &usageError{fmt.Sprintf(format, args...)}
	}
	switch {
	case c.allowedFails < 1:
		return bad("-allowed-fails must be at least 1, got %d", c.allowedFails)
	case c.retryTimer <= 0:
		return bad("-retry-timer must be positive, got %v", c.retryTimer)
	case c.probeTimeout < 0:
		return bad("-probe-timeout must not be negative, got %v", c.probeTimeout)
	case c.maxRetryAfter < 0:
		return bad("-max-retry-after must not be negative, got %v", c.maxRetryAfter)
	case c.workers < 1 || c.workers > 1000:
		return bad("-workers must be between 1 and 1000, got %d", c.workers)
	case c.rate < 1 || c.rate > 10000:
		return bad("-rate must be between 1 and 10000 calls per second, got %d", c.rate)
	case c.duration <= 0:
		return bad("-duration must be positive, got %v", c.duration)
	case c.outageStart+c.outageLength >= c.duration:
		return bad("-outage %v must end before -duration %v, so that the story shows the recovery",
			spellFlag{&c.outageStart, &c.outageLength}, c.duration)
	case c.throttleStart+c.throttleLength >= c.duration:
		return bad("-throttle %v must end before -duration %v, so that the story shows the recovery",
			spellFlag{&c.throttleStart, &c.throttleLength}, c.duration)
	}
	return nil
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `Usage: go run ./cmd/demo [flags]

Watch an HTTP client with a circuit breaker per backend (httpbreaker's
Transport) get through a bad spell, next to a plain client. Three backends
on 127.0.0.1, two copies of each, one per client:
  payments  has an outage: 503 with Retry-After: 2, and every 5th call
            hangs until the caller gives up after 500ms
  search    throttles briefly: 429 with Retry-After: 2
  profile   stays healthy
The same callers call all three through the breakers and directly; the
summary compares the two sides, backend by backend.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// spellFlag is the -outage and -throttle flag: START+LENGTH, two durations
// such as 4s+6s.
type spellFlag struct {
	start, length *time.Duration
}

func (f spellFlag) String() string {
	if f.start == nil { // the flag package's zero-value probe
		return ""
	}
	return fmt.Sprintf("%v+%v", *f.start, *f.length)
}

func (f spellFlag) Set(s string) error {
	startText, lengthText, ok := strings.Cut(s, "+")
	if !ok {
		return fmt.Errorf("want START+LENGTH, such as 4s+6s")
	}
	start, err := time.ParseDuration(startText)
	if err != nil || start < 0 {
		return fmt.Errorf("START %q is not a duration of 0 or more, such as 4s", startText)
	}
	length, err := time.ParseDuration(lengthText)
	if err != nil || length <= 0 {
		return fmt.Errorf("LENGTH %q is not a positive duration, such as 6s", lengthText)
	}
	*f.start, *f.length = start, length
	return nil
}
