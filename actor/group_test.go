package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// testGroup is a group on a mock clock that logs nowhere, with what the
// tests watch: each sweep's end, and every breaker the group forgets.
type testGroup[K comparable] struct {
	*Group[K]
	mock    *clock.Mock
	swept   chan struct{} // one value per finished sweep
	dropped chan K        // keys whose breaker the group forgot, while there is room

	mu        sync.Mutex
	forgotten []*Breaker // stopped when the test ends: a breaker the group forgets is not stopped
}

const testTTL = time.Minute

func newTestGroup[K comparable](t testing.TB, opts ...GroupOption) *testGroup[K] {
	t.Helper()
	tg := &testGroup[K]{
		mock:    clock.NewMock(),
		swept:   make(chan struct{}, 1024), // buffered: the sweeper must not wait for the test
		dropped: make(chan K, 4096),        // buffered: hooks must not wait for the test
	}
	quiet := WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	base := []GroupOption{WithClock(tg.mock), quiet, WithIdleTTL(testTTL), withSweepHook(func() { tg.swept <- struct{}{} })}
	g, err := NewGroup[K](append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	tg.Group = g
	g.Watch(nil, func(k K, b *Breaker) {
		tg.mu.Lock()
		tg.forgotten = append(tg.forgotten, b)
		tg.mu.Unlock()
		select {
		case tg.dropped <- k:
		default:
		}
	})
	t.Cleanup(func() {
		g.Stop()
		tg.mu.Lock()
		defer tg.mu.Unlock()
		for _, b := range tg.forgotten {
			b.Stop()
		}
	})
	return tg
}

// step advances the clock by one sweep period and waits for that sweep.
func (tg *testGroup[K]) step(t testing.TB) {
	t.Helper()
	tg.mock.Add(tg.period)
	select {
	case <-tg.swept:
	case <-time.After(guard):
		t.Fatalf("no sweep within %v of advancing the clock to %v", guard, tg.mock.Now())
	}
}

func (tg *testGroup[K]) get(t testing.TB, key K) *Breaker {
	t.Helper()
	b, err := tg.Get(key)
	if err != nil {
		t.Fatalf("Get(%v): %v", key, err)
	}
	return b
}

// has reports whether key has a breaker, without counting as a use.
func (tg *testGroup[K]) has(key K) *Breaker {
	var found *Breaker
	tg.Range(func(k K, b *Breaker) bool {
		if k == key {
			found = b
			return false
		}
		return true
	})
	return found
}

func (tg *testGroup[K]) nextDropped(t testing.TB) K {
	t.Helper()
	select {
	case k := <-tg.dropped:
		return k
	case <-time.After(guard):
		t.Fatalf("no breaker dropped within %v", guard)
	}
	var zero K
	return zero
}

func (tg *testGroup[K]) noneDropped(t testing.TB) {
	t.Helper()
	select {
	case k := <-tg.dropped:
		t.Fatalf("breaker of %v dropped", k)
	default:
	}
}

func fail(context.Context) (int, error) { return 0, errors.New("dependency failed") }
func ok(context.Context) (int, error)   { return 1, nil }

func TestGroupOneBreakerPerKey(t *testing.T) {
	tg := newTestGroup[string](t)
	var made atomic.Int32
	defer tg.Watch(func(string, *Breaker) { made.Add(1) }, nil)()

	const n = 64
	got := make([]*Breaker, n)
	var ready, wg sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			b, err := tg.Get("api.example.com")
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	for i, b := range got {
		if b == nil || b != got[0] {
			t.Fatalf("Get %d returned %p, Get 0 returned %p: want one breaker", i, b, got[0])
		}
	}
	if tg.Len() != 1 || made.Load() != 1 {
		t.Fatalf("Len() = %d, made hooks = %d; want 1 and 1", tg.Len(), made.Load())
	}
	if name := got[0].Name(); name != "api.example.com" {
		t.Errorf("Name() = %q, want the key", name)
	}
	if again := tg.get(t, "api.example.com"); again != got[0] {
		t.Errorf("a later Get returned another breaker")
	}
}

func TestGroupKeysAreIsolated(t *testing.T) {
	tg := newTestGroup[string](t, WithAllowedFails(2))
	events, cancel := tg.Subscribe()
	defer cancel()
	bad, good := tg.get(t, "bad"), tg.get(t, "good")
	ctx := context.Background()
	for range 2 {
		Call(ctx, bad, fail)
	}
	ev := nextGroupEvent(t, events)
	if ev.Key != "bad" || ev.To != StateOpen {
		t.Fatalf("event %+v, want bad opening", ev)
	}
	if _, err := Call(ctx, tg.get(t, "bad"), ok); !errors.Is(err, ErrOpen) {
		t.Fatalf("Call on bad: %v, want ErrOpen", err)
	}
	Call(ctx, good, fail) // one failure: good must count its own run, from 0
	if _, err := Call(ctx, good, ok); err != nil || good.State() != StateClosed {
		t.Fatalf("Call on good: %v, state %v; want it closed and working", err, good.State())
	}
	if c := good.Counts(); c.Failures != 1 || c.Successes != 1 || c.Rejected != 0 {
		t.Errorf("good's Counts %+v: it shares counts with bad", c)
	}
}

func TestGroupKeyOptions(t *testing.T) {
	tg := newTestGroup[int](t, WithAllowedFails(5), WithKeyOptions(func(k int) []Option {
		switch k {
		case 1:
			return []Option{WithAllowedFails(1)} // after the group's: wins
		case 2:
			return []Option{WithName("tenant-two")}
		}
		return nil
	}))
	fragile, named, plain := tg.get(t, 1), tg.get(t, 2), tg.get(t, 3)
	if named.Name() != "tenant-two" || plain.Name() != "3" || fragile.Name() != "1" {
		t.Errorf("names %q %q %q, want \"1\" \"tenant-two\" \"3\"", fragile.Name(), named.Name(), plain.Name())
	}
	Call(context.Background(), fragile, fail)
	wantState(t, fragile, StateOpen)
	for range 4 {
		Call(context.Background(), plain, fail)
	}
	wantState(t, plain, StateClosed) // the group's 5
	Call(context.Background(), plain, fail)
	wantState(t, plain, StateOpen)
}

func nextGroupEvent[K comparable](t testing.TB, events <-chan GroupEvent[K]) GroupEvent[K] {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("group events closed, want an event")
		}
		return ev
	case <-time.After(guard):
		t.Fatalf("no group event within %v", guard)
	}
	return GroupEvent[K]{}
}

