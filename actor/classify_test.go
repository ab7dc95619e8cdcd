package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Semantic 2: how a reported error counts.
func TestClassification(t *testing.T) {
	wrapped := func(err error) error { return fmt.Errorf("GET /users: %w", err) }
	classifier := WithClassifier(func(err error) Outcome {
		if errors.Is(err, errNotFound) {
			return Success
		}
		if errors.Is(err, errRateLimit) {
			return Ignored
		}
		return Failure
	})
	cases := []struct {
		name string
		opts []Option
		err  error
		want Outcome
	}{
		{"nil is a success", nil, nil, Success},
		{"an error is a failure", nil, errBoom, Failure},
		{"deadline exceeded is a failure", nil, context.DeadlineExceeded, Failure},
		{"wrapped deadline exceeded is a failure", nil, wrapped(context.DeadlineExceeded), Failure},
		{"canceled is ignored", nil, context.Canceled, Ignored},
		{"wrapped canceled is ignored", nil, wrapped(context.Canceled), Ignored},
		{"allowed error is ignored", []Option{WithAllowedErrors(errNotFound, errRateLimit)}, errRateLimit, Ignored},
		{"wrapped allowed error is ignored", []Option{WithAllowedErrors(errNotFound)}, wrapped(errNotFound), Ignored},
		{"other error with allowed list is a failure", []Option{WithAllowedErrors(errNotFound)}, errBoom, Failure},
		{"listed failure error", []Option{WithFailureErrors(errBoom)}, wrapped(errBoom), Failure},
		{"unlisted error with failure list is ignored", []Option{WithFailureErrors(errBoom)}, errNotFound, Ignored},
		{"deadline exceeded not in failure list is ignored", []Option{WithFailureErrors(errBoom)}, context.DeadlineExceeded, Ignored},
		{"nil with failure list is a success", []Option{WithFailureErrors(errBoom)}, nil, Success},
		{"classifier success", []Option{classifier}, errNotFound, Success},
		{"classifier ignored", []Option{classifier}, errRateLimit, Ignored},
		{"classifier failure", []Option{classifier}, errBoom, Failure},
		{"classifier decides on canceled", []Option{classifier}, context.Canceled, Failure},
		{"classifier out of range is a failure", []Option{WithClassifier(func(error) Outcome { return 42 })}, errBoom, Failure},
		{"nil never reaches the classifier", []Option{WithClassifier(func(error) Outcome { return Failure })}, nil, Success},
		{"classifier with errors.As", []Option{WithClassifier(func(err error) Outcome {
			var he *httpError
			if errors.As(err, &he) && he.status < 500 {
				return Ignored
			}
			return Failure
		})}, wrapped(&httpError{404}), Ignored},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := start(t, tc.opts...)
			if !permit(t, b).Report(tc.err) {
				t.Fatal("Report not applied")
			}
			var want Counts
			want.Requests = 1
			switch tc.want {
			case Success:
				want.Successes = 1
			case Failure:
				want.Failures, want.ConsecutiveFailures = 1, 1
			case Ignored:
				want.Ignored = 1
			}
			wantCounts(t, b, want)
		})
	}
}

type httpError struct{ status int }

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

func TestAllowedErrorsAreIgnoredNotCounted(t *testing.T) {
	b, _ := start(t, WithAllowedErrors(errNotFound))
	events := subscribe(t, b)
	for range 10 {
		permit(t, b).Report(fmt.Errorf("lookup: %w", errNotFound))
	}
	noEvent(t, events)
	wantState(t, b, StateClosed)
}

func TestFailureErrorsOnlyThoseCount(t *testing.T) {
	b, _ := start(t, WithFailureErrors(errBoom))
	events := subscribe(t, b)
	for range 10 {
		permit(t, b).Report(errNotFound)
	}
	noEvent(t, events)
	for range 3 {
		permit(t, b).Report(errBoom)
	}
	expectTransition(t, events, StateClosed, StateOpen)
}

