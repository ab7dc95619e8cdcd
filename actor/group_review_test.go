package actor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Every member used since it took its place in the LRU list is still
// droppable: the cap must make room, not report ErrGroupFull.
func TestGroupCapEvictsWhenEveryMemberWasUsedSinceFiled(t *testing.T) {
	tg := newTestGroup[string](t, WithMaxBreakers(2))
	tg.get(t, "a")
	tg.get(t, "b")
	tg.step(t)
	tg.get(t, "a")
	tg.get(t, "b")
	if _, err := tg.Get("c"); err != nil {
		t.Fatalf("Get(c) with two healthy members: %v; want the least recently used dropped", err)
	}
	if k := tg.nextDropped(t); k != "a" {
		t.Fatalf("evicted %q, want a", k)
	}
}

// Forced open, disabled, and failures in the failure-rate window (with no
// consecutive failures) are unhealthy too: never dropped, not for the cap.
func TestGroupNeverDropsForcedDisabledOrWindowFailing(t *testing.T) {
	tg := newTestGroup[string](t, WithMaxBreakers(3), WithKeyOptions(func(k string) []Option {
		if k == "window" {
			return []Option{WithFailureRate(0.9, 100, 24*time.Hour)}
		}
		return nil
	}))
	ctx := context.Background()
	keep := map[string]*Breaker{"forced": tg.get(t, "forced"), "disabled": tg.get(t, "disabled"), "window": tg.get(t, "window")}
	if err := keep["forced"].ForceOpen(); err != nil {
		t.Fatal(err)
	}
	if err := keep["disabled"].Disable(); err != nil {
		t.Fatal(err)
	}
	Call(ctx, keep["window"], fail)
	if _, err := Call(ctx, keep["window"], ok); err != nil {
		t.Fatal(err)
	}
	if c := keep["window"].Counts(); c.ConsecutiveFailures != 0 || c.Failures != 1 {
		t.Fatalf("window breaker counts %+v", c)
	}
	for range 20 { // 10×TTL
		tg.step(t)
	}
	tg.noneDropped(t)
	for k, b := range keep {
		if tg.has(k) != b {
			t.Errorf("%s breaker (state %v) dropped", k, b.State())
		}
	}
	if _, err := tg.Get("more"); !errors.Is(err, ErrGroupFull) {
		t.Errorf("Get beyond the cap: %v, want ErrGroupFull", err)
	}
}

// 64 concurrent Gets of a new key make one breaker, and made runs once.
func TestGroupConcurrentGetMakesOne(t *testing.T) {
	for range 20 {
		tg := newTestGroup[string](t)
		var made atomic.Int32
		tg.Watch(func(string, *Breaker) { made.Add(1) }, nil)
		start := make(chan struct{})
		got := make(chan *Breaker, 64)
		for range 64 {
			go func() {
				<-start
				b, err := tg.Get("k")
				if err != nil {
					t.Error(err)
				}
				got <- b
			}()
		}
		close(start)
		first := <-got
		for range 63 {
			if b := <-got; b != first {
				t.Fatal("two breakers for one key")
			}
		}
		tg.Stop()
		if made.Load() != 1 || tg.Len() != 0 {
			t.Fatalf("made %d times", made.Load())
		}
	}
}

// Range's function may call Get (of the visited key and others) and Remove.
func TestGroupRangeMayGetAndRemove(t *testing.T) {
	tg := newTestGroup[int](t)
	for i := range 10 {
		tg.get(t, i)
	}
	seen := map[int]int{}
	tg.Range(func(k int, b *Breaker) bool {
		seen[k]++
		if again := tg.get(t, k); again != b {
			t.Errorf("Get(%d) in Range returned another breaker", k)
		}
		if !tg.Remove(k) {
			t.Errorf("Remove(%d) in Range = false", k)
		}
		tg.get(t, 100+k)
		return true
	})
	for k, n := range seen {
		if n != 1 {
			t.Errorf("key %d visited %d times", k, n)
		}
	}
}

// A fresh breaker for a removed key starts again at Seq 1, and the
// removed breaker's transitions no longer reach group subscribers.
func TestGroupEventsFreshSeqAfterRemove(t *testing.T) {
	tg := newTestGroup[string](t, WithAllowedFails(1))
	events, cancel := tg.Subscribe()
	defer cancel()
	old := tg.get(t, "k")
	Call(context.Background(), old, fail)
	if ev := nextGroupEvent(t, events); ev.Key != "k" || ev.Seq != 1 || ev.To != StateOpen {
		t.Fatalf("first event %+v", ev)
	}
	if !tg.Remove("k") {
		t.Fatal("Remove = false")
	}
	_ = old.Reset() // a transition of the forgotten breaker: not delivered
	fresh := tg.get(t, "k")
	Call(context.Background(), fresh, fail)
	if ev := nextGroupEvent(t, events); ev.Key != "k" || ev.Seq != 1 || ev.To != StateOpen {
		t.Fatalf("fresh breaker's event %+v, want Seq 1 open", ev)
	}
	old.Stop()
}
