package redisbreaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

// The tests run a real redis-server (the Debian package: .ci/run installs it
// with redisbreaker/testdata/ensure-redis). Each test binary starts its own
// on a free loopback port, and the chaos tests start one each, to kill.

var (
	shared      *redisServer // for every test that does not kill its server
	noRedis     string       // why there is no server, when there is none
	redisBinary string
)

// silentRedis drops go-redis's own log lines (dial failures while the
// chaos tests kill the server).
type silentRedis struct{}

func (silentRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(silentRedis{})
	var err error
	redisBinary, err = exec.LookPath("redis-server")
	if err == nil {
		shared, err = startRedis(0)
	}
	if err != nil {
		noRedis = err.Error()
	}
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needRedis skips the test without a redis-server, or fails it under CI,
// where .ci/run installs one.
func needRedis(t testing.TB) {
	t.Helper()
	if noRedis == "" {
		return
	}
	msg := "these tests need redis-server (apt-get install -y redis-server, or run redisbreaker/testdata/ensure-redis): " + noRedis
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// redisServer is one redis-server process on a loopback port.
type redisServer struct {
	port   int
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is reaped
	extra  []string      // more redis-server arguments (cluster mode)
}

// startRedis starts redis-server on port (0: a free one) and waits until it
// answers PING.
func startRedis(port int, extra ...string) (*redisServer, error) {
	if redisBinary == "" {
		return nil, errors.New("redis-server not found in PATH")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s := &redisServer{port: p, addr: "127.0.0.1:" + strconv.Itoa(p), extra: extra}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *redisServer) start() error {
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, s.extra...)
	cmd := exec.Command(redisBinary, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = serverAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	exited := s.exited
	go func() { _ = cmd.Wait(); close(exited) }()

	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING: %v", s.port, err)
		}
	}
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (s *redisServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies on SIGKILL too, but be sure
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *redisServer) stop() { s.kill() }

func (s *redisServer) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// ownRedis starts a server for one test (one the test may kill).
func ownRedis(t testing.TB) *redisServer {
	t.Helper()
	needRedis(t)
	s, err := startRedis(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// newClient returns a client with the settings the package doc asks for.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
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

func sharedClient(t testing.TB) *redis.Client {
	t.Helper()
	needRedis(t)
	return newClient(t, shared.addr)
}

// namespace is a fresh namespace per test, so tests on the shared server
// never see each other's votes.
func namespace(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + hex.EncodeToString(b[:])
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newCluster makes one instance: its own client and cluster.
func newCluster(t testing.TB, addr string, opts ...Option) *Cluster {
	t.Helper()
	c, err := NewCluster(newClient(t, addr), append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

const retry = time.Minute

// newBreaker makes a breaker on a mock clock that opens on its first
// failure.
func newBreaker(t testing.TB, name string) (*actor.Breaker, *clock.Mock) {
	t.Helper()
	clk := clock.NewMock()
	b, err := actor.New(actor.WithName(name), actor.WithClock(clk), actor.WithAllowedFails(1),
		actor.WithRetryTimer(retry), actor.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b, clk
}

// instance is one replica: a cluster and its breaker of one name.
type instance struct {
	c      *Cluster
	b      *actor.Breaker
	clk    *clock.Mock
	events <-chan actor.Event
}

func newInstance(t testing.TB, addr, name string, opts ...Option) *instance {
	t.Helper()
	return joinInstance(t, newCluster(t, addr, opts...), name)
}

// joinInstance joins a new breaker named name to c.
func joinInstance(t testing.TB, c *Cluster, name string) *instance {
	t.Helper()
	b, clk := newBreaker(t, name)
	events, cancel := b.Subscribe()
	t.Cleanup(cancel)
	leave, err := c.Join(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leave)
	return &instance{c: c, b: b, clk: clk, events: events}
}

// fail reports one failure on b (which opens it, with WithAllowedFails(1)).
func fail(t testing.TB, b *actor.Breaker) {
	t.Helper()
	p, err := b.Permit(context.Background())
	if err != nil {
		t.Fatalf("permit: %v", err)
	}
	p.Report(errors.New("dependency down"))
}

func succeed(t testing.TB, b *actor.Breaker) {
	t.Helper()
	p, err := b.Permit(context.Background())
	if err != nil {
		t.Fatalf("permit: %v", err)
	}
	p.Report(nil)
}

// next receives the next event, or fails the test after 10s.
func next(t testing.TB, events <-chan actor.Event) actor.Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return actor.Event{}
}

// eventually waits until cond holds, checking every few milliseconds, or
// fails the test after timeout. It waits on Redis and on the cluster's
// real-time poll, which have no event to wait on.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		<-tick.C
	}
}

// polled waits until each cluster has finished n more polls: anything a
// poll would have done by then, it has done.
func polled(t testing.TB, n uint64, cs ...*Cluster) {
	t.Helper()
	start := make([]uint64, len(cs))
	for i, c := range cs {
		start[i] = c.Stats().Polls
	}
	eventually(t, 10*time.Second, fmt.Sprintf("%d polls", n), func() bool {
		for i, c := range cs {
			if c.Stats().Polls < start[i]+n {
				return false
			}
		}
		return true
	})
}

// liveVotes reads name's live votes from Redis: instance id -> cast time.
func liveVotes(t testing.TB, rc *redis.Client, ns, name string) map[string]int64 {
	t.Helper()
	res, err := readScript.Run(context.Background(), rc, []string{votesKey(ns, name), castKey(ns, name)}).Slice()
	if err != nil {
		t.Fatalf("read votes: %v", err)
	}
	out := make(map[string]int64)
	for i := 1; i+1 < len(res); i += 2 {
		out[res[i].(string)] = res[i+1].(int64)
	}
	return out
}

// logCounter counts records by level.
type logCounter struct {
	mu     sync.Mutex
	counts map[slog.Level]int
	msgs   []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = make(map[slog.Level]int)
	}
	l.counts[r.Level]++
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[level]
}