// The contract's logging: levels, messages carry the breaker's name and, for
// classified reports, the error.
func TestLogging(t *testing.T) {
	level := func(records []logRecord, msgPart string) (slog.Level, map[string]string, bool) {
		for _, r := range records {
			if strings.Contains(r.msg, msgPart) {
				return r.level, r.attrs, true
			}
		}
		return 0, nil, false
	}
	t.Run("transitions", func(t *testing.T) {
		h := &capture{}
		b, mock := start(t, WithLogger(slog.New(h)), WithAllowedFails(1))
		events := subscribe(t, b)
		report(t, b, Failure)
		expectTransition(t, events, StateClosed, StateOpen)
		mock.Add(DefaultRetryTimer)
		expectTransition(t, events, StateOpen, StateHalfOpen)
		report(t, b, Success)
		expectTransition(t, events, StateHalfOpen, StateClosed)
		b.Stop() // transitions are logged after they are published: Stop waits for them
		records := h.all()
		for _, want := range []struct {
			msg   string
			level slog.Level
		}{{"opened", slog.LevelWarn}, {"half-opened", slog.LevelInfo}, {"closed", slog.LevelInfo}} {
			lvl, attrs, ok := level(records, "circuit breaker "+want.msg)
			if !ok || lvl != want.level || attrs["breaker"] != "test" || attrs["reason"] == "" {
				t.Errorf("%q: logged=%v level=%v attrs=%v, want %v with breaker and reason", want.msg, ok, lvl, attrs, want.level)
			}
		}
	})
	t.Run("classification", func(t *testing.T) {
		cases := []struct {
			name  string
			opts  []Option
			err   error
			msg   string
			level slog.Level
		}{
			{"allowed error", []Option{WithAllowedErrors(errNotFound)}, errNotFound, "allowed error", slog.LevelInfo},
			{"not a failure error", []Option{WithFailureErrors(errBoom)}, errNotFound, "not a failure error", slog.LevelInfo},
			{"canceled", nil, context.Canceled, "cancellation", slog.LevelDebug},
			{"canceled with failure errors", []Option{WithFailureErrors(errBoom)}, context.Canceled, "cancellation", slog.LevelDebug},
			{"counted failure", nil, errBoom, "counted a failure", slog.LevelDebug},
			{"ignored by a classifier", []Option{WithClassifier(func(error) Outcome { return Ignored })}, errBoom, "classifier", slog.LevelInfo},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := &capture{}
				b, _ := start(t, append(tc.opts, WithLogger(slog.New(h)))...)
				permit(t, b).Report(tc.err)
				records := h.all()
				if len(records) != 1 {
					t.Fatalf("%d records, want 1: %+v", len(records), records)
				}
				r := records[0]
				if r.level != tc.level || !strings.Contains(r.msg, tc.msg) || r.attrs["breaker"] != "test" || r.attrs["error"] != tc.err.Error() {
					t.Fatalf("record %+v, want %v %q with breaker and error", r, tc.level, tc.msg)
				}
			})
		}
	})
	t.Run("quiet on success", func(t *testing.T) {
		h := &capture{}
		b, _ := start(t, WithLogger(slog.New(h)), WithClassifier(func(error) Outcome { return Success }))
		report(t, b, Success)
		permit(t, b).Report(nil)
		permit(t, b).Report(errBoom) // a success, as the classifier says
		if records := h.all(); len(records) != 0 {
			t.Fatalf("logged %+v, want nothing", records)
		}
	})
	t.Run("validation failure and panic", func(t *testing.T) {
		h := &capture{}
		b, _ := start(t, WithLogger(slog.New(h)))
		_, _ = Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil }, Validate(func(int) bool { return false }))
		func() {
			defer func() { _ = recover() }()
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic("x") })
		}()
		records := h.all()
		if len(records) != 2 || records[0].level != slog.LevelDebug || !strings.Contains(records[0].msg, "validation") ||
			records[1].level != slog.LevelDebug || !strings.Contains(records[1].msg, "panicked") {
			t.Fatalf("records %+v", records)
		}
	})
	t.Run("default logger is slog.Default", func(t *testing.T) {
		h := &capture{}
		old := slog.Default()
		slog.SetDefault(slog.New(h))
		defer slog.SetDefault(old)
		b, err := New(WithAllowedErrors(errNotFound))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Stop()
		permit(t, b).Report(errNotFound)
		if len(h.all()) != 1 {
			t.Fatalf("records %+v, want one through slog.Default()", h.all())
		}
	})
}
