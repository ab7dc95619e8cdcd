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

func (o *options) classifier() classifier {
	return classifier{allowed: o.allowed, failureOnly: o.failureOnly, custom: o.classify}
}

// why says which rule classified an error, so that it is logged at the level
// the contract gives it.
type why uint8

const (
	whySuccess           why = iota // nil error
	whyFailure                      // counted failure (Debug)
	whyInvalid                      // nil error, but Validate said the result is not ok (Debug)
	whyAllowed                      // ignored: matches WithAllowedErrors (Info)
	whyNotListed                    // ignored: not in WithFailureErrors (Info)
	whyCanceled                     // ignored: context.Canceled (Debug)
	whyClassifier                   // the classifier's Success (not logged)
	whyClassifierIgnored            // ignored: the classifier said so (Info)
	whyDidNotReturn                 // fn panicked or called runtime.Goexit (Debug)
	whySlow                         // policy: slower than WithSlowCall, whatever it returned (Debug)
)

type classified struct {
	outcome Outcome
	why     why
}

func (b *Breaker) classify(err error) classified {
	if err == nil {
		return classified{Success, whySuccess}
	}
	c := b.classifier
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
	case whySlow: // policy:
		level, msg = slog.LevelDebug, "circuit breaker counted a failure: the call was slower than WithSlowCall"
	default:
		return
	}
	l := b.log()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("breaker", b.name)}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}