func TestGroupDropsIdleBreakers(t *testing.T) {
	tg := newTestGroup[string](t)
	b := tg.get(t, "idle")
	if tg.period != testTTL/2 {
		t.Fatalf("sweep period %v, want TTL/2", tg.period)
	}
	// Sweeps at TTL/2 and TTL: not dropped before the TTL. A Get at TTL-1ns
	// would be a use; Range is not.
	tg.step(t)
	tg.mock.Add(tg.period - time.Nanosecond)
	tg.noneDropped(t)
	if tg.has("idle") != b || tg.Len() != 1 {
		t.Fatalf("dropped before the TTL")
	}
	tg.mock.Add(time.Nanosecond)
	<-tg.swept
	tg.noneDropped(t)
	// Dropped by 2×TTL (here at 1.5×TTL).
	tg.step(t)
	if k := tg.nextDropped(t); k != "idle" {
		t.Fatalf("dropped %q", k)
	}
	if tg.Len() != 0 || tg.has("idle") != nil {
		t.Fatalf("Len() = %d after the drop", tg.Len())
	}
	if tg.mock.Now().Sub(time.Unix(0, 0)) > 2*testTTL {
		t.Fatalf("dropped at %v, after 2×TTL", tg.mock.Now())
	}
	// A dropped breaker still works for whoever holds it.
	if _, err := Call(context.Background(), b, ok); err != nil {
		t.Fatalf("Call on the dropped breaker: %v", err)
	}
	// No sweeper while the group is empty.
	tg.mu.Lock()
	armed := tg.armed
	tg.mu.Unlock()
	if armed {
		t.Errorf("a sweep is armed while the group is empty")
	}
	if fresh := tg.get(t, "idle"); fresh == b {
		t.Fatalf("Get after the drop returned the dropped breaker")
	}
}

