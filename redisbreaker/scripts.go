package redisbreaker

import (
	"github.com/redis/go-redis/v9"
)

// Keys. Every key is <namespace>:{<name>}:<suffix>: the name goes in
// verbatim between braces, Redis Cluster's hash tag, so both keys of one
// name live in one slot and one script may touch them. The index belongs to
// no one name: its name is empty, {} (Redis Cluster then hashes the whole
// key). The index and the hint channel are per namespace.
func votesKey(ns, name string) string { return ns + ":{" + name + "}:votes" }
func castKey(ns, name string) string  { return ns + ":{" + name + "}:cast" }
func indexKey(ns string) string       { return ns + ":{}:index" }
func hintChannel(ns string) string    { return ns + ":hints" }

// Times inside the scripts are the Redis server's (TIME), in milliseconds:
// no client clock is trusted. Names, ids and TTLs travel as KEYS and ARGV,
// never spliced into the code.

// voteScript casts, renews or withdraws this instance's vote for one name.
//
//	KEYS[1] votes: sorted set, member instance id, score the vote's expiry
//	KEYS[2] cast:  hash, instance id -> when its vote was cast or renewed
//	KEYS[3] index: sorted set of names, score the latest expiry of a vote for
//	        the name (absent under Redis Cluster: see indexScript)
//	ARGV[1] instance id, ARGV[2] "1" to vote or "0" to withdraw,
//	ARGV[3] TTL in ms, ARGV[4] name, ARGV[5] hint channel
//
// It drops expired votes first, and returns {server time, live votes,
// latest expiry, gone} (expiry 0 when no vote is left; gone, the latest
// expiry the votes held before the script, expired ones included: what
// indexScript may remove). A vote also PUBLISHes the name on the hint
// channel so that other instances re-read it now instead of at their next
// poll.
var voteScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local gone = 0
if #before > 0 then
  gone = tonumber(before[2])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], now)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local live = redis.call('ZCARD', KEYS[1])
local latest = 0
if live == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  latest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  redis.call('PEXPIREAT', KEYS[1], latest)
  redis.call('PEXPIREAT', KEYS[2], latest)
end
if #KEYS >= 3 then
  if latest == 0 then
    redis.call('ZREM', KEYS[3], ARGV[4])
  else
    redis.call('ZADD', KEYS[3], latest, ARGV[4])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[3], tonumber(top[2]))
  end
end
if ARGV[2] == '1' then
  redis.call('PUBLISH', ARGV[5], ARGV[4])
end
return {now, live, latest, gone}
`)

// indexScript does voteScript's index part on its own, for Redis Cluster
// (and Ring), where the index and a name's keys live in different slots.
// It runs after voteScript, not atomically with it, so another instance's
// vote may reach the index in between: a withdrawal removes the name only
// while its score is no later than the votes it saw go (gone); a vote cast
// since expires later (by at least the poll interval, the rate limit of
// one instance's vote scripts) and keeps the name.
//
//	KEYS[1] index; ARGV[1] name, ARGV[2] latest expiry (0: no vote left),
//	ARGV[3] gone (see voteScript)
var indexScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local latest = tonumber(ARGV[2])
if latest == 0 then
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if cur and tonumber(cur) <= tonumber(ARGV[3]) then
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
else
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not cur or tonumber(cur) < latest then
    redis.call('ZADD', KEYS[1], latest, ARGV[1])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top > 0 then
  redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]))
end
return now
`)

// namesScript reads the index: {server time, name, name, ...} for the names
// that hold a live vote. Its cost follows the names in trouble, not the
// number of joined breakers.
//
//	KEYS[1] index
var namesScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {now}
for _, n in ipairs(names) do
  out[#out + 1] = n
end
return out
`)

// readScript reads one name's live votes: {server time, id, cast, id,
// cast, ...}, cast being when the vote was cast or last renewed.
//
//	KEYS[1] votes, KEYS[2] cast
var readScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {now}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = tonumber(redis.call('HGET', KEYS[2], id) or '0')
end
return out
`)
