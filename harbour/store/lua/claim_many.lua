-- Claim the most urgent due tasks, at most COUNT, in turn.  ARGV: P,
-- clock, lease, owner, count, nonce (the call's own, kept on each task it
-- claims: see unclaim.lua).
-- An id whose hash is gone (evicted, or deleted by hand) is no task: it
-- is dropped from the queues, never moved (create.lua makes the task
-- anew).  An id leaves its queue only once its task is moved: Redis keeps
-- what a script wrote before an error, and a task taken out of both
-- queues but left pending would never be claimed again.  A task put back
-- only because its day was ahead is not claimed once its day is over: it
-- is back as it was (see ahead_back in move.lua).
local lease, owner, count, nonce = number(3), ARGV[4], whole(5, 0), ARGV[6] or ''
local at = now()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', at, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local start = redis.call('HGET', P..'t:'..id, 'window_start')
  if start then redis.call('ZADD', READY, -tonumber(start), id) end
  redis.call('ZREM', DELAYED, id)
end
local claimed = {}
-- Each turn takes at least one id out of READY, so the loop ends.
while #claimed < count do
  local heads = redis.call('ZRANGE', READY, 0, count - #claimed - 1, 'WITHSCORES')
  if #heads == 0 then break end
  for i = 1, #heads, 2 do
    local id = heads[i]
    local key = P..'t:'..id
    if redis.call('HGET', key, 'state') ~= 'pending' then
      -- Its hash is gone, or a script that failed halfway left it here.
      redis.call('ZREM', READY, id)
    elseif ahead_over(key, at) then
      -- Put back only because its day was ahead, and that day is over.
      ahead_back(P, id, 'pending', at, 'its day ended first')
    else
      move(P, id, redis.call('HGET', key, 'report'), 'pending', 'downloading', heads[i + 1])
      redis.call('ZREM', READY, id)
      redis.call('HINCRBY', key, 'attempts', 1)
      -- The fencing token: unlike attempts, never given back, so no two
      -- claims of a task share it.
      redis.call('HINCRBY', key, 'claim', 1)
      redis.call('HSET', key, 'owner', owner, 'modified', at, 'fetched', at, 'claim_nonce', nonce)
      redis.call('ZADD', LEASES, at + lease, id)
      claimed[#claimed + 1] = redis.call('HGETALL', key)
    end
  end
end
if #claimed == 0 then return '[]' end
-- One JSON string: a reply of many bulk strings costs the client far more.
return cjson.encode(claimed)
