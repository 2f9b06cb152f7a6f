-- Bring back retired tasks the manifest asks for again, to the state they
-- were retired from: a downloaded one keeps its file without a request,
-- one that was waiting is pending again with no attempt used; one being
-- downloaded, marked to be retired when it ends, is no longer.
-- ARGV: P, clock, then (id, url, filename, report, window_start,
-- window_end) for each, as create.lua takes them: a task whose hash is
-- gone (purged since creation read it retired) is created, so that the
-- manifest's window is there once creation returns.
-- Returns {report, tasks revived or created, ...}: only those this call
-- brought back, not one another call revived first.
groups(6, 5, 6)
local at = now()
local back = {}
for i = 3, #ARGV, 6 do
  local id = ARGV[i]
  local key = P..'t:'..id
  local brought = create_task(i, at)
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
    brought = true
  end
  if brought then
    local report = redis.call('HGET', key, 'report')
    back[report] = (back[report] or 0) + 1
  end
end
return flat(back)
