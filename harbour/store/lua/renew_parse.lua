-- Extend a parse lease LEASE seconds from now.  ARGV: P, clock, id, owner, token, lease.
local id = ARGV[3]
if not parse_held(id, ARGV[4], ARGV[5]) then return 0 end
redis.call('ZADD', PARSE_LEASES, now() + tonumber(ARGV[6]), id)
return 1
