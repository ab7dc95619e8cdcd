package main

import (
	"strings"
	"testing"
)

const input = `goos: linux
goarch: amd64
cpu: Test CPU
BenchmarkClosedCall/impl=gobreaker         	 1000	       100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=gobreaker         	 1000	       300.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=gobreaker         	 1000	       200.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=actor             	 1000	         5.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=actor             	 1000	        15.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=actor-2           	 1000	        50.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkClosedCall/impl=gobreaker-2       	 1000	       200.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkTwoStep/impl=actor                	 1000	        60.0 ns/op	      32 B/op	       1 allocs/op
BenchmarkTwoStep/impl=gobreaker            	 1000	       200.0 ns/op	      48 B/op	       1 allocs/op
BenchmarkIdle/impl=actor-2                 	    1	      2000 ns/op	      3000 bytes/breaker	 0.0001 cpu-fraction	 1.000 goroutines/breaker	 1000 heap-B/breaker	 2000 stack-B/breaker
BenchmarkIdleAfterTrip/impl=actor-2        	    1	      2000 ns/op	      5000 bytes/breaker	 0.0001 cpu-fraction	 1.000 goroutines/breaker	 1000 heap-B/breaker	 4000 stack-B/breaker
BenchmarkIdle1M/impl=actor-2               	    1	      2000 ns/op	       352 bytes/breaker	 0.0001 cpu-fraction	 0 goroutines/breaker	 352 heap-B/breaker	 0 stack-B/breaker
BenchmarkReactivation/impl=actor           	 1000	       150.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkReactivation/impl=gobreaker       	 1000	       300.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkIdle/impl=gobreaker-2             	    1	      1000 ns/op	       264 bytes/breaker	 0.0001 cpu-fraction	 0 goroutines/breaker	 264 heap-B/breaker	 0 stack-B/breaker
BenchmarkMixed/impl=actor                  	 1000	       300.0 ns/op	      38 B/op	       0 allocs/op
BenchmarkMixed/impl=gobreaker              	 1000	       200.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkOther-2                           	 1000	        10.0 ns/op
PASS
`

func TestTable(t *testing.T) {
	var out strings.Builder
	if err := run(nil, strings.NewReader(input), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| scenario | actor | gobreaker |",
		// medians: actor (5+15)/2 = 10 against gobreaker 200
		"| closed call, 1 CPU | 10.0 ns (0.050×), 0 allocs | 200 ns (1.00×), 0 allocs |",
		"| closed call, 2 CPUs | 50.0 ns (0.25×), 0 allocs | 200 ns (1.00×), 0 allocs |",
		"| two-step (permit, report), 1 CPU | 60.0 ns (0.30×), 1 alloc | 200 ns (1.00×), 1 alloc |",
		"| bytes per idle breaker (heap + stacks) | 3000 B | 352 B | 5000 B | 264 B |",
		"Machine: goos: linux, goarch: amd64, cpu: Test CPU.",
		"- closed call, 1 CPU: 0.050× ≤ 0.13×: met; 0 allocs (0 B/op) ≤ 0 allocs: met",
		"- closed call, 2 CPUs: 0.25× ≤ 0.13×: **missed** (1.92× the target)",
		"| mixed, 10% failures, 1 CPU | 300 ns (1.50×), 0 allocs (38 B/op: under 1 alloc) | 200 ns (1.00×), 0 allocs |",
		"- mixed, 10% failures, 1 CPU: 1.50× ≤ 0.50×: **missed** (3.00× the target); 0 allocs (38 B/op) ≤ 0 allocs: **missed**",
		"- idle memory (actor, 1M): 352 B per breaker ≤ 512 B: met",
		"- idle memory (actor, 1M, after one open/half-open/closed cycle): 5000 B per breaker ≤ 512 B: **missed**",
		"- goroutines per idle breaker (actor, 1M): 0 = 0: met",
		"- re-activation, 1 CPU: 75.0 ns per activation ≤ 1000 ns: met",
		"| re-activation: a failure, then a success, on a sleeping breaker, 1 CPU | 150 ns (0.50×), 0 allocs | 300 ns (1.00×), 0 allocs |",
		"| idle breakers | actor | actor, 1M | actor, 1M, after one open/half-open/closed cycle | gobreaker |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Other") {
		t.Errorf("a benchmark without impl= made it into the table:\n%s", got)
	}
}

func TestParseName(t *testing.T) {
	for name, want := range map[string]cell{
		"ClosedCall/impl=actor":           {row{"ClosedCall", 1}, "actor"},
		"ClosedCall/impl=actor-2":         {row{"ClosedCall", 2}, "actor"},
		"Idle/impl=gobreaker/size=10-16":  {row{"Idle/size=10", 16}, "gobreaker"},
		"MixedParallel/impl=go-resil-ncy": {row{"MixedParallel", 1}, "go-resil-ncy"},
	} {
		got, ok := parseName(name)
		if !ok || got != want {
			t.Errorf("parseName(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
	if _, ok := parseName("Other-2"); ok {
		t.Error("parseName accepted a name without impl=")
	}
}
