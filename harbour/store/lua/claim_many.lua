-- Claim the most urgent due tasks, at most COUNT, in turn.  ARGV: P,
-- clock, lease, owner, count, nonce (the call's own, kept on each task it
-- claims: see unclaim.lua).
local lease, owner, count, nonce = number(3), ARGV[4], whole(5, 0), ARGV[6] or ''
local at = now()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', at, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', DELAYED, id)
  redis.call('ZADD', READY, -tonumber(redis.call('HGET', P..'t:'..id, 'window_start')), id)
end
local popped = redis.call('ZPOPMIN', READY, count)
local claimed = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local key = P..'t:'..id
  move(P, id, redis.call('HGET', key, 'report'), 'pending', 'downloading', popped[i + 1])
  redis.call('HINCRBY', key, 'attempts', 1)
  -- The fencing token: unlike attempts, never given back, so no two claims
  -- of a task share it.
  redis.call('HINCRBY', key, 'claim', 1)
  redis.call('HSET', key, 'owner', owner, 'modified', at, 'fetched', at, 'claim_nonce', nonce)
  redis.call('ZADD', LEASES, at + lease, id)
  claimed[#claimed + 1] = redis.call('HGETALL', key)
end
if #claimed == 0 then return '[]' end
-- One JSON string: a reply of many bulk strings costs the client far more.
return cjson.encode(claimed)
