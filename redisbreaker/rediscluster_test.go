package redisbreaker

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// Redis Cluster: a name's two keys share a slot (the name is the hash
// tag), the index lives in another, so the index is written by its own
// script (indexScript). These tests run a real single-node cluster that
// owns every slot: go-redis routes by slot exactly as with many nodes, and
// the server refuses a script whose keys span slots (CROSSSLOT) even when
// one node holds them all.

// redisVersion is redis-server's version as (major, minor).
func redisVersion(t testing.TB) (major, minor int) {
	t.Helper()
	out, err := exec.Command(redisBinary, "--version").Output()
	if err != nil {
		t.Fatalf("redis-server --version: %v", err)
	}
	m := regexp.MustCompile(`v=(\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("redis-server --version: no version in %q", out)
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	return major, minor
}

// clusterNode starts a single-node Redis Cluster that owns all 16384 slots
// and waits until it reports cluster_state:ok.
func clusterNode(t testing.TB) *redisServer {
	t.Helper()
	needRedis(t)
	major, minor := redisVersion(t)
	if major < 5 {
		// Redis Cluster itself is 3.0, but the vote script reads TIME and
		// then writes, which needs effect replication, the default only
		// from Redis 5.
		t.Skipf("redis-server %d.%d: the cluster's scripts need Redis 5 or later (TIME before writes)", major, minor)
	}
	dir := t.TempDir()
	srv, err := startRedis(0, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	rc := redis.NewClient(&redis.Options{Addr: srv.addr, DisableIdentity: true})
	defer rc.Close()
	ctx := context.Background()
	if major >= 7 {
		err = rc.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err()
	} else {
		slots := make([]int, 16384)
		for i := range slots {
			slots[i] = i
		}
		err = rc.ClusterAddSlots(ctx, slots...).Err()
	}
	if err != nil {
		t.Fatalf("assign the slots: %v", err)
	}
	eventually(t, 10*time.Second, "cluster_state:ok", func() bool {
		info, err := rc.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return srv
}

// newClusterClient returns a Redis Cluster client with the settings the
// package doc asks for.
func newClusterClient(t testing.TB, addr string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{addr},
		ContextTimeoutEnabled: true,
		DialTimeout:           250 * time.Millisecond,
		ReadTimeout:           250 * time.Millisecond,
		WriteTimeout:          250 * time.Millisecond,
		MaxRetries:            -1,
		PoolSize:              4,
		DisableIdentity:       true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newClusterOn(t testing.TB, client redis.UniversalClient, opts ...Option) *Cluster {
	t.Helper()
	c, err := NewCluster(client, append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Semantics 27 and 29 on Redis Cluster: the quorum test, through a
// ClusterClient; the index is written by the second script.
func TestRedisClusterQuorum(t *testing.T) {
	srv := clusterNode(t)
	ns := namespace(t)
	ctx := context.Background()
	var ins []*instance
	for i := 0; i < 3; i++ {
		c := newClusterOn(t, newClusterClient(t, srv.addr), fast(ns, 2)...)
		if !c.split {
			t.Fatal("a ClusterClient's cluster does not write the index with its own script")
		}
		ins = append(ins, joinInstance(t, c, "payments"))
	}
	a, b, c := ins[0], ins[1], ins[2]
	rc := newClusterClient(t, srv.addr)
	fail(t, a.b)
	wantOwnOpen(t, a)
	eventually(t, 5*time.Second, "a's vote in the index", func() bool {
		names, err := rc.ZRange(ctx, indexKey(ns), 0, -1).Result()
		return err == nil && len(names) == 1 && names[0] == "payments"
	})
	polled(t, 3, b.c, c.c)
	if b.b.State() != actor.StateClosed || c.b.State() != actor.StateClosed {
		t.Fatalf("one vote at k=2 opened another instance: b %v, c %v", b.b.State(), c.b.State())
	}
	fail(t, b.b)
	wantOwnOpen(t, b)
	wantOpenByCluster(t, c, ns, "2")
	for _, in := range ins {
		if s := in.c.Stats(); s.Errors != 0 {
			t.Fatalf("%d Redis errors on the cluster (CROSSSLOT?)", s.Errors)
		}
	}

	// Closes withdraw the votes; the index forgets the name.
	for _, in := range []*instance{a, b} {
		in.clk.Add(retry)
		wantEvent(t, in, actor.StateHalfOpen)
		succeed(t, in.b)
		wantEvent(t, in, actor.StateClosed)
	}
	eventually(t, 5*time.Second, "the index to forget the name", func() bool {
		n, err := rc.ZCard(ctx, indexKey(ns)).Result()
		return err == nil && n == 0
	})
	if n, err := rc.Exists(ctx, votesKey(ns, "payments"), castKey(ns, "payments")).Result(); err != nil || n != 0 {
		t.Fatalf("%d vote keys left (err %v)", n, err)
	}
}

// Under Redis Cluster the index is written after the votes, not in the
// same script, so two instances' scripts interleave. Replay the worst
// order with the scripts the worker runs: a's withdrawal empties the votes,
// b's vote and its index entry land, then a's index update arrives. The
// index must keep the name b votes for, or the others' polls miss b's
// vote until it renews (the hint is at-most-once).
func TestRedisClusterIndexRace(t *testing.T) {
	srv := clusterNode(t)
	rc := newClusterClient(t, srv.addr)
	ctx := context.Background()
	ns, name := namespace(t), "orders"
	keys := []string{votesKey(ns, name), castKey(ns, name)}
	ttl := (5 * time.Second).Milliseconds()
	vote := func(id string, cast bool) []int64 {
		t.Helper()
		flag := "0"
		if cast {
			flag = "1"
		}
		res, err := voteScript.Run(ctx, rc, keys, id, flag, ttl, name, hintChannel(ns)).Int64Slice()
		if err != nil || len(res) != 4 {
			t.Fatalf("vote script: %v, %v", res, err)
		}
		return res
	}
	index := func(res []int64) {
		t.Helper()
		if err := indexScript.Run(ctx, rc, []string{indexKey(ns)}, name, res[2], res[3]).Err(); err != nil {
			t.Fatalf("index script: %v", err)
		}
	}
	indexed := func() bool {
		t.Helper()
		res, err := namesScript.Run(ctx, rc, []string{indexKey(ns)}).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return len(res) == 2 && res[1] == name
	}

	cast := vote("a", true)
	index(cast)
	if !indexed() {
		t.Fatal("a's vote is not in the index")
	}
	// A server millisecond passes between a's vote and its withdrawal at
	// the least (the worker runs one name's script at most once per poll
	// interval); b's vote comes after the withdrawal.
	eventually(t, time.Second, "a server millisecond", func() bool {
		now, err := rc.Time(ctx).Result()
		return err == nil && now.UnixMilli() > cast[0]
	})
	withdrawal := vote("a", false)
	if withdrawal[1] != 0 || withdrawal[2] != 0 {
		t.Fatalf("withdrawal %v, want no vote left", withdrawal)
	}
	index(vote("b", true))
	index(withdrawal) // late: after b's
	if !indexed() {
		t.Fatal("a's late index update removed the name b votes for")
	}
	withdrawal = vote("b", false)
	index(withdrawal)
	if indexed() {
		t.Fatal("the last withdrawal left the name in the index")
	}
}

// A Ring shards by key (the hash tag too) and sends a script to the shard
// of its first key, as Redis Cluster does: the index must be written by its
// own script there as well, or a poll (which reads the index on its own
// shard) misses the names on the other one. Poll only: no hints.
func TestRingQuorumByPoll(t *testing.T) {
	s1, s2 := ownRedis(t), ownRedis(t)
	ring := func() *redis.Ring {
		r := redis.NewRing(&redis.RingOptions{
			Addrs:                 map[string]string{"one": s1.addr, "two": s2.addr},
			ContextTimeoutEnabled: true,
			DialTimeout:           250 * time.Millisecond,
			ReadTimeout:           250 * time.Millisecond,
			WriteTimeout:          250 * time.Millisecond,
			MaxRetries:            -1,
			PoolSize:              4,
			DisableIdentity:       true,
		})
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	ns := namespace(t)
	opts := append(fast(ns, 1), withoutHints())
	names := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	voter := newClusterOn(t, ring(), opts...)
	follower := newClusterOn(t, ring(), opts...)
	var voters, followers []*instance
	for _, name := range names {
		voters = append(voters, joinInstance(t, voter, name))
		followers = append(followers, joinInstance(t, follower, name))
	}
	for _, in := range voters {
		fail(t, in.b)
	}
	for i, in := range followers {
		if ev := next(t, in.events); ev.To != actor.StateOpen || !ev.External {
			t.Fatalf("%s: event %+v, want a trip by the poll", names[i], ev)
		}
	}
	// The premise: some name's votes live on another shard than the index.
	ctx := context.Background()
	where := func(key string) string {
		for i, s := range []*redisServer{s1, s2} {
			if n, _ := newClient(t, s.addr).Exists(ctx, key).Result(); n == 1 {
				return strconv.Itoa(i)
			}
		}
		return "none"
	}
	index, apart := where(indexKey(ns)), 0
	for _, name := range names {
		if where(votesKey(ns, name)) != index {
			apart++
		}
	}
	if index == "none" || apart == 0 {
		t.Fatalf("index on shard %s, %d names on the other shard: the test proves nothing", index, apart)
	}
	t.Logf("%d of %d names on the other shard than the index", apart, len(names))
}

// Semantic 29 under Redis Cluster: the name is the hash tag, so a name the
// server cannot read as one (it starts with '}': "<ns>:{}x}:votes" has an
// empty tag) is refused by Join with a clear error instead of failing every
// vote with CROSSSLOT, and a namespace with a '{' (which would take the tag
// from the name) is refused by NewCluster. Standalone Redis shares such a
// name as any other.
func TestRedisClusterHashTag(t *testing.T) {
	srv := clusterNode(t)
	ns := namespace(t)
	c := newClusterOn(t, newClusterClient(t, srv.addr), fast(ns, 1)...)
	b, _ := newBreaker(t, "}x")
	if _, err := c.Join(b); err == nil || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("Join of %q under Redis Cluster: %v, want an error about the slot", b.Name(), err)
	}
	if _, err := NewCluster(newClusterClient(t, srv.addr), WithNamespace("svc{a}")); !errors.Is(err, ErrInvalid) {
		t.Fatalf(`WithNamespace("svc{a}"): %v, want ErrInvalid`, err)
	}

	// The same name on standalone Redis.
	sns := namespace(t)
	x := newInstance(t, shared.addr, "}x", fast(sns, 1)...)
	y := newInstance(t, shared.addr, "}x", fast(sns, 1)...)
	fail(t, x.b)
	wantOpenByCluster(t, y, sns, "1")
}
