-- Claim the oldest due task of the parse queue.  ARGV: P, clock, owner, lease.
local owner, lease = ARGV[3], number(4)
local at = now()
-- The queue holds only downloaded tasks waiting to be parsed (move.lua
-- keeps it so); anything else is dropped, boundedly.
for ignored = 1, 100 do
  local due = redis.call('ZRANGEBYSCORE', PARSE_QUEUE, '-inf', at, 'LIMIT', 0, 1)
  if #due == 0 then return false end
  local id = due[1]
  local key = P..'t:'..id
  redis.call('ZREM', PARSE_QUEUE, id)
  if redis.call('HGET', key, 'state') == 'downloaded' and redis.call('HGET', key, 'parse') == 'queued' then
    parse_move(key, redis.call('HGET', key, 'report'), 'queued', 'parsing')
    redis.call('HINCRBY', key, 'parse_claim', 1)
    redis.call('HSET', key, 'parse_owner', owner)
    redis.call('ZADD', PARSE_LEASES, at + lease, id)
    return cjson.encode(redis.call('HGETALL', key))
  end
end
return false
