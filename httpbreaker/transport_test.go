package httpbreaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// TestTransportClassification pins semantic 22 row by row: each status is
// sent once through a fresh Transport and must land in the right count, and
// the response, failing ones too, comes back readable.
func TestTransportClassification(t *testing.T) {
	srv := newBackend(t)
	rows := []struct {
		status int
		want   actor.Outcome
	}{
		{200, actor.Success}, {201, actor.Success}, {204, actor.Success}, {304, actor.Success},
		{400, actor.Success}, {401, actor.Success}, {404, actor.Success}, {409, actor.Success},
		{408, actor.Failure}, {429, actor.Failure}, {499, actor.Success},
		{500, actor.Failure}, {501, actor.Success}, {502, actor.Failure}, {503, actor.Failure},
		{504, actor.Failure}, {599, actor.Failure},
	}
	for _, row := range rows {
		t.Run(fmt.Sprint(row.status), func(t *testing.T) {
			tr, client := newTransport(t, newMock(), srv.Client().Transport)
			status, body, err := get(t, client, fmt.Sprintf("%s/?status=%d", srv.URL, row.status))
			if err != nil {
				t.Fatal(err)
			}
			if status != row.status {
				t.Fatalf("status %d, want %d", status, row.status)
			}
			if want := fmt.Sprintf("body of %d", row.status); row.status != 204 && row.status != 304 && body != want {
				t.Fatalf("body %q, want %q: the response must come back untouched", body, want)
			}
			assertCounted(t, breakerOf(t, tr.Group(), HostKey(mustURL(t, srv.URL))), row.want)
		})
	}
}

// assertCounted checks that b counted exactly one outcome, o.
func assertCounted(t *testing.T, b *actor.Breaker, o actor.Outcome) {
	t.Helper()
	c := b.Counts()
	got := map[actor.Outcome]uint64{actor.Success: c.Successes, actor.Failure: c.Failures, actor.Ignored: c.Ignored}
	for outcome, n := range got {
		want := uint64(0)
		if outcome == o {
			want = 1
		}
		if n != want {
			t.Fatalf("counts %+v: want exactly one %v", c, o)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTransportErrorIsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more: the dial fails
	tr, client := newTransport(t, newMock(), &http.Transport{})
	if _, _, err := get(t, client, addr); err == nil {
		t.Fatal("a request to a closed server succeeded")
	}
	assertCounted(t, breakerOf(t, tr.Group(), HostKey(mustURL(t, addr))), actor.Failure)
}

// TestTransportCancelledRequestIsIgnored: a caller that gives up mid-flight
// is not the backend's fault.
func TestTransportCancelledRequestIsIgnored(t *testing.T) {
	arrived := make(chan struct{}, 1) // buffered: the handler never waits for the test
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	tr, client := newTransport(t, newMock(), srv.Client().Transport)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	errc := make(chan error, 1) // buffered: the goroutine never waits for the test
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, arrived, "the request to reach the server")
	cancel()
	if err := waitFor(t, errc, "the cancelled request to return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertCounted(t, breakerOf(t, tr.Group(), HostKey(mustURL(t, srv.URL))), actor.Ignored)
}

// TestTransportDeadlineIsAFailure: a backend too slow for the caller's
// deadline is failing (semantic 2).
func TestTransportDeadlineIsAFailure(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	tr, client := newTransport(t, newMock(), srv.Client().Transport)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request beat its deadline")
	}
	assertCounted(t, breakerOf(t, tr.Group(), HostKey(mustURL(t, srv.URL))), actor.Failure)
}

// TestTransportPerHostIsolation: a failing host opens its own breaker and no
// other.
func TestTransportPerHostIsolation(t *testing.T) {
	bad, good := newBackend(t), newBackend(t)
	tr, client := newTransport(t, newMock(), &http.Transport{})
	for i := 0; i < 2; i++ {
		if status, _, err := get(t, client, bad.URL+"/?status=503"); err != nil || status != 503 {
			t.Fatalf("call %d to the failing host: %d, %v", i+1, status, err)
		}
	}
	if s := breakerOf(t, tr.Group(), HostKey(mustURL(t, bad.URL))).State(); s != actor.StateOpen {
		t.Fatalf("the failing host's breaker is %v, want open", s)
	}
	if _, _, err := get(t, client, bad.URL); !errors.Is(err, actor.ErrOpen) {
		t.Fatalf("the failing host: err = %v, want a refusal", err)
	}
	for i := 0; i < 5; i++ {
		if status, _, err := get(t, client, good.URL); err != nil || status != 200 {
			t.Fatalf("call %d to the healthy host: %d, %v", i+1, status, err)
		}
	}
	if s := breakerOf(t, tr.Group(), HostKey(mustURL(t, good.URL))).State(); s != actor.StateClosed {
		t.Fatalf("the healthy host's breaker is %v, want closed", s)
	}
	if bad.hits.Load() != 2 || good.hits.Load() != 5 {
		t.Fatalf("hits: failing host %d (want 2), healthy host %d (want 5)", bad.hits.Load(), good.hits.Load())
	}
}

// TestTransportRefusal pins semantic 23: nothing is sent, the body is
// closed, and the error is the breaker's, through http.Client's *url.Error.
func TestTransportRefusal(t *testing.T) {
	srv := newBackend(t)
	mock := newMock()
	tr, client := newTransport(t, mock, srv.Client().Transport)
	for i := 0; i < 2; i++ {
		get(t, client, srv.URL+"/?status=500")
	}
	hits := srv.hits.Load()

	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
	resp, err := client.Do(req)
	if resp != nil {
		t.Fatalf("a refusal returned a response: %v", resp.Status)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T %v, want http.Client's *url.Error", err, err)
	}
	var oe *actor.OpenError
	if !errors.Is(err, actor.ErrOpen) || !errors.As(err, &oe) {
		t.Fatalf("err = %v, want errors.Is ErrOpen and errors.As *OpenError", err)
	}
	if want := mock.Now().Add(30 * time.Second); !oe.Until.Equal(want) || oe.State != actor.StateOpen {
		t.Fatalf("refusal %+v, want open until %v", oe, want)
	}
	if !body.closed.Load() {
		t.Fatal("the refused request's body was not closed")
	}
	if srv.hits.Load() != hits {
		t.Fatal("a refused request reached the server")
	}

	// The direct RoundTrip gives the refusal itself, and a nil response.
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err = tr.RoundTrip(req)
	if resp != nil || !errors.As(err, &oe) {
		t.Fatalf("RoundTrip = %v, %v; want nil and an *OpenError", resp, err)
	}
}

func TestTransportStop(t *testing.T) {
	srv := newBackend(t)
	tr, client := newTransport(t, newMock(), srv.Client().Transport)
	get(t, client, srv.URL)
	tr.Stop()
	tr.Stop() // idempotent
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
	resp, err := tr.RoundTrip(req)
	if resp != nil || !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("after Stop: %v, %v; want nil and ErrStopped", resp, err)
	}
	if !body.closed.Load() || srv.hits.Load() != 1 {
		t.Fatalf("after Stop: body closed %v, hits %d (want true, 1)", body.closed.Load(), srv.hits.Load())
	}
}

