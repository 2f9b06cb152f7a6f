-- Bring back retired tasks the manifest asks for again: pending, with no
-- attempt used.  A file already fetched for the same request is then taken
-- up by its download without a request.  ARGV: P, now, ids...
local P, now = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == 'retired' then
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    move(P, id, redis.call('HGET', key, 'report'), 'retired', 'pending', score)
    redis.call('ZREM', P..'retired', id)
    redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', '', 'modified', now)
    redis.call('ZADD', P..'ready', score, id)
  end
end
return #ARGV - 2