func TestGroupUseKeepsBreakers(t *testing.T) {
	tg := newTestGroup[string](t)
	byGet, byCall := tg.get(t, "get"), tg.get(t, "call")
	tg.get(t, "unused")
	// Use each in its own way every TTL/2 for 5×TTL: Get, or Call on the
	// breaker held since the start (noticed at sweeps through its Counts).
	for range 10 {
		tg.get(t, "get")
		if _, err := Call(context.Background(), byCall, ok); err != nil {
			t.Fatal(err)
		}
		tg.step(t)
	}
	if k := tg.nextDropped(t); k != "unused" {
		t.Fatalf("dropped %q, want unused", k)
	}
	tg.noneDropped(t)
	if tg.has("get") != byGet || tg.has("call") != byCall {
		t.Fatalf("a breaker in use was dropped")
	}
	// A permit noticed late: its breaker still goes within 2×TTL of it.
	at := tg.mock.Now()
	for tg.Len() > 0 {
		if tg.mock.Now().Sub(at) > 2*testTTL {
			t.Fatalf("breakers last used at %v still kept at %v", at, tg.mock.Now())
		}
		tg.step(t)
	}
	if tg.mock.Now().Sub(at) < testTTL {
		t.Fatalf("breakers used at %v dropped at %v, before the TTL", at, tg.mock.Now())
	}
}

func TestGroupNeverDropsUnhealthyBreakers(t *testing.T) {
	tg := newTestGroup[string](t, WithAllowedFails(3), WithKeyOptions(func(k string) []Option {
		switch k {
		case "open":
			return []Option{WithAllowedFails(1), WithRetryTimer(24 * time.Hour)}
		case "half-open", "probing":
			return []Option{WithAllowedFails(1), WithRetryTimer(testTTL / 2), WithProbeTimeout(24 * time.Hour)}
		}
		return nil
	}), WithMaxBreakers(5))
	ctx := context.Background()
	events, cancel := tg.Subscribe()
	defer cancel()
	keep := map[string]*Breaker{}
	for _, k := range []string{"open", "half-open", "probing", "failing"} {
		keep[k] = tg.get(t, k)
		Call(ctx, keep[k], fail)
	}
	tg.get(t, "healthy")
	tg.step(t) // the retry timers fire at TTL/2 too
	halfOpen := map[string]bool{}
	for len(halfOpen) < 2 {
		if ev := nextGroupEvent(t, events); ev.To == StateHalfOpen {
			halfOpen[ev.Key] = true
		}
	}
	probe := permit(t, keep["probing"])
	defer probe.Report(nil)

	for range 20 { // 10×TTL
		tg.step(t)
	}
	if k := tg.nextDropped(t); k != "healthy" {
		t.Fatalf("dropped %q, want healthy", k)
	}
	tg.noneDropped(t)
	for k, b := range keep {
		if tg.has(k) != b {
			t.Errorf("%s breaker (state %v, %d failures) dropped", k, b.State(), b.Counts().ConsecutiveFailures)
		}
	}
	// Not for the cap either: fill the group with unhealthy breakers.
	for range 3 {
		Call(ctx, tg.get(t, "new"), fail)
	}
	if _, err := tg.Get("newer"); !errors.Is(err, ErrGroupFull) {
		t.Errorf("Get beyond the cap: %v, want ErrGroupFull", err)
	}
}

func TestGroupCapEvictsLeastRecentlyUsed(t *testing.T) {
	tg := newTestGroup[string](t, WithMaxBreakers(3), WithAllowedFails(1))
	a := tg.get(t, "a")
	tg.step(t)
	tg.get(t, "b")
	tg.step(t)
	tg.get(t, "c")
	tg.get(t, "a") // a is now as recent as c; b is the least recently used
	tg.get(t, "d")
	if k := tg.nextDropped(t); k != "b" {
		t.Fatalf("evicted %q, want b", k)
	}
	if tg.Len() != 3 || tg.has("a") != a || tg.has("b") != nil {
		t.Fatalf("Len() = %d; a kept: %v; b gone: %v", tg.Len(), tg.has("a") == a, tg.has("b") == nil)
	}
	// Full of open breakers: nothing may go, so nothing comes in.
	for _, k := range []string{"a", "c", "d"} {
		Call(context.Background(), tg.get(t, k), fail)
	}
	if b, err := tg.Get("e"); !errors.Is(err, ErrGroupFull) || b != nil {
		t.Fatalf("Get with every member open: %v, %v; want nil, ErrGroupFull", b, err)
	}
	if tg.Len() != 3 {
		t.Fatalf("Len() = %d after ErrGroupFull", tg.Len())
	}
	tg.noneDropped(t)
}

