-- Put back to pending at most LIMIT tasks in STATE (of REPORT, if not ''):
-- called again until fewer come back, so no script runs long (a script past
-- lua-time-limit makes Redis answer BUSY to everybody).
-- An id whose hash is gone (evicted, or deleted by hand) is no task: it is
-- dropped from the listing, so that it fails no later call.
-- ARGV: P, clock, state, report, limit.
-- Returns {tasks put back, ids read}.
local state, report, limit = one_of(3, 'failed', 'empty'), ARGV[4], whole(5, 1)
local at = now()
local source = P..'s:'..state
if report ~= '' then source = source..':'..report end
local ids = redis.call('ZRANGE', source, 0, limit - 1)
local moved = 0
for _, id in ipairs(ids) do
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == state then
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    move(P, id, redis.call('HGET', key, 'report'), state, 'pending', score)
    redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', '', 'modified', at)
    redis.call('ZADD', READY, score, id)
    moved = moved + 1
  else
    redis.call('ZREM', source, id)
    redis.call('ZREM', P..'s:'..state, id)
  end
end
return {moved, #ids}
