local P, now, lease, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local due = redis.call('ZRANGEBYSCORE', P..'delayed', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', P..'delayed', id)
  redis.call('ZADD', P..'ready', -tonumber(redis.call('HGET', P..'t:'..id, 'window_start')), id)
end
local popped = redis.call('ZPOPMIN', P..'ready')
if #popped == 0 then return false end
local id = popped[1]
local key = P..'t:'..id
move(P, id, redis.call('HGET', key, 'report'), 'pending', 'downloading', popped[2])
redis.call('HINCRBY', key, 'attempts', 1)
-- The fencing token: unlike attempts, never given back, so no two claims
-- of a task share it.
redis.call('HINCRBY', key, 'claim', 1)
redis.call('HSET', key, 'owner', owner, 'modified', now, 'fetched', now)
redis.call('ZADD', P..'leases', now + lease, id)
-- One JSON string: a reply of many bulk strings costs the client far more.
return cjson.encode(redis.call('HGETALL', key))