func TestGroupCapSeesPermitsAndReports(t *testing.T) {
	for _, sweep := range []bool{false, true} {
		t.Run(fmt.Sprintf("sweep=%v", sweep), func(t *testing.T) {
			tg := newTestGroup[string](t, WithMaxBreakers(3))
			x := tg.get(t, "x")
			tg.get(t, "y")
			tg.get(t, "z")
			tg.step(t)
			// x is used through the breaker a caller holds, not through Get:
			// the group sees it in x's Counts, at a sweep or at eviction.
			if _, err := Call(context.Background(), x, ok); err != nil {
				t.Fatal(err)
			}
			if sweep {
				tg.step(t)
			}
			tg.get(t, "w")
			if k := tg.nextDropped(t); k != "y" {
				t.Fatalf("evicted %q, want y (x was used, y is older than z)", k)
			}
		})
	}
}

func TestGroupRangeAndRemove(t *testing.T) {
	tg := newTestGroup[string](t)
	want := map[string]*Breaker{}
	for _, k := range []string{"a", "b", "c"} {
		want[k] = tg.get(t, k)
	}
	seen := map[string]*Breaker{}
	tg.Range(func(k string, b *Breaker) bool {
		if seen[k] != nil {
			t.Errorf("Range visited %q twice", k)
		}
		seen[k] = b
		// The function may change the group.
		tg.get(t, "made-in-range")
		if k == "a" {
			tg.Remove("b")
		}
		return true
	})
	if seen["a"] != want["a"] || seen["c"] != want["c"] {
		t.Fatalf("Range saw %v, want a and c among them", seen)
	}
	stops := 0
	tg.Range(func(string, *Breaker) bool { stops++; return false })
	if stops != 1 {
		t.Errorf("Range went on after false: %d calls", stops)
	}

	a := want["a"]
	p := permit(t, a) // a call in flight while a is removed
	if !tg.Remove("a") || tg.Remove("a") {
		t.Fatalf("Remove: want true, then false")
	}
	if !p.Report(nil) {
		t.Fatalf("the call in flight could not report: Remove stopped the breaker")
	}
	if _, err := Call(context.Background(), a, ok); err != nil {
		t.Fatalf("Call on a removed breaker: %v", err)
	}
	if tg.has("a") != nil || tg.Len() != 2 { // c and made-in-range
		t.Fatalf("after Remove: has a %v, Len %d", tg.has("a") != nil, tg.Len())
	}
	if fresh := tg.get(t, "a"); fresh == a {
		t.Fatalf("Get after Remove returned the removed breaker")
	}
	if tg.Remove("never") {
		t.Errorf("Remove of an unknown key: true")
	}
}

func TestGroupEvents(t *testing.T) {
	tg := newTestGroup[string](t, WithAllowedFails(1), WithRetryTimer(testTTL/2))
	events, cancel := tg.Subscribe()
	defer cancel()
	ctx := context.Background()
	a, b := tg.get(t, "a"), tg.get(t, "b")
	Call(ctx, a, fail)
	Call(ctx, b, fail)
	tg.step(t) // both half-open
	got := map[string][]Event{}
	for range 4 {
		ev := nextGroupEvent(t, events)
		if ev.Breaker != ev.Key {
			t.Errorf("event of breaker %q with key %q", ev.Breaker, ev.Key)
		}
		got[ev.Key] = append(got[ev.Key], ev.Event)
	}
	for _, k := range []string{"a", "b"} {
		evs := got[k]
		if len(evs) != 2 || evs[0].Seq != 1 || evs[0].To != StateOpen || evs[1].Seq != 2 || evs[1].To != StateHalfOpen {
			t.Errorf("key %s: events %+v, want Seq 1 open then Seq 2 half-open", k, evs)
		}
	}
	// A removed breaker no longer speaks for its key; a fresh one starts at 1.
	tg.Remove("a")
	if _, err := Call(ctx, a, ok); err != nil { // the probe closes it
		t.Fatal(err)
	}
	fresh := tg.get(t, "a")
	Call(ctx, fresh, fail)
	ev := nextGroupEvent(t, events)
	if ev.Key != "a" || ev.Seq != 1 || ev.To != StateOpen {
		t.Fatalf("event %+v, want the fresh breaker's Seq 1 opening (not the removed one's closing)", ev)
	}
	cancel()
	cancel()
	if _, open := <-events; open {
		t.Fatalf("events still open after cancel")
	}
}

