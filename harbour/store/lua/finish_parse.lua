-- End a parse: parsed (ERROR '') or unparsable.
-- ARGV: P, clock, id, owner, token, rows, error.
local id, error = ARGV[3], ARGV[7]
if error == '' then whole(6, 0) end
if not parse_held(id, ARGV[4], ARGV[5]) then return 0 end
local key = P..'t:'..id
redis.call('ZREM', PARSE_LEASES, id)
parse_move(key, redis.call('HGET', key, 'report'), 'parsing', error == '' and 'parsed' or 'unparsable')
redis.call('HSET', key, 'parse_owner', '', 'parse_error', error)
redis.call('HDEL', key, 'parse_cut_off')
if error == '' then redis.call('HSET', key, 'rows', ARGV[6]) end
return 1
