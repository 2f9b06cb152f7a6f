-- Retire tasks the manifest no longer asks for (a report disabled or
-- removed, a window out of range): never claimed again.  One being
-- downloaded is left to finish; the next refresh retires it.
-- ARGV: P, now, ids...
local P, now = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'retired' and state ~= 'downloading' then
    move(P, id, redis.call('HGET', key, 'report'), state, 'retired',
      -tonumber(redis.call('HGET', key, 'window_start')))
    redis.call('ZREM', P..'ready', id)
    redis.call('ZREM', P..'delayed', id)
    redis.call('HSET', key, 'modified', now)
    redis.call('ZADD', P..'retired', now, id)
    n = n + 1
  end
end
return n