// TestTransportRetryAfter pins semantic 24.
func TestTransportRetryAfter(t *testing.T) {
	const retry = 30 * time.Second
	cases := []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		opts       []Option
		want       time.Duration
	}{
		{"delta-seconds", 503, func(time.Time) string { return "120" }, nil, 120 * time.Second},
		{"429 too", 429, func(time.Time) string { return "90" }, nil, 90 * time.Second},
		{"shorter than the retry timer", 503, func(time.Time) string { return "5" }, nil, 5 * time.Second},
		{"HTTP-date on the breaker's clock", 503, func(now time.Time) string { return now.Add(45 * time.Second).Format(http.TimeFormat) }, nil, 45 * time.Second},
		{"capped by the default", 503, func(time.Time) string { return "3600" }, nil, DefaultMaxRetryAfter},
		{"capped by WithMaxRetryAfter", 429, func(time.Time) string { return "600" }, []Option{WithMaxRetryAfter(90 * time.Second)}, 90 * time.Second},
		{"huge", 503, func(time.Time) string { return "99999999999999999999" }, nil, DefaultMaxRetryAfter},
		{"ignored with WithMaxRetryAfter(0)", 503, func(time.Time) string { return "120" }, []Option{WithMaxRetryAfter(0)}, retry},
		{"zero", 503, func(time.Time) string { return "0" }, nil, retry},
		{"a date in the past", 503, func(now time.Time) string { return now.Add(-time.Minute).Format(http.TimeFormat) }, nil, retry},
		{"unparsable", 503, func(time.Time) string { return "soon" }, nil, retry},
		{"negative", 503, func(time.Time) string { return "-5" }, nil, retry},
		{"not on a 500", 500, func(time.Time) string { return "120" }, nil, retry},
		{"not on a 502", 502, func(time.Time) string { return "120" }, nil, retry},
	}
	srv := newBackend(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mock := newMock()
			_, client := newTransport(t, mock, srv.Client().Transport, tc.opts...)
			u := fmt.Sprintf("%s/?status=%d&retry-after=%s", srv.URL, tc.status, url.QueryEscape(tc.retryAfter(mock.Now())))
			for i := 0; i < 2; i++ {
				if status, _, err := get(t, client, u); err != nil || status != tc.status {
					t.Fatalf("call %d: %d, %v", i+1, status, err)
				}
			}
			_, _, err := get(t, client, srv.URL)
			var oe *actor.OpenError
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if want := mock.Now().Add(tc.want); !oe.Until.Equal(want) {
				t.Fatalf("open until %v (%v from now), want %v", oe.Until, oe.Until.Sub(mock.Now()), tc.want)
			}
			if got := oe.RetryAfter(); got != tc.want {
				t.Fatalf("RetryAfter() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTransportRetryAfterOnFailedProbe: a probe that fails with Retry-After
// re-opens for the header's period.
func TestTransportRetryAfterOnFailedProbe(t *testing.T) {
	srv := newBackend(t)
	mock := newMock()
	tr, client := newTransport(t, mock, srv.Client().Transport)
	for i := 0; i < 2; i++ {
		get(t, client, srv.URL+"/?status=500")
	}
	b := breakerOf(t, tr.Group(), HostKey(mustURL(t, srv.URL)))
	events, cancel := b.Subscribe()
	defer cancel()
	mock.Add(30 * time.Second)
	if ev := waitFor(t, events, "half-open"); ev.To != actor.StateHalfOpen {
		t.Fatalf("event %+v, want half-open", ev)
	}
	if status, _, err := get(t, client, srv.URL+"/?status=503&retry-after=200"); err != nil || status != 503 {
		t.Fatalf("probe: %d, %v", status, err)
	}
	_, _, err := get(t, client, srv.URL)
	var oe *actor.OpenError
	if !errors.As(err, &oe) || !oe.Until.Equal(mock.Now().Add(200*time.Second)) {
		t.Fatalf("after the failed probe: %v; want open for 200s", err)
	}
}

func TestTransportCustomKey(t *testing.T) {
	srv := newBackend(t)
	tr, client := newTransport(t, newMock(), srv.Client().Transport,
		WithKey(func(r *http.Request) string { return r.Header.Get("X-Tenant") }))
	send := func(tenant, status string) error {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/?status="+status, nil)
		req.Header.Set("X-Tenant", tenant)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	send("a", "500")
	send("a", "500")
	if err := send("a", "200"); !errors.Is(err, actor.ErrOpen) {
		t.Fatalf("tenant a: %v, want a refusal", err)
	}
	if err := send("b", "200"); err != nil {
		t.Fatalf("tenant b on the same host: %v", err)
	}
	if n := tr.Group().Len(); n != 2 {
		t.Fatalf("%d breakers, want 2 (one per tenant)", n)
	}
}

func TestTransportCustomClassifier(t *testing.T) {
	srv := newBackend(t)
	var seen int
	tr, client := newTransport(t, newMock(), srv.Client().Transport,
		WithClassifier(func(resp *http.Response, err error) actor.Outcome {
			seen++
			if resp != nil && resp.StatusCode == http.StatusNotFound {
				return actor.Failure
			}
			if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
				return actor.Ignored
			}
			return Classify(resp, err)
		}))
	key := HostKey(mustURL(t, srv.URL))
	get(t, client, srv.URL+"/?status=404")
	assertCounted(t, breakerOf(t, tr.Group(), key), actor.Failure)
	get(t, client, srv.URL+"/?status=503")
	if c := breakerOf(t, tr.Group(), key).Counts(); c.Ignored != 1 || c.Failures != 1 {
		t.Fatalf("counts %+v: want the 503 ignored as the classifier said", c)
	}
	if seen != 2 {
		t.Fatalf("classifier asked %d times, want 2", seen)
	}
}

// TestTransportKeyCap: at the cap, with no breaker that can make room, a
// request goes through unprotected, counted and logged once at Warn.
func TestTransportKeyCap(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	logs := &records{}
	tr, client := newTransport(t, newMock(), &http.Transport{},
		WithGroupOptions(actor.WithMaxBreakers(1)), WithLogger(slog.New(logs)))
	for i := 0; i < 2; i++ {
		get(t, client, a.URL+"/?status=500") // a's breaker opens: it can never be dropped
	}
	for i := 0; i < 3; i++ {
		if status, _, err := get(t, client, b.URL); err != nil || status != 200 {
			t.Fatalf("call %d past the cap: %d, %v; want it to go through", i+1, status, err)
		}
	}
	if n := tr.Unprotected(); n != 3 {
		t.Fatalf("Unprotected() = %d, want 3", n)
	}
	if b.hits.Load() != 3 {
		t.Fatalf("%d requests reached the host past the cap, want 3", b.hits.Load())
	}
	var warns []string
	for _, msg := range logs.at(slog.LevelWarn) {
		if strings.HasPrefix(msg, "httpbreaker:") {
			warns = append(warns, msg)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("Warn records from httpbreaker: %q, want one", warns)
	}
}

func TestTransportDefaultCap(t *testing.T) {
	// Build a Transport with no options: its group must be capped. We fill
	// it with open breakers (never droppable) and expect the cap to hold.
	tr, err := NewTransport(nil, WithGroupOptions(actor.WithAllowedFails(1)), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	for i := 0; i < DefaultMaxBreakers; i++ {
		b, err := tr.Group().Get(fmt.Sprint("k", i))
		if err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		p, err := b.Permit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.ReportOutcome(actor.Failure)
	}
	if _, err := tr.Group().Get("one too many"); !errors.Is(err, actor.ErrGroupFull) {
		t.Fatalf("Get past %d open breakers: %v, want ErrGroupFull", DefaultMaxBreakers, err)
	}
}

// TestTransportLeavesTheRequestAlone: RoundTrip must not modify the request.
func TestTransportLeavesTheRequestAlone(t *testing.T) {
	srv := newBackend(t)
	_, client := newTransport(t, newMock(), srv.Client().Transport)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x?y=z", nil)
	req.Header.Set("X-A", "b")
	before, header, urlBefore := *req, req.Header.Clone(), *req.URL
	resp, err := client.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.Method != before.Method || req.Host != before.Host || *req.URL != urlBefore ||
		fmt.Sprint(req.Header) != fmt.Sprint(header) || req.Context() != before.Context() {
		t.Fatalf("the request changed: %+v, was %+v", req, before)
	}
}

type nextWithIdle struct {
	http.RoundTripper
	closed int
}

func (n *nextWithIdle) CloseIdleConnections() { n.closed++ }

func TestTransportCloseIdleConnections(t *testing.T) {
	next := &nextWithIdle{RoundTripper: http.DefaultTransport}
	tr, client := newTransport(t, newMock(), next)
	client.CloseIdleConnections()
	if next.closed != 1 {
		t.Fatalf("next's CloseIdleConnections called %d times, want 1", next.closed)
	}
	// A next without the method: nothing to call, nothing breaks.
	tr2, _ := newTransport(t, newMock(), roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, io.EOF }))
	tr2.CloseIdleConnections()
	_ = tr
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewTransportNilNext(t *testing.T) {
	tr, err := NewTransport(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	if tr.next != http.DefaultTransport {
		t.Fatalf("next = %v, want http.DefaultTransport", tr.next)
	}
}

// TestTransportNextPanics: a panic in next counts as a failure and goes on.
func TestTransportNextPanics(t *testing.T) {
	tr, _ := newTransport(t, newMock(), roundTripFunc(func(*http.Request) (*http.Response, error) { panic("boom") }))
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Fatalf("recovered %v, want the panic to go on", v)
			}
		}()
		tr.RoundTrip(req)
	}()
	assertCounted(t, breakerOf(t, tr.Group(), "http://example.test:80"), actor.Failure)
}

func TestZeroTransport(t *testing.T) {
	var tr Transport
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "http://example.test/", body)
	if resp, err := tr.RoundTrip(req); resp != nil || !errors.Is(err, actor.ErrInvalid) {
		t.Fatalf("zero Transport: %v, %v; want nil and ErrInvalid", resp, err)
	}
	if !body.closed.Load() {
		t.Fatal("the body was not closed")
	}
	tr.Stop()
	tr.CloseIdleConnections()
	if tr.Group() != nil || tr.Unprotected() != 0 {
		t.Fatal("a zero Transport has no group and no count")
	}
}
