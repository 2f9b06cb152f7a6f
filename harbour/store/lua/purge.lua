-- Forget tasks retired at least OLDER_THAN seconds ago, at most LIMIT of
-- them, and the counters of reports left with no task.  The time is the
-- script's (Redis's own, as retire.lua's): a caller's clock may be far
-- from it.  ARGV: P, clock, older_than, limit.
local older_than, limit = number(3), whole(4, 1)
local ids = redis.call('ZRANGEBYSCORE', RETIRED, '-inf', now() - older_than, 'LIMIT', 0, limit)
local emptied = {}
for _, id in ipairs(ids) do
  local key = P..'t:'..id
  local report = redis.call('HGET', key, 'report')
  redis.call('ZREM', RETIRED, id)
  redis.call('SREM', IDS, id)
  redis.call('HDEL', DUE, id)
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
    redis.call('DEL', P..'c:'..report, P..'pc:'..report)
    redis.call('SREM', REPORTS, report)
    redis.call('HDEL', REVISIONS, report)
  end
end
return #ids
