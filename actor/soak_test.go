package actor

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The soak test (issue 5): minutes of random traffic on the real clock, with
// timers short enough that the breaker goes round its states thousands of
// times, while memory and goroutines are sampled. Skipped unless asked for:
//
//	CIRCUITBREAKER_SOAK=1 go test -run TestSoak -v ./actor      # 5 minutes
//	CIRCUITBREAKER_SOAK=30m go test -run TestSoak -timeout 40m -v ./actor
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	noLeaks(t)

	b, err := New(WithName("soak"), WithRetryTimer(2*time.Millisecond), WithProbeTimeout(time.Millisecond),
		WithAllowedErrors(errNotFound), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer stopWithin(t, b)

	errs := &stressErrors{t: t}
	var ops, transitions atomic.Int64
	stop := make(chan struct{})
	// Workers hold pause for reading while they work, and let go of it
	// between batches: the sampler takes it to measure a heap that nothing
	// is allocating into.
	var pause sync.RWMutex
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}

	// A subscriber that keeps up, one that never reads (its buffer stays
	// full, dropping the oldest), and churn: subscriptions that come and go.
	events, cancel := b.Subscribe()
	defer cancel()
	_, cancelStuck := b.Subscribe()
	defer cancelStuck()
	subscriberDone := make(chan struct{})
	go func() {
		defer close(subscriberDone)
		for range events {
			transitions.Add(1)
		}
	}()
	spawn(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			pause.RLock()
			for range 64 {
				_, c := b.Subscribe()
				c()
			}
			pause.RUnlock()
		}
	})
	const workers = 8
	for w := range workers {
		rng := rand.New(rand.NewSource(int64(w)))
		spawn(func() { soakWorker(b, rng, stop, &pause, &ops, errs) })
	}

	interval := min(max(d/30, time.Second), 10*time.Second)
	type sample struct {
		at                 time.Duration
		ops, transitions   int64
		heapAlloc, heapUse uint64
		goroutines         int
	}
	var samples []sample
	began := time.Now()
	ticker := time.NewTicker(interval)
	for time.Since(began) < d {
		<-ticker.C
		pause.Lock()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{time.Since(began).Round(time.Second), ops.Load(), transitions.Load(),
			ms.HeapAlloc, ms.HeapInuse, runtime.NumGoroutine()})
		pause.Unlock()
	}
	ticker.Stop()
	close(stop)
	within(t, "the soak's workers", wg.Wait)
	b.Stop()
	within(t, "the subscriber", func() { <-subscriberDone })

	var table strings.Builder
	fmt.Fprintf(&table, "%8s %12s %12s %12s %12s %10s\n", "elapsed", "ops", "transitions", "HeapAlloc", "HeapInuse", "goroutines")
	for _, s := range samples {
		fmt.Fprintf(&table, "%8v %12d %12d %12d %12d %10d\n", s.at, s.ops, s.transitions, s.heapAlloc, s.heapUse, s.goroutines)
	}
	t.Logf("soak for %v, %d workers:\n%s", d, workers, table.String())

	if len(samples) < 6 {
		t.Fatalf("only %d samples: soak for longer", len(samples))
	}
	if last := samples[len(samples)-1]; last.transitions < 1000 || last.ops < 100_000 {
		t.Fatalf("only %d ops and %d transitions: the soak did not exercise the breaker", last.ops, last.transitions)
	}
	// Flat means: the largest sample of the last third is not meaningfully
	// above the largest of the first third, while the op count grew several
	// times over. Samples are taken with the workers paused, after a forced
	// collection, so HeapAlloc is the live heap: the breaker's live set does
	// not depend on how many operations it has served, and what remains is
	// noise of about 10% (sync.Pool contents, which survive one collection,
	// the events buffered in subscriptions, the timer armed or not). The
	// tolerance, 25% plus 512 KiB, is well above that noise and far below a
	// leak: one byte kept per operation at millions of operations per
	// second is megabytes per third; one object kept per transition is
	// hundreds of kilobytes. HeapInuse also counts partly free spans, so it
	// gets twice the slack. Goroutines must not grow at all.
	third := len(samples) / 3
	maxOf := func(s []sample, f func(sample) uint64) uint64 {
		var m uint64
		for _, x := range s {
			m = max(m, f(x))
		}
		return m
	}
	first, last := samples[:third], samples[len(samples)-third:]
	for _, c := range []struct {
		what   string
		get    func(sample) uint64
		factor float64
		slack  uint64
	}{
		{"HeapAlloc", func(s sample) uint64 { return s.heapAlloc }, 1.25, 512 << 10},
		{"HeapInuse", func(s sample) uint64 { return s.heapUse }, 1.5, 1 << 20},
		{"goroutines", func(s sample) uint64 { return uint64(s.goroutines) }, 1, 0},
	} {
		before, after := maxOf(first, c.get), maxOf(last, c.get)
		if float64(after) > float64(before)*c.factor+float64(c.slack) {
			t.Errorf("%s grew: at most %d in the first third, %d in the last", c.what, before, after)
		}
	}
}

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("CIRCUITBREAKER_SOAK")
	switch v {
	case "", "0", "false":
		t.Skip("the soak test runs with CIRCUITBREAKER_SOAK=1 (5 minutes) or a duration, like CIRCUITBREAKER_SOAK=30m")
	case "1", "true":
		return 5 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("CIRCUITBREAKER_SOAK=%q: want 1 or a duration", v)
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < d+time.Minute {
		t.Fatalf("CIRCUITBREAKER_SOAK=%v needs a longer -timeout than the %v left", d, time.Until(deadline).Round(time.Second))
	}
	return d
}

// soakWorker does random operations until stop is closed: permits reported
// with every outcome, abandoned permits and probes, Calls that fail, panic
// or are cancelled.
func soakWorker(b *Breaker, rng *rand.Rand, stop <-chan struct{}, pause *sync.RWMutex, ops *atomic.Int64, errs *stressErrors) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	pause.RLock()
	defer pause.RUnlock()
	for i := 0; ; i++ {
		if i%64 == 0 {
			pause.RUnlock()
			select {
			case <-stop:
				pause.RLock() // for the deferred RUnlock
				return
			default:
			}
			pause.RLock()
		}
		ops.Add(1)
		switch n := rng.Intn(100); {
		case n < 70:
			p, err := b.Permit(context.Background())
			if err != nil {
				if !errors.Is(err, ErrOpen) {
					errs.errorf("Permit: %v", err)
					return
				}
				runtime.Gosched()
				continue
			}
			if rng.Intn(200) == 0 {
				continue // abandoned
			}
			switch k := rng.Intn(100); {
			case k < 85:
				p.Report(nil)
			case k < 95:
				p.Report(errBoom)
			default:
				p.Report(errNotFound)
			}
		case n < 95:
			_, _ = Call(context.Background(), b, func(context.Context) (int, error) {
				if rng.Intn(10) == 0 {
					return 0, errBoom
				}
				return 1, nil
			})
		case n < 97:
			func() {
				defer func() { _ = recover() }()
				_, _ = Call(context.Background(), b, func(context.Context) (int, error) { panic("soak") })
			}()
		default:
			_, _ = Call(canceled, b, func(context.Context) (int, error) { return 0, nil })
		}
	}
}
