package actor

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// spreadOf returns b's per-P counters, nil while it has not spread.
func spreadOf(b *Breaker) []cell {
	if h := b.counts.hot.Load(); h != nil {
		return h.cells
	}
	return nil
}

// TestSpreadSampling pins when a breaker spreads its clean-Call counter:
// spreadStrikes samples in a row from another P than the one before, each
// within hotWindow of it, and not otherwise.
func TestSpreadSampling(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, tc := range []struct {
		name   string
		ps     []int32
		gaps   []int64 // before each sample after the first
		spread bool
	}{
		{"busy from alternating Ps", []int32{0, 1, 0}, []int64{ms, ms}, true},
		{"busy from three Ps", []int32{2, 0, 1}, []int64{ms, ms}, true},
		{"one P", []int32{1, 1, 1, 1, 1}, []int64{ms, ms, ms, ms}, false},
		{"one change is not enough", []int32{0, 1}, []int64{ms}, false},
		{"a same-P sample resets the run", []int32{0, 1, 1, 0}, []int64{ms, ms, ms}, false},
		{"calls too slow", []int32{0, 1, 0, 1}, []int64{101 * ms, 101 * ms, 101 * ms}, false},
		{"a slow gap resets the run", []int32{0, 1, 0, 1}, []int64{ms, 101 * ms, ms}, false},
		{"at the window's edge", []int32{0, 1, 0}, []int64{100 * ms, 100 * ms}, true},
		{"after a reset", []int32{0, 1, 1, 0, 1}, []int64{ms, ms, ms, ms}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := start(t)
			now := int64(1e18)
			for i, p := range tc.ps {
				if i > 0 {
					now += tc.gaps[i-1]
				}
				b.sample(p, now)
			}
			h := b.counts.hot.Load()
			if h == nil {
				t.Fatal("no sampling state after samples")
			}
			want := tc.spread && runtime.GOMAXPROCS(0) >= 2 // one P: nothing to spread over
			if got := h.cells != nil; got != want {
				t.Fatalf("spread = %v, want %v (GOMAXPROCS %d)", got, want, runtime.GOMAXPROCS(0))
			}
			if want && len(h.cells) != min(runtime.GOMAXPROCS(0), maxCells) {
				t.Fatalf("%d cells, want GOMAXPROCS (%d)", len(h.cells), runtime.GOMAXPROCS(0))
			}
		})
	}
}

// TestSpreadNeedsTwoPs: with one P there is nothing to spread over.
func TestSpreadNeedsTwoPs(t *testing.T) {
	b, _ := start(t)
	b.sample(0, 0)
	b.spread(b.counts.hot.Load(), 1)
	if spreadOf(b) != nil {
		t.Fatal("spread over one P")
	}
	b.spread(b.counts.hot.Load(), 1000)
	if n := len(spreadOf(b)); n != maxCells {
		t.Fatalf("%d cells for 1,000 Ps, want at most %d", n, maxCells)
	}
}

// TestSpreadCountsExact: Counts (semantic 13) and the group's use count
// add every P's counter, before and after a breaker spreads, while Calls
// run on every P; failures, refusals and two-step reports keep their own
// counters.
func TestSpreadCountsExact(t *testing.T) {
	b, _ := start(t, WithAllowedFails(1_000_000))
	ctx := context.Background()
	ok := func(context.Context) (int, error) { return 1, nil }
	fail := func(context.Context) (int, error) { return 0, errors.New("down") }
	const workers, each = 8, 5_000
	var wg sync.WaitGroup
	round := func() {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					fn := ok
					if i%100 == 99 {
						fn = fail
					}
					if _, err := Call(ctx, b, fn); err != nil && err.Error() != "down" {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	round() // may spread by itself, on a machine with more than one P
	before := b.useCount()
	b.spread(b.counts.hot.Load(), 4) // unless it has: spread over as many counters as a 4-P machine has
	if len(spreadOf(b)) < 2 {
		t.Fatalf("%d cells after spreading", len(spreadOf(b)))
	}
	if after := b.useCount(); after != before {
		t.Fatalf("spreading changed the use count: %d, then %d", before, after)
	}
	round()
	p := permit(t, b)
	if !p.ReportOutcome(Success) {
		t.Fatal("two-step report not applied")
	}
	const total = 2 * workers * each
	wantCounts(t, b, Counts{
		Requests:            total + 1,
		Successes:           total*99/100 + 1,
		Failures:            total / 100,
		ConsecutiveFailures: 0,
	})
	var cells uint64
	for i := range spreadOf(b) {
		cells += spreadOf(b)[i].n.Load()
	}
	if cells == 0 {
		t.Fatal("no clean Call was counted on the per-P counters after spreading")
	}
}

// TestSpreadBusyBreaker: clean Calls from several goroutines, as fast as
// they come, spread the breaker when it has more than one P, and the counts
// stay exact.
func TestSpreadBusyBreaker(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS ≥ 2")
	}
	b, _ := start(t)
	ctx := context.Background()
	ok := func(context.Context) (int, error) { return 1, nil }
	var calls uint64
	deadline := time.Now().Add(guard)
	for spreadOf(b) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("not spread after %d clean Calls from %d goroutines", calls, 2*runtime.GOMAXPROCS(0))
		}
		var wg sync.WaitGroup
		n := 2 * runtime.GOMAXPROCS(0)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 * sampleEvery {
					if _, err := Call(ctx, b, ok); err != nil {
						t.Error(err)
						return
					}
					runtime.Gosched() // share the Ps
				}
			}()
		}
		wg.Wait()
		calls += uint64(n * 4 * sampleEvery)
	}
	wantCounts(t, b, Counts{Requests: calls, Successes: calls})
}
