package redisbreaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"github.com/circuitbreaker-go/circuitbreaker/redisbreaker"
)

// Share a breaker with the service's other instances: when two of them
// (this one included) see the payments API fail, every instance opens its
// breaker of that name.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		MaxRetries:            1,
	})
	defer client.Close()

	cluster, err := redisbreaker.NewCluster(client,
		redisbreaker.WithNamespace("checkout"), // the services that share votes
		redisbreaker.WithQuorum(2))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	b, err := actor.New(actor.WithName("payments-api"))
	if err != nil {
		panic(err)
	}
	defer b.Stop()
	leave, err := cluster.Join(b)
	if err != nil {
		panic(err)
	}
	defer leave()

	// Calls never wait for Redis, even when it is down.
	_, err = actor.Call(context.Background(), b, func(context.Context) (string, error) {
		return "charged", nil
	})
	fmt.Println(err == nil || errors.Is(err, actor.ErrOpen))
	// Output: true
}
