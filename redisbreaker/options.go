package redisbreaker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error NewCluster returns for a bad option.
var ErrInvalid = errors.New("redisbreaker: invalid option")

// ErrClosed is returned by Join and JoinGroup after [Cluster.Close].
var ErrClosed = errors.New("redisbreaker: cluster is closed")

// Defaults.
const (
	DefaultNamespace = "circuitbreaker"
	DefaultQuorum    = 2
	DefaultVoteTTL   = 30 * time.Second
	// DefaultMaxTimeout caps the default bound on one Redis operation
	// (the poll interval, but at most this).
	DefaultMaxTimeout = time.Second
	// DefaultQueueSize is how many breakers may wait for the worker at once
	// (see [WithQueueSize]).
	DefaultQueueSize = 1024
)

// An Option configures a [Cluster] in [NewCluster]. Given twice, the last
// one wins.
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

type options struct {
	namespace string
	quorum    int
	ttl       time.Duration
	poll      time.Duration // 0: ttl/3
	timeout   time.Duration // 0: min(poll, DefaultMaxTimeout)
	id        string        // "": host name, pid, random suffix
	queue     int
	logger    *slog.Logger
	noHints   bool // tests only: no pub/sub, so only the poll brings news
}

// withoutHints makes a cluster that neither listens for hints nor is
// woken by them (tests of the poll).
func withoutHints() Option {
	return optionFunc(func(o *options) error { o.noHints = true; return nil })
}

// WithNamespace sets the prefix of every key and of the hint channel.
// Default "circuitbreaker". Instances share votes exactly when they share a
// namespace (and a Redis): services whose breakers have the same names but
// must not trip each other need different namespaces. An empty namespace, or
// one with a '{' (a breaker's name between braces must be the first, so
// that Redis Cluster hashes one name's keys to one slot), is an error.
func WithNamespace(ns string) Option {
	return optionFunc(func(o *options) error {
		if ns == "" {
			return invalid("WithNamespace(%q): must not be empty", ns)
		}
		if strings.Contains(ns, "{") {
			return invalid("WithNamespace(%q): must not contain '{' (the breaker's name is the keys' hash tag)", ns)
		}
		o.namespace = ns
		return nil
	})
}

// WithQuorum sets how many distinct instances must hold live votes for a
// name before every instance trips its closed breaker of that name.
// Default 2, so one failing instance never opens the others; 1 makes every
// opening trip every instance (gossip). k < 1 is an error.
func WithQuorum(k int) Option {
	return optionFunc(func(o *options) error {
		if k < 1 {
			return invalid("WithQuorum(%d): must be at least 1", k)
		}
		o.quorum = k
		return nil
	})
}

// WithVoteTTL sets how long a vote lives on the Redis server's clock after
// it was cast or renewed. Default 30s; an instance that dies is forgotten
// after it. d <= 0 is an error.
func WithVoteTTL(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithVoteTTL(%v): must be positive", d)
		}
		o.ttl = d
		return nil
	})
}

// WithPollInterval sets how often the cluster re-reads the names that hold
// votes (pub/sub hints make it sooner), and how often at most it writes one
// name's vote. Default: the vote TTL / 3. d <= 0 is an error.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithPollInterval(%v): must be positive", d)
		}
		o.poll = d
		return nil
	})
}

// WithTimeout bounds each Redis operation of the cluster with its own
// context deadline. Default: the poll interval, at most 1s. go-redis honours
// it only with ContextTimeoutEnabled set in the client's options (see the
// package doc). d <= 0 is an error.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithTimeout(%v): must be positive", d)
		}
		o.timeout = d
		return nil
	})
}

// WithInstanceID names this instance in the votes. Default: the host name,
// the process id and a random suffix, so two processes never share one. Two
// clusters given the same id count as one instance. An empty id is an error.
func WithInstanceID(id string) Option {
	return optionFunc(func(o *options) error {
		if id == "" {
			return invalid("WithInstanceID(%q): must not be empty", id)
		}
		o.id = id
		return nil
	})
}

// WithQueueSize bounds how many breakers with news (an opening, a close) may
// wait for the cluster's worker. Default 1024. News of one breaker coalesces
// (it takes one place however often it flaps); beyond the bound a breaker's
// place is dropped and counted in [Stats], and the worker re-scans every
// joined breaker instead, so nothing is lost but time. n < 1 is an error.
func WithQueueSize(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 1 {
			return invalid("WithQueueSize(%d): must be at least 1", n)
		}
		o.queue = n
		return nil
	})
}

// WithLogger sets where the cluster logs: one Warn when it loses Redis, one
// Info when Redis is back. Default slog.Default(); nil is an error.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil {
			return invalid("WithLogger(nil)")
		}
		o.logger = l
		return nil
	})
}

func buildOptions(opts []Option) (options, error) {
	o := options{
		namespace: DefaultNamespace,
		quorum:    DefaultQuorum,
		ttl:       DefaultVoteTTL,
		queue:     DefaultQueueSize,
	}
	for i, opt := range opts {
		if opt == nil {
			return o, invalid("option %d of %d is nil", i+1, len(opts))
		}
		if err := opt.apply(&o); err != nil {
			return o, err
		}
	}
	if o.poll == 0 {
		o.poll = o.ttl / 3
		if o.poll <= 0 {
			o.poll = o.ttl
		}
	}
	if o.timeout == 0 {
		o.timeout = min(o.poll, DefaultMaxTimeout)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.id == "" {
		o.id = defaultInstanceID()
	}
	return o, nil
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails (Go 1.24)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(suffix[:]))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
