// Package redisbreaker shares what one instance's circuit breakers learn
// with the other instances of a service through Redis: Redis carries hints,
// and each breaker decides for itself.
//
// # Design
//
// When a joined breaker opens by its own rules, this instance votes for the
// breaker's name: one sorted set per name holds a vote per instance, scored
// by its expiry on the Redis server's clock, written by one Lua script that
// reads TIME, drops expired votes, casts or renews this vote, keeps an index
// of voted names, publishes a hint and returns the live count. A close
// withdraws the vote; a vote of an instance that died ages out.
//
// Every instance decides alone: when at least the quorum of distinct
// instances hold live votes cast after its own breaker's last close, it
// trips its closed breaker ([actor.Breaker.Trip]). It reads the index each
// poll interval, and a name at once when a hint arrives. Recovery is never
// shared: a tripped breaker half-opens on its own timer and probes for
// itself, and votes cast before its close cannot re-open it. A breaker
// opened by Trip does not vote, so a quorum never echoes itself.
//
// # Off the call path
//
// Permit, Report and Call never wait for Redis: the cluster reads breaker
// events from subscriptions and does every Redis operation on its own
// worker goroutine, with bounded queues that coalesce per breaker. When
// Redis is down, slow or partitioned away, breakers decide alone as if not
// joined; [Cluster.Healthy] says so.
//
// # Client settings
//
// The cluster bounds each Redis operation with its own context deadline
// ([WithTimeout]). go-redis honours context deadlines only when the client
// is made with ContextTimeoutEnabled: true; without it an operation on a
// stalled server waits for ReadTimeout (default 3s) and is retried
// MaxRetries times (default 3), holding the worker for seconds. Use:
//
//	client := redis.NewClient(&redis.Options{
//		Addr:                  "localhost:6379",
//		ContextTimeoutEnabled: true,                   // the cluster's deadlines apply
//		DialTimeout:           500 * time.Millisecond,
//		ReadTimeout:           500 * time.Millisecond,
//		WriteTimeout:          500 * time.Millisecond,
//		MaxRetries:            1,                      // the next poll retries anyway
//	})
//
// The same fields exist on redis.ClusterOptions, redis.FailoverOptions and
// redis.UniversalOptions. Under Redis Cluster a name's keys share one slot
// (the name is the hash tag), and the index of voted names is written by a
// second script, since it lives in another slot; the same holds for a
// redis.Ring, which shards by the same hash tag.
package redisbreaker