// An event the removed breaker's loop was sending when Remove came is
// delivered before Remove returns, never after: so never after an event of
// the key's next breaker either (per-key order).
func TestGroupRemoveWaitsForEventInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := withOfferHook(func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	tg := newTestGroup[string](t, WithAllowedFails(1), hook)
	events, cancel := tg.Subscribe()
	defer cancel()
	old := tg.get(t, "a")
	tripped := make(chan struct{})
	go func() {
		defer close(tripped)
		Call(context.Background(), old, fail) // its loop stops in the hook, with the opening found deliverable
	}()
	select {
	case <-entered:
	case <-time.After(guard):
		t.Fatal("the opening was never offered")
	}
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		tg.Remove("a")
	}()
	select {
	case <-removed:
		close(release)
		t.Fatal("Remove returned while an event of the breaker it removed was still to be delivered")
	case <-time.After(100 * time.Millisecond): // Remove waits for the send, as it must
	}
	close(release)
	for _, c := range []chan struct{}{removed, tripped} {
		select {
		case <-c:
		case <-time.After(guard):
			t.Fatal("Remove or the trip did not return once the send was let go")
		}
	}
	if ev := nextGroupEvent(t, events); ev.Key != "a" || ev.Seq != 1 || ev.To != StateOpen {
		t.Fatalf("event %+v, want the removed breaker's opening", ev)
	}
	fresh := tg.get(t, "a")
	Call(context.Background(), fresh, fail)
	if ev := nextGroupEvent(t, events); ev.Key != "a" || ev.Seq != 1 || ev.To != StateOpen {
		t.Fatalf("event %+v, want the fresh breaker's opening", ev)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func TestGroupEventsDropOldest(t *testing.T) {
	tg := newTestGroup[int](t, WithAllowedFails(1))
	events, cancel := tg.Subscribe()
	defer cancel()
	const n = SubscriberBuffer + 8
	for k := range n {
		Call(context.Background(), tg.get(t, k), fail) // each returns once its event is offered
	}
	for i := range SubscriberBuffer {
		ev := nextGroupEvent(t, events)
		if want := i + n - SubscriberBuffer; ev.Key != want {
			t.Fatalf("event %d is key %d's, want %d's: the oldest go first", i, ev.Key, want)
		}
	}
	select {
	case ev := <-events:
		t.Fatalf("more than SubscriberBuffer events buffered: %+v", ev)
	default:
	}
}

func TestGroupWatch(t *testing.T) {
	tg := newTestGroup[string](t)
	tg.get(t, "before")
	var mu sync.Mutex
	var log []string
	record := func(what string) func(string, *Breaker) {
		return func(k string, b *Breaker) {
			if b == nil || b.Name() != k {
				t.Errorf("%s hook: key %q, breaker %v", what, k, b)
			}
			mu.Lock()
			log = append(log, what+" "+k)
			mu.Unlock()
		}
	}
	cancel := tg.Watch(record("made"), record("dropped"))
	mu.Lock()
	if strings.Join(log, ",") != "made before" {
		t.Errorf("after Watch: %q, want made for the breaker already there", log)
	}
	mu.Unlock()
	tg.get(t, "later")
	tg.Remove("before")
	tg.get(t, "before")
	for tg.Len() > 0 { // idle drops
		tg.step(t)
	}
	cancel()
	cancel()
	tg.get(t, "after-cancel")
	mu.Lock()
	defer mu.Unlock()
	want := "made before,made later,dropped before,made before"
	got := strings.Join(log, ",")
	if !strings.HasPrefix(got, want) || len(log) != 6 ||
		!strings.Contains(got[len(want):], "dropped later") || !strings.Contains(got[len(want):], "dropped before") {
		t.Errorf("hooks: %q, want %q then both dropped, nothing after cancel", got, want)
	}
}

// Hooks queued together run as one batch, with the group's lock released
// once; a hook that panics must not lose the rest of its batch: they run
// first at the next membership change, each exactly once, in order.
func TestGroupWatchPanickingHookKeepsTheRestOfItsBatch(t *testing.T) {
	tg := newTestGroup[string](t)
	for _, k := range []string{"a", "b", "c", "d"} {
		tg.get(t, k)
	}
	var seen []string // hooks run one at a time: no lock needed
	cancel := func() {}
	func() {
		defer func() {
			if r := recover(); r != "hook failed" {
				t.Errorf("Watch: recovered %v, want the made hook's panic", r)
			}
		}()
		cancel = tg.Watch(func(k string, _ *Breaker) {
			seen = append(seen, k)
			if k == "b" {
				panic("hook failed")
			}
		}, nil)
	}()
	defer cancel()
	if got := strings.Join(seen, ","); got != "a,b" {
		t.Fatalf("made hooks before the panic went on: %q, want a,b", got)
	}
	tg.get(t, "e") // the next change runs what is left, then its own
	if got := strings.Join(seen, ","); got != "a,b,c,d,e" {
		t.Errorf("made hooks: %q, want a,b,c,d,e", got)
	}
}

func TestGroupWatchHooksMayUseTheGroup(t *testing.T) {
	tg := newTestGroup[string](t)
	var made []string
	defer tg.Watch(func(k string, _ *Breaker) {
		made = append(made, k) // hooks run one at a time: no lock needed
		if !strings.HasSuffix(k, "/child") {
			tg.get(t, k+"/child") // made after this hook returns
			tg.Range(func(string, *Breaker) bool { return true })
		}
	}, func(k string, _ *Breaker) {
		tg.Remove(k + "/child")
	})()
	tg.get(t, "a")
	tg.Remove("a")
	if got := strings.Join(made, ","); got != "a,a/child" {
		t.Errorf("made %q", got)
	}
	if tg.Len() != 0 {
		t.Errorf("Len() = %d, want 0: the dropped hook removed a/child", tg.Len())
	}
}

func TestGroupStop(t *testing.T) {
	tg := newTestGroup[string](t)
	events, _ := tg.Subscribe()
	a, b := tg.get(t, "a"), tg.get(t, "b")
	var dropped atomic.Int32
	tg.Watch(nil, func(string, *Breaker) { dropped.Add(1) })
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); tg.Stop() }()
	}
	within(t, "Stop", wg.Wait)
	tg.Stop()
	for _, br := range []*Breaker{a, b} {
		if _, err := Call(context.Background(), br, ok); !errors.Is(err, ErrStopped) {
			t.Errorf("Call after the group's Stop: %v, want ErrStopped", err)
		}
	}
	if br, err := tg.Get("a"); !errors.Is(err, ErrStopped) || br != nil {
		t.Errorf("Get after Stop: %v, %v; want nil, ErrStopped", br, err)
	}
	if tg.Len() != 0 || dropped.Load() != 2 || tg.Remove("b") {
		t.Errorf("after Stop: Len %d, dropped hooks %d, Remove true", tg.Len(), dropped.Load())
	}
	tg.Range(func(k string, _ *Breaker) bool { t.Errorf("Range visited %q after Stop", k); return true })
	if _, open := <-events; open {
		t.Errorf("subscription open after Stop")
	}
	if late, cancel := tg.Subscribe(); true {
		if _, open := <-late; open {
			t.Errorf("Subscribe after Stop: open channel")
		}
		cancel()
	}
	tg.Watch(func(string, *Breaker) { t.Errorf("made after Stop") }, nil)()
	tg.mock.Add(10 * testTTL) // no sweep runs after Stop
	select {
	case <-tg.swept:
		t.Errorf("a sweep ran after Stop")
	default:
	}
}

