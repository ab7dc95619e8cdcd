package actor

import (
	"context"
	"errors"
	"log/slog"
)

// classifier turns a reported error into an Outcome (CONTRACT semantic 2).
// At most one of its fields is set.
type classifier struct {
	allowed     []error             // WithAllowedErrors
	failureOnly []error             // WithFailureErrors
	custom      func(error) Outcome // WithClassifier
}

// classifier returns the chosen classification, or nil for the default
// rules (context.Canceled ignored, every other error a Failure).
func (o *options) classifier() *classifier {
	if o.allowed == nil && o.failureOnly == nil && o.classify == nil {
		return nil
	}
	return &classifier{allowed: o.allowed, failureOnly: o.failureOnly, custom: o.classify}
}

// why says which rule classified an error, so that it is logged at the level
// the contract gives it.
type why uint8

const (
	whySuccess            why = iota // nil error
	whyFailure                       // counted failure (Debug)
	whyInvalid                       // nil error, but Validate said the result is not ok (Debug)
	whyAllowed                       // ignored: matches WithAllowedErrors (Info)
	whyNotListed                     // ignored: not in WithFailureErrors (Info)
	whyCanceled                      // ignored: context.Canceled (Debug)
	whyClassifier                    // the classifier's Success (not logged)
	whyClassifierIgnored             // ignored: the classifier said so (Info)
	whyDidNotReturn                  // fn panicked or called runtime.Goexit (Debug)
	whyClassifierPanicked            // the classifier panicked (or exited) in Report: a Failure (Debug)
	whyGaveUp                        // ignored: the call's context was canceled, whatever the error (Debug)
	whySlow                          // policy: slower than WithSlowCall, whatever it returned (Debug)
)

type classified struct {
	outcome Outcome
	why     why
}

// classifyCtx is classify with semantic 2's first rule: a non-nil error
// reported while the call's context is done with context.Canceled is
// Ignored, whatever the error and before any classifier. Only
// context.Canceled: a deadline that expired stays whatever the rules say
// (by default a Failure), because a dependency too slow for its callers'
// deadlines is what a breaker must notice.
func (b *Breaker) classifyCtx(ctx context.Context, err error) classified {
	if err != nil && ctx != nil && ctx.Err() == context.Canceled {
		return classified{Ignored, whyGaveUp}
	}
	return b.classify(err)
}

func (b *Breaker) classify(err error) classified {
	if err == nil {
		return classified{Success, whySuccess}
	}
	c := b.classifier
	if c == nil {
		c = &defaultClassifier
	}
	switch {
	case c.custom != nil:
		switch c.custom(err) {
		case Success:
			return classified{Success, whyClassifier}
		case Ignored:
			return classified{Ignored, whyClassifierIgnored}
		}
		return classified{Failure, whyFailure}
	case c.failureOnly != nil:
		if matchesAny(err, c.failureOnly) {
			return classified{Failure, whyFailure}
		}
		if errors.Is(err, context.Canceled) {
			return classified{Ignored, whyCanceled}
		}
		return classified{Ignored, whyNotListed}
	case matchesAny(err, c.allowed):
		return classified{Ignored, whyAllowed}
	case errors.Is(err, context.Canceled):
		return classified{Ignored, whyCanceled}
	}
	return classified{Failure, whyFailure}
}

var defaultClassifier classifier

func matchesAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// logClassified logs an applied report, in the reporting goroutine.
func (b *Breaker) logClassified(ctx context.Context, c classified, err error) {
	var level slog.Level
	var msg string
	switch c.why {
	case whyAllowed:
		level, msg = slog.LevelInfo, "circuit breaker ignored an allowed error"
	case whyNotListed:
		level, msg = slog.LevelInfo, "circuit breaker ignored an error that is not a failure error"
	case whyClassifierIgnored:
		level, msg = slog.LevelInfo, "circuit breaker ignored an error, as its classifier says"
	case whyCanceled:
		level, msg = slog.LevelDebug, "circuit breaker ignored a cancellation"
	case whyFailure:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure"
	case whyInvalid:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure: the result did not pass validation"
	case whyDidNotReturn:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure: the function panicked or exited"
	case whyClassifierPanicked:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure: the classifier panicked or exited"
	case whyGaveUp:
		level, msg = slog.LevelDebug, "circuit breaker ignored an error: the caller's context was canceled"
	case whySlow: // policy:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure: the call was slower than WithSlowCall"
	default:
		return
	}
	l := b.log()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("breaker", b.m.name)}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}
