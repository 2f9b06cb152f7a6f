local P, now = ARGV[1], tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', P..'leases', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', P..'leases', id)
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == 'downloading' then
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
    redis.call('HSET', key, 'owner', '', 'modified', now, 'last_error', 'lease expired')
    redis.call('ZADD', P..'ready', score, id)
    settle(P, id, now)
  end
end
return #expired
