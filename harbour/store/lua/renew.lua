local P, id, owner, expiry, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not held(P, id, owner, token) then return 0 end
redis.call('ZADD', P..'leases', expiry, id)
return 1
