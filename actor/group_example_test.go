package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// One breaker per host: a host that fails opens its own breaker, and calls
// to the other hosts go on. Keys are host:port, a bounded set; the group
// forgets a host's breaker after ten idle minutes.
func ExampleGroup_perHost() {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer up.Close()

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hosts, err := actor.NewGroup[string](actor.WithAllowedFails(3), actor.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	defer hosts.Stop()

	get := func(ctx context.Context, rawURL string) (*http.Response, error) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, err
		}
		b, err := hosts.Get(u.Host)
		if err != nil {
			return nil, err // ErrGroupFull or ErrStopped; no cap here
		}
		return actor.Call(ctx, b, func(ctx context.Context) (*http.Response, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
			if err != nil {
				return nil, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil && resp.StatusCode >= 500 {
				resp.Body.Close()
				return nil, fmt.Errorf("%s: %s", u.Host, resp.Status)
			}
			return resp, err
		})
	}

	ctx := context.Background()
	for range 4 {
		for _, target := range []string{down.URL, up.URL} {
			resp, err := get(ctx, target+"/v1/items")
			switch {
			case errors.Is(err, actor.ErrOpen):
				fmt.Println(target == up.URL, "refused at once")
			case err != nil:
				fmt.Println(target == up.URL, "failed")
			default:
				resp.Body.Close()
				fmt.Println(target == up.URL, "ok")
			}
		}
	}
	fmt.Println(hosts.Len(), "breakers")
	// Output:
	// false failed
	// true ok
	// false failed
	// true ok
	// false failed
	// true ok
	// false refused at once
	// true ok
	// 2 breakers
}

// One breaker per tenant, with a cap: tenant ids come from requests, so the
// number of keys is bounded by WithMaxBreakers rather than trusted. Premium
// tenants get their own settings through WithKeyOptions.
func ExampleGroup_perTenant() {
	type tenant string
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenants, err := actor.NewGroup[tenant](
		actor.WithAllowedFails(2),
		actor.WithRetryTimer(10*time.Second),
		actor.WithLogger(quiet),
		actor.WithIdleTTL(5*time.Minute),
		actor.WithMaxBreakers(10_000),
		actor.WithKeyOptions(func(t tenant) []actor.Option {
			if t == "acme" { // premium: more patience, its own name in logs
				return []actor.Option{actor.WithAllowedFails(5), actor.WithName("tenant-acme")}
			}
			return nil
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer tenants.Stop()

	query := func(ctx context.Context, t tenant) error {
		b, err := tenants.Get(t)
		if errors.Is(err, actor.ErrGroupFull) {
			// Ten thousand tenants are failing or new this minute: serve
			// this one unprotected rather than turn it away (or refuse it,
			// if the database must be shielded at any cost).
			return queryTenantDB(ctx, t)
		} else if err != nil {
			return err
		}
		_, err = actor.Call(ctx, b, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, queryTenantDB(ctx, t)
		})
		return err
	}

	ctx := context.Background()
	for range 3 {
		for _, t := range []tenant{"acme", "globex"} {
			err := query(ctx, t)
			fmt.Printf("%s: open=%v\n", t, errors.Is(err, actor.ErrOpen))
		}
	}
	acme, _ := tenants.Get("acme")
	fmt.Println(acme.Name(), acme.State())
	// Output:
	// acme: open=false
	// globex: open=false
	// acme: open=false
	// globex: open=false
	// acme: open=false
	// globex: open=true
	// tenant-acme closed
}

// queryTenantDB stands in for a per-tenant shard whose every query fails.
func queryTenantDB(context.Context, any) error { return errors.New("shard unavailable") }

// Watch lets an integration follow a group: here, an index from breaker
// name to breaker, kept up to date as breakers are made and forgotten.
func ExampleGroup_Watch() {
	g, err := actor.NewGroup[int]()
	if err != nil {
		log.Fatal(err)
	}
	defer g.Stop()
	one, _ := g.Get(1) // made before Watch: reported by Watch itself

	var mu sync.Mutex
	byName := map[string]*actor.Breaker{}
	cancel := g.Watch(func(_ int, b *actor.Breaker) {
		mu.Lock()
		defer mu.Unlock()
		byName[b.Name()] = b
	}, func(_ int, b *actor.Breaker) {
		mu.Lock()
		defer mu.Unlock()
		if byName[b.Name()] == b {
			delete(byName, b.Name())
		}
	})
	defer cancel()

	two, _ := g.Get(2)
	g.Remove(1) // forgets it without stopping it: whoever holds it may go on
	one.Stop()  // nobody does

	mu.Lock()
	fmt.Println(len(byName), byName["2"] == two)
	mu.Unlock()
	// Output: 1 true
}