func TestGroupStopWaitsForSweep(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	tg := newTestGroup[string](t, WithKeyOptions(func(string) []Option { return nil }))
	tg.get(t, "a")
	// Hold the sweep in the dropped hook of its idle drop.
	tg.Watch(nil, func(string, *Breaker) { close(entered); <-release })
	for range 2 {
		tg.step(t)
	}
	tg.mock.Add(tg.period)
	<-entered
	stopped := make(chan struct{})
	go func() { tg.Stop(); close(stopped) }()
	waitBlocked(t, "actor.(*Group[...]).Stop(", 1)
	select {
	case <-stopped:
		t.Fatal("Stop returned while the sweep was still running a hook")
	default:
	}
	close(release)
	within(t, "Stop", func() { <-stopped })
}

func TestGroupBadInput(t *testing.T) {
	var nilGroup *Group[string]
	if b, err := nilGroup.Get("a"); b != nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Get: %v, %v", b, err)
	}
	nilGroup.Stop()
	nilGroup.Range(func(string, *Breaker) bool { t.Error("nil Range visited"); return true })
	events, cancel := nilGroup.Subscribe()
	cancel()
	if _, open := <-events; open || nilGroup.Len() != 0 || nilGroup.Remove("a") {
		t.Errorf("nil group: Subscribe open, Len or Remove")
	}
	nilGroup.Watch(func(string, *Breaker) {}, nil)()
	var zero Group[string]
	if _, err := zero.Get("a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Group Get: %v", err)
	}

	for _, tc := range []struct {
		name string
		opts []GroupOption
		want string
	}{
		{"nil", []GroupOption{nil}, "group option 1 of 1 is nil"},
		{"ttl", []GroupOption{WithIdleTTL(0)}, "WithIdleTTL(0s)"},
		{"max", []GroupOption{WithMaxBreakers(-1)}, "WithMaxBreakers(-1)"},
		{"breaker option", []GroupOption{WithAllowedFails(0)}, "WithAllowedFails(0)"},
		{"name", []GroupOption{WithName("x")}, "WithName(\"x\") given to NewGroup"},
		{"key type", []GroupOption{WithKeyOptions(func(int) []Option { return nil })}, "func(int) []actor.Option, but the group's keys are string"},
		{"nil key options", []GroupOption{WithKeyOptions[string](nil)}, "WithKeyOptions(nil)"},
		{"clock", []GroupOption{WithClock(nil)}, "WithClock(nil)"},
	} {
		g, err := NewGroup[string](tc.opts...)
		if g != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: NewGroup = %v, %v; want nil and an error containing %q", tc.name, g, err, tc.want)
		}
	}

	// Invalid per-key options: that key's Get fails, naming it; others work.
	tg := newTestGroup[string](t, WithKeyOptions(func(k string) []Option {
		switch k {
		case "bad":
			return []Option{WithAllowedFails(-1)}
		case "clock":
			return []Option{WithClock(clock.NewMock())}
		case "nil":
			return []Option{nil}
		}
		return nil
	}))
	for _, k := range []string{"bad", "clock", "nil"} {
		b, err := tg.Get(k)
		if b != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "group key "+k+":") {
			t.Errorf("Get(%q) = %v, %v; want an error naming the key", k, b, err)
		}
	}
	if tg.Len() != 0 {
		t.Errorf("Len() = %d after failed Gets: something was stored", tg.Len())
	}
	tg.get(t, "good")

	// Options valid alone that clash with the group's (a backoff cap below
	// the retry timer) fail only when the breaker is made: with the group
	// full, that must not have evicted a member to make room first.
	full := newTestGroup[string](t, WithMaxBreakers(1), WithRetryTimer(10*time.Second), WithKeyOptions(func(k string) []Option {
		if k == "clash" {
			return []Option{WithBackoff(5 * time.Second)}
		}
		return nil
	}))
	a := full.get(t, "a")
	if b, err := full.Get("clash"); b != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "group key clash:") {
		t.Errorf("Get(clash) = %v, %v; want an error naming the key", b, err)
	}
	if full.Len() != 1 || full.has("a") != a {
		t.Errorf("after the failed Get: Len() = %d, a kept %v; want a still there", full.Len(), full.has("a") == a)
	}
	full.noneDropped(t)
}

