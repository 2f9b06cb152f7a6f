-- Extend a lease LEASE seconds from now.  ARGV: P, clock, id, owner, lease, token.
local id = ARGV[3]
if not held(P, id, ARGV[4], ARGV[6]) then return 0 end
redis.call('ZADD', LEASES, now() + tonumber(ARGV[5]), id)
return 1
