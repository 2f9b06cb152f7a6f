-- Extend a lease LEASE seconds from now.  ARGV: P, clock, id, owner, lease, token.
local id, lease = ARGV[3], number(5)
if not held(P, id, ARGV[4], ARGV[6]) then return 0 end
redis.call('ZADD', LEASES, now() + lease, id)
return 1
