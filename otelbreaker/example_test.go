package otelbreaker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/otelbreaker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Serve a breaker's metrics on /metrics through OpenTelemetry's Prometheus
// exporter, then scrape them once.
func Example_prometheus() {
	// The exporter is a reader of the SDK's meter provider that registers
	// with a Prometheus registry.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo())
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())

	b, err := actor.New(actor.WithName("payments"), actor.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop()
	stop, err := otelbreaker.InstrumentBreaker(b, mp)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// Some traffic: two successes, then three failures open the breaker,
	// which refuses the next call.
	for _, err := range []error{nil, nil, errors.New("down"), errors.New("down"), errors.New("down"), nil} {
		_, _ = actor.Call(context.Background(), b, func(context.Context) (int, error) { return 0, err })
	}

	srv := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		// The transitions counter is fed by a goroutine: leave it out of
		// this output so that it does not depend on timing.
		if l := lines.Text(); strings.HasPrefix(l, "circuitbreaker_state") || strings.HasPrefix(l, "circuitbreaker_calls") {
			fmt.Println(l)
		}
	}
	// Output:
	// circuitbreaker_calls_total{circuitbreaker_name="payments",circuitbreaker_outcome="failure"} 3
	// circuitbreaker_calls_total{circuitbreaker_name="payments",circuitbreaker_outcome="ignored"} 0
	// circuitbreaker_calls_total{circuitbreaker_name="payments",circuitbreaker_outcome="rejected"} 1
	// circuitbreaker_calls_total{circuitbreaker_name="payments",circuitbreaker_outcome="success"} 2
	// circuitbreaker_state{circuitbreaker_name="payments"} 2
}

// Report every breaker of a group, one series per key up to a cap; keys
// beyond it share the series named "_other".
func ExampleInstrumentGroup() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	g, err := actor.NewGroup[string]()
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	stop, err := otelbreaker.InstrumentGroup(g, mp, otelbreaker.WithMaxNames(2))
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	for _, tenant := range []string{"acme", "globex", "initech", "umbrella"} {
		b, err := g.Get(tenant)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = actor.Call(context.Background(), b, func(context.Context) (int, error) { return 0, nil })
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != otelbreaker.CallsInstrument {
			continue
		}
		var lines []string
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if o, _ := p.Attributes.Value("circuitbreaker.outcome"); o.AsString() == "success" {
				n, _ := p.Attributes.Value("circuitbreaker.name")
				lines = append(lines, fmt.Sprintf("%s %d", n.AsString(), p.Value))
			}
		}
		sort.Strings(lines)
		fmt.Println(strings.Join(lines, "\n"))
	}
	// Output:
	// _other 2
	// acme 1
	// globex 1
}
