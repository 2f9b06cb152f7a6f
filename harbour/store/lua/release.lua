-- Give a claim back, due DELAY seconds from now.
-- ARGV: P, clock, id, owner, delay, error, counted, token.
local id, owner = ARGV[3], ARGV[4]
local delay = number(5)
if not held(P, id, owner, ARGV[8]) then return 0 end
local at = now()
local not_before = at + delay
local key = P..'t:'..id
local score = -tonumber(redis.call('HGET', key, 'window_start'))
move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
redis.call('ZREM', LEASES, id)
redis.call('HSET', key, 'owner', '', 'modified', at, 'not_before', not_before, 'last_error', ARGV[6],
  'ended', redis.call('HGET', key, 'claim'))
forget_stale(key)
-- An answer that says only "not yet" uses no attempt.
if ARGV[7] == '0' then redis.call('HINCRBY', key, 'attempts', -1) end
if not_before > at then
  redis.call('ZADD', DELAYED, not_before, id)
else
  redis.call('ZADD', READY, score, id)
end
settle(P, id, at)
return 1
