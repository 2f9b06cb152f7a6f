-- Forget tasks retired before BEFORE, at most LIMIT of them, and the
-- counters of reports left with no task.  ARGV: P, before, limit.
local P, before, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', P..'retired', '-inf', before, 'LIMIT', 0, limit)
local emptied = {}
for _, id in ipairs(ids) do
  local key = P..'t:'..id
  local report = redis.call('HGET', key, 'report')
  redis.call('ZREM', P..'retired', id)
  redis.call('SREM', P..'ids', id)
  redis.call('HDEL', P..'revise:due', id)
  if report then
    redis.call('ZREM', P..'s:retired', id)
    redis.call('ZREM', P..'s:retired:'..report, id)
    redis.call('HINCRBY', P..'c:'..report, 'retired', -1)
    emptied[report] = true
  end
  redis.call('DEL', key)
end
for report in pairs(emptied) do
  local left = 0
  local counts = redis.call('HVALS', P..'c:'..report)
  for _, n in ipairs(counts) do left = left + tonumber(n) end
  if left == 0 then
    redis.call('DEL', P..'c:'..report)
    redis.call('SREM', P..'reports', report)
    redis.call('HDEL', P..'revisions', report)
  end
end
return #ids
