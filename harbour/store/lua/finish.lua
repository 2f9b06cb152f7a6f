local P, id, owner, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not held(P, id, owner, ARGV[9]) then return 0 end
local key = P..'t:'..id
local score = -tonumber(redis.call('HGET', key, 'window_start'))
local report = redis.call('HGET', key, 'report')
move(P, id, report, 'downloading', state, score)
redis.call('ZREM', P..'leases', id)
redis.call('HSET', key, 'owner', '', 'modified', now, 'last_error', ARGV[8])
-- Only a download replaces the hash: a revision that fails still knows
-- which file in place it is to replace.
if state == 'downloaded' then
  redis.call('HSET', key, 'bytes', ARGV[6], 'sha256', ARGV[7])
end
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
  redis.call('ZADD', P..'ready', score, id)
end
settle(P, id, now)
return 1
