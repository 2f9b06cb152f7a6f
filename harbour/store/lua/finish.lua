-- End a claim.  ARGV: P, clock, id, owner, state, bytes, sha256, error, token.
local id, owner, state = ARGV[3], ARGV[4], ARGV[5]
if not held(P, id, owner, ARGV[9]) then return 0 end
local at = now()
local key = P..'t:'..id
local score = -tonumber(redis.call('HGET', key, 'window_start'))
local report = redis.call('HGET', key, 'report')
-- Only a download replaces the hash: a revision that fails still knows
-- which file in place it is to replace.
if state == 'downloaded' then
  redis.call('HSET', key, 'bytes', ARGV[6], 'sha256', ARGV[7])
end
move(P, id, report, 'downloading', state, score)
redis.call('ZREM', LEASES, id)
redis.call('HSET', key, 'owner', '', 'modified', at, 'last_error', ARGV[8])
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
