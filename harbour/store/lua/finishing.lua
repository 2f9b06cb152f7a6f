-- The end of one claim, as finish.lua and finish_many.lua make it: 1, or 0
-- (and nothing changes) if OWNER no longer holds claim TOKEN ('': any).
local function finish(id, owner, state, bytes, sha256, last_error, token)
  if not held(P, id, owner, token) then return 0 end
  local at = now()
  local key = P..'t:'..id
  local score = -tonumber(redis.call('HGET', key, 'window_start'))
  local report = redis.call('HGET', key, 'report')
  -- Only a download replaces the hash: a revision that fails still knows
  -- which file in place it is to replace.
  if state == 'downloaded' then
    redis.call('HSET', key, 'bytes', bytes, 'sha256', sha256)
  end
  move(P, id, report, 'downloading', state, score)
  redis.call('ZREM', LEASES, id)
  redis.call('HSET', key, 'owner', '', 'modified', at, 'last_error', last_error)
  -- Its request changed while it was being fetched (see redefine.lua): what
  -- it fetched answers the old one, so it is fetched again.
  local stale = redis.call('HGET', key, 'stale')
  if stale and stale ~= '' then
    redis.call('HDEL', key, 'stale')
    move(P, id, report, state, 'pending', score)
    if state == 'downloaded' and stale == 'changed' then
      redis.call('HINCRBY', key, 'revision', 1)
    elseif stale == 'resized' then
      redis.call('HSET', key, 'sha256', '')
    end
    redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', 'request changed while fetched')
    redis.call('ZADD', READY, score, id)
  end
  settle(P, id, at)
  return 1
end
