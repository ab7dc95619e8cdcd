// Command demo shows a circuit breaker protecting a real HTTP dependency
// through an outage.
//
// It starts two copies of a scripted dependency on 127.0.0.1: healthy, then
// an outage (most calls answered 503, some hang), then healthy again. The same
// callers call one copy through an actor.Breaker and the other copy directly,
// so the summary can compare what the dependency and the callers went through
// with and without the breaker.
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
