local P, id, owner, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not held(P, id, owner) then return 0 end
local key = P..'t:'..id
move(P, id, redis.call('HGET', key, 'report'), 'downloading', state,
     -tonumber(redis.call('HGET', key, 'window_start')))
redis.call('ZREM', P..'leases', id)
redis.call('HSET', key, 'owner', '', 'modified', now, 'last_error', ARGV[8])
-- Only a download replaces the hash: a revision that fails still knows
-- which file in place it is to replace.
if state == 'downloaded' then
  redis.call('HSET', key, 'bytes', ARGV[6], 'sha256', ARGV[7])
end
return 1