// TestGroupChurn: 32 goroutines Get, Call and Remove over 1,000 keys while
// the clock advances, sweeps drop idle breakers and the cap evicts. The
// Counts of every breaker the group ever made add up to what the callers
// saw: Call for half the calls (a Call's report may be stale, so its outcome
// is counted only as a bound), Permit and Report for the other half (Report
// says whether it was applied).
func TestGroupChurn(t *testing.T) {
	var made sync.Map // every breaker the group ever made
	tg := newTestGroup[int](t, WithMaxBreakers(600), WithAllowedFails(3), WithRetryTimer(testTTL/4),
		WithProbeTimeout(24*time.Hour), WithIdleTTL(4*time.Second))
	defer tg.Watch(func(k int, b *Breaker) { made.Store(b, k) }, nil)()

	const goroutines, keys = 32, 1000
	var (
		called, calledOK, refused, full   atomic.Uint64 // Call: ran fn, of which fn succeeded; refusals of both kinds
		granted, appliedOK, appliedFailed atomic.Uint64 // Permit: granted; reports applied
	)
	// budget is how many operations the goroutines may still start: the
	// clock's loop below hands out perStep at each step, so the work (and
	// the breakers made, all kept in made) is bounded whatever the speed of
	// the machine and however long the mock clock takes to fire timers.
	const perStep = 500
	var budget atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if budget.Add(-1) < 0 {
					budget.Add(1)
					runtime.Gosched() // wait for the clock's next step
					continue
				}
				k := rng.Intn(keys)
				if rng.Intn(50) == 0 {
					tg.Remove(k)
					continue
				}
				b, err := tg.Get(k)
				if errors.Is(err, ErrGroupFull) {
					full.Add(1)
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				fn := ok
				if k%10 == 0 && rng.Intn(2) == 0 { // a tenth of the keys fail half the time
					fn = fail
				}
				if rng.Intn(2) == 0 {
					switch _, err := Call(context.Background(), b, fn); {
					case errors.Is(err, ErrOpen):
						refused.Add(1)
					case err == nil:
						calledOK.Add(1)
						called.Add(1)
					default:
						called.Add(1)
					}
					continue
				}
				p, err := b.Permit(context.Background())
				if err != nil {
					if !errors.Is(err, ErrOpen) {
						t.Error(err)
						return
					}
					refused.Add(1)
					continue
				}
				granted.Add(1)
				_, err = fn(context.Background())
				if p.Report(err) {
					if err == nil {
						appliedOK.Add(1)
					} else {
						appliedFailed.Add(1)
					}
				}
			}
		}()
	}
	for range 200 { // the clock goes on while they run: 25×TTL
		tg.mock.Add(tg.period / 4)
		budget.Add(perStep)
		for budget.Load() > 0 && !t.Failed() {
			runtime.Gosched() // let this step's calls start at this time
		}
		select {
		case <-tg.swept:
		default:
		}
	}
	close(stop)
	wg.Wait()
	// A Get that made a breaker while another goroutine (a sweep, say) was
	// running hooks left its made hook to that goroutine.
	tg.flushHooks()

	var c Counts
	breakers := 0
	made.Range(func(b, _ any) bool {
		bc := b.(*Breaker).Counts()
		c.Requests += bc.Requests
		c.Rejected += bc.Rejected
		c.Successes += bc.Successes
		c.Failures += bc.Failures
		c.Ignored += bc.Ignored
		breakers++
		return true
	})
	calledFailed := called.Load() - calledOK.Load()
	if c.Requests != called.Load()+granted.Load() || c.Rejected != refused.Load() || c.Ignored != 0 ||
		c.Successes < appliedOK.Load() || c.Successes > appliedOK.Load()+calledOK.Load() ||
		c.Failures < appliedFailed.Load() || c.Failures > appliedFailed.Load()+calledFailed {
		t.Errorf("breakers counted %+v; callers saw: Call ran %d (%d ok), Permit granted %d (applied %d ok, %d failed), %d refused",
			c, called.Load(), calledOK.Load(), granted.Load(), appliedOK.Load(), appliedFailed.Load(), refused.Load())
	}
	if tg.Len() > 600 {
		t.Errorf("Len() = %d over the cap", tg.Len())
	}
	t.Logf("%d calls, %d refused, %d ErrGroupFull, %d breakers made, %d members at the end",
		called.Load()+granted.Load(), refused.Load(), full.Load(), breakers, tg.Len())
}

