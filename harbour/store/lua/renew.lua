local P, id, owner, expiry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not held(P, id, owner) then return 0 end
redis.call('ZADD', P..'leases', expiry, id)
return 1
