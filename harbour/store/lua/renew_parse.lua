-- Extend a parse lease LEASE seconds from now.  ARGV: P, clock, id, owner, token, lease.
local id, lease = ARGV[3], number(6)
if not parse_held(id, ARGV[4], ARGV[5]) then return 0 end
redis.call('ZADD', PARSE_LEASES, now() + lease, id)
return 1
