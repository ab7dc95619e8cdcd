package httpbreaker

import (
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// HostKey is the Transport's default key: scheme://host:port from u,
// lowercased, with the scheme's default port filled in (80 for http, 443
// for https), so http://h, HTTP://H and http://h:80 share one breaker. An
// IPv6 host keeps its brackets: http://[::1]:8080.
func HostKey(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host, port := u.Hostname(), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	host = strings.ToLower(host)
	if port != "" || strings.Contains(host, ":") {
		host = net.JoinHostPort(host, port)
		if port == "" {
			host = host[:len(host)-1] // an IPv6 host of a scheme without a default port: no empty port
		}
	}
	return scheme + "://" + host
}

// maxCachedKeys bounds keyCache: past it the cache starts afresh, and hosts
// not seen since pay for their key once more.
const maxCachedKeys = 1024

// rawHost is a request URL's scheme and host as written, strings that the
// URL already holds: looking it up builds nothing.
type rawHost struct{ scheme, host string }

// keyCache remembers HostKey per rawHost, so that a request to a host seen
// before finds its key without building a string. Readers load an immutable
// map; a writer copies it with the new entry (new hosts are rare; requests
// to known ones are not).
type keyCache struct {
	m  atomic.Pointer[map[rawHost]string]
	mu sync.Mutex // serializes writers
}

func (c *keyCache) key(u *url.URL) string {
	raw := rawHost{u.Scheme, u.Host}
	if m := c.m.Load(); m != nil {
		if k, ok := (*m)[raw]; ok {
			return k
		}
	}
	k := HostKey(u)
	c.mu.Lock()
	defer c.mu.Unlock()
	var next map[rawHost]string
	if old := c.m.Load(); old != nil && len(*old) < maxCachedKeys {
		next = make(map[rawHost]string, len(*old)+1)
		for r, k := range *old {
			next[r] = k
		}
	} else {
		next = make(map[rawHost]string, 1)
	}
	next[raw] = k
	c.m.Store(&next)
	return k
}
