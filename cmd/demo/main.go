// Command demo shows an HTTP client with a circuit breaker per backend
// (httpbreaker's Transport) getting through a bad spell, next to a plain
// client.
//
// It starts two copies of three scripted backends on 127.0.0.1: payments
// has an outage (503s with Retry-After, and some calls hang until the caller
// gives up), search throttles briefly (429s with Retry-After), profile stays
// healthy. The same callers call one copy of each through one http.Client
// whose transport keeps a breaker per host:port, and the other copy through
// a plain http.Client, so the summary can compare, backend by backend, what
// the backends and the callers went through with and without the breakers.
//
// Usage:
//
//	go run ./cmd/demo [flags]
//
// With no flags it tells a 15-second story and exits 0. Run it with -h for
// the flags and their defaults, and with -json for JSON lines that other
// tools can read. Ctrl-C stops it early and still prints the summary so far.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C the demo winds down; a second one kills it at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run parses args, tells the story on stdout and returns when it is over or
// ctx is done. Flag errors are returned as a *usageError; -h returns
// flag.ErrHelp after printing the usage on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	cfg.color = !cfg.noColor && !cfg.jsonOutput && os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
	_, err = tell(ctx, cfg, stdout)
	return err
}

// exitCode reports err on stderr, if there is anything to report, and returns
// the process exit code for it: 0 for success and -h, 2 for bad flags, 1 for
// anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "demo: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// isTerminal reports whether w is a terminal (a character device), without
// any dependency beyond os.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
