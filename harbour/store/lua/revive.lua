-- Bring back retired tasks the manifest asks for again, to the state they
-- were retired from: a downloaded one keeps its file without a request,
-- one that was waiting is pending again with no attempt used; one being
-- downloaded, marked to be retired when it ends, is no longer.
-- ARGV: P, clock, ids...
local at = now()
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = P..'t:'..id
  -- Asked for again while being downloaded: no longer to be retired.
  redis.call('HDEL', key, 'retiring')
  if redis.call('HGET', key, 'state') == 'retired' then
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    local before = redis.call('HGET', key, 'retired_from')
    local final = before == 'downloaded' or before == 'empty' or before == 'failed'
    local to = final and before or 'pending'
    move(P, id, redis.call('HGET', key, 'report'), 'retired', to, score)
    redis.call('ZREM', RETIRED, id)
    redis.call('HDEL', key, 'retired_from')
    redis.call('HSET', key, 'modified', at)
    if not final then
      redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', '')
      redis.call('ZADD', READY, score, id)
    end
  end
end
return #ARGV - 2