// A Get that found a member in the index just before it was dropped may put
// it in the front cache after the drop emptied its slot: the cache must not
// hand it out.
func TestGroupFrontCacheIgnoresDroppedMembers(t *testing.T) {
	tg := newTestGroup[string](t)
	old := tg.get(t, "k")
	slot := tg.front.slot("k")
	m := slot.Load()
	if m == nil {
		tg.get(t, "k") // the first Get made it; this one finds it in the index
		if m = slot.Load(); m == nil {
			t.Fatal("a Get of a present key did not fill its empty slot")
		}
	}
	tg.Remove("k")
	if slot.Load() != nil {
		t.Fatal("Remove left the member in the front cache")
	}
	slot.Store(m) // the late refill
	if b := tg.get(t, "k"); b == old {
		t.Fatal("Get returned the removed breaker from the front cache")
	}
}

func TestGroupClockIsTheBreakersClock(t *testing.T) {
	mock := clock.NewMock()
	g, err := NewGroup[string](WithClock(mock))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if g.Clock() != clock.Clock(mock) {
		t.Fatalf("Clock() = %v, want the mock given with WithClock", g.Clock())
	}
	var nilGroup *Group[string]
	if nilGroup.Clock() != nil {
		t.Fatal("nil Group's Clock() != nil")
	}
}
