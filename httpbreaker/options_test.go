package httpbreaker

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circuitbreaker-go/circuitbreaker/actor"
)

func TestInvalidOptions(t *testing.T) {
	key := func(*http.Request) string { return "" }
	classify := func(*http.Response, error) actor.Outcome { return actor.Success }
	cases := []struct {
		name       string
		transport  bool
		opts       []Option
		mentioning string
	}{
		{"nil option", true, []Option{nil}, "option 1 of 1 is nil"},
		{"nil option, middleware", false, []Option{WithKey(key), nil}, "option 2 of 2 is nil"},
		{"WithKey(nil)", true, []Option{WithKey(nil)}, "WithKey(nil)"},
		{"WithKey(nil), middleware", false, []Option{WithKey(nil)}, "WithKey(nil)"},
		{"WithClassifier(nil)", true, []Option{WithClassifier(nil)}, "WithClassifier(nil)"},
		{"WithMaxRetryAfter(-1s)", true, []Option{WithMaxRetryAfter(-time.Second)}, "WithMaxRetryAfter(-1s)"},
		{"WithClassifier on NewMiddleware", false, []Option{WithClassifier(classify)}, "NewTransport only"},
		{"WithMaxRetryAfter on NewMiddleware", false, []Option{WithMaxRetryAfter(time.Minute)}, "NewTransport only"},
		{"WithLogger(nil)", true, []Option{WithLogger(nil)}, "WithLogger"},
		{"a nil group option", true, []Option{WithGroupOptions(nil)}, "WithGroupOptions"},
		{"an invalid group option", false, []Option{WithGroupOptions(actor.WithAllowedFails(0))}, "WithAllowedFails(0)"},
		{"a negative cap", true, []Option{WithGroupOptions(actor.WithMaxBreakers(-1))}, "WithMaxBreakers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.transport {
				var tr *Transport
				tr, err = NewTransport(nil, tc.opts...)
				if tr != nil {
					tr.Stop()
					t.Fatal("NewTransport returned a Transport with an error")
				}
			} else {
				var m *Middleware
				m, err = NewMiddleware(tc.opts...)
				if m != nil {
					m.Stop()
					t.Fatal("NewMiddleware returned a Middleware with an error")
				}
			}
			if !errors.Is(err, actor.ErrInvalid) || !strings.Contains(err.Error(), tc.mentioning) {
				t.Fatalf("err = %v; want ErrInvalid mentioning %q", err, tc.mentioning)
			}
		})
	}
}

func TestHostKey(t *testing.T) {
	cases := map[string]string{
		"http://h":                   "http://h:80",
		"http://h:80/path?q":         "http://h:80",
		"HTTP://H.Example.COM":       "http://h.example.com:80",
		"https://h":                  "https://h:443",
		"https://h:8443":             "https://h:8443",
		"http://user:pw@h:81/":       "http://h:81",
		"http://[::1]:8080/":         "http://[::1]:8080",
		"http://[::1]/":              "http://[::1]:80",
		"http://[FE80::1%25eth0]:81": "http://[fe80::1%eth0]:81",
		"ws://h":                     "ws://h",
		"ws://[::1]":                 "ws://[::1]",
	}
	for raw, want := range cases {
		if got := HostKey(mustURL(t, raw)); got != want {
			t.Errorf("HostKey(%s) = %q, want %q", raw, got, want)
		}
	}
	// http://h and http://h:80 share one breaker.
	var c keyCache
	if a, b := c.key(mustURL(t, "http://h/x")), c.key(mustURL(t, "http://h:80/y")); a != b {
		t.Fatalf("cached keys differ: %q, %q", a, b)
	}
}

func TestKeyCacheIsBounded(t *testing.T) {
	var c keyCache
	for i := 0; i < 3*maxCachedKeys; i++ {
		u := mustURL(t, "http://h"+strings.Repeat("x", i%7)+".test:"+strconv.Itoa(1000+i))
		if got, want := c.key(u), HostKey(u); got != want {
			t.Fatalf("key %q, want %q", got, want)
		}
	}
	if n := len(*c.m.Load()); n > maxCachedKeys {
		t.Fatalf("%d cached keys, want at most %d", n, maxCachedKeys)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := epoch
	clock := func() time.Time { return now }
	cases := map[string]time.Duration{
		"":                     0,
		"0":                    0,
		"1":                    time.Second,
		"120":                  2 * time.Minute,
		"007":                  7 * time.Second,
		"1.5":                  0,
		"-1":                   0,
		" 5":                   0,
		"5s":                   0,
		"99999999999999999999": math.MaxInt64,
		"9223372036":           9223372036 * time.Second,
		"9223372037":           math.MaxInt64,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Second).Format(http.TimeFormat):     0,
		now.Format(http.TimeFormat):                       0,
		"Wednesday, 02-Jan-30 03:05:05 GMT":               time.Minute,     // RFC 850
		"Wed Jan  2 03:06:05 2030":                        2 * time.Minute, // ANSI C
		"tomorrow":                                        0,
	}
	for v, want := range cases {
		if got := parseRetryAfter(v, clock); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	cases := map[time.Duration]int64{
		0:                       1,
		time.Nanosecond:         1,
		time.Second:             1,
		time.Second + 1:         2,
		1500 * time.Millisecond: 2,
		30 * time.Second:        30,
		math.MaxInt64:           math.MaxInt64 / int64(time.Second),
	}
	for d, want := range cases {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
