package grpcbreaker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/circuitbreaker-go/circuitbreaker/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait in real time, so a broken test fails instead of
// hanging.
const guard = 10 * time.Second

// quiet keeps breakers' transition logs out of the test output.
var quiet = slog.New(slog.DiscardHandler)

// newClient makes a client whose breakers run on mock and log nowhere.
func newClient(t *testing.T, mock *clock.Mock, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{WithGroupOptions(actor.WithClock(mock), actor.WithLogger(quiet))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func newServer(t *testing.T, mock *clock.Mock, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(append([]Option{WithGroupOptions(actor.WithClock(mock), actor.WithLogger(quiet))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// breaker returns the group's breaker for key, which must exist.
func breaker(t *testing.T, g *actor.Group[string], key string) *actor.Breaker {
	t.Helper()
	var found *actor.Breaker
	g.Range(func(k string, b *actor.Breaker) bool {
		if k == key {
			found = b
			return false
		}
		return true
	})
	if found == nil {
		t.Fatalf("no breaker for %q", key)
	}
	return found
}

func waitEvent(t *testing.T, events <-chan actor.GroupEvent[string], key string, to actor.State) {
	t.Helper()
	select {
	case ev := <-events:
		if ev.Key != key || ev.To != to {
			t.Fatalf("event %q %v->%v, want %q to %v", ev.Key, ev.From, ev.To, key, to)
		}
	case <-time.After(guard):
		t.Fatalf("%q did not move to %v", key, to)
	}
}
