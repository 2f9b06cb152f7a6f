local P, id, owner, now, not_before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if not held(P, id, owner, ARGV[8]) then return 0 end
local key = P..'t:'..id
local score = -tonumber(redis.call('HGET', key, 'window_start'))
move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
redis.call('ZREM', P..'leases', id)
redis.call('HSET', key, 'owner', '', 'modified', now, 'not_before', not_before, 'last_error', ARGV[6])
-- An answer that says only "not yet" uses no attempt.
if ARGV[7] == '0' then redis.call('HINCRBY', key, 'attempts', -1) end
if not_before > now then
  redis.call('ZADD', P..'delayed', not_before, id)
else
  redis.call('ZADD', P..'ready', score, id)
end
settle(P, id, now)
return 1
