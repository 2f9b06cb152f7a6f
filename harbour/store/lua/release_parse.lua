-- Give a parse back to the queue, due DELAY seconds from now.
-- ARGV: P, clock, id, owner, token, delay, error.
local id, delay = ARGV[3], number(6)
if not parse_held(id, ARGV[4], ARGV[5]) then return 0 end
local key = P..'t:'..id
redis.call('ZREM', PARSE_LEASES, id)
parse_move(key, redis.call('HGET', key, 'report'), 'parsing', 'queued')
redis.call('HSET', key, 'parse_owner', '', 'parse_error', ARGV[7])
redis.call('ZADD', parse_queue(key), now() + delay, id)
return 1
