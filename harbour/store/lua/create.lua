-- Create the tasks not known yet.  ARGV: P, clock, then (id, url, filename,
-- report, window_start, window_end) for each.
-- A task is known by its hash: an id whose hash is gone (evicted, or
-- deleted by hand) is created anew, once what is left of it under REPORT
-- is forgotten (its listings and their counts, its places in the queues),
-- so that nothing counts or lists it twice.  (Its parse count, under
-- pc:<report>, cannot be told without its hash, and stays.)
local function forget_remains(id, report)
  for _, state in ipairs(STATES) do
    if redis.call('ZREM', P..'s:'..state..':'..report, id) == 1 then
      redis.call('HINCRBY', P..'c:'..report, state, -1)
    end
    redis.call('ZREM', P..'s:'..state, id)
  end
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', LEASES, id)
  redis.call('ZREM', RETIRED, id)
  redis.call('ZREM', PARSE_LEASES, id)
  redis.call('HDEL', DUE, id)
end
groups(6, 5, 6)
local at = now()
local created = {}
for i = 3, #ARGV, 6 do
  local id, report = ARGV[i], ARGV[i + 3]
  local key = P..'t:'..id
  if redis.call('EXISTS', key) == 0 then
    -- The count first (see move.lua), and its report with it: a report
    -- counted is one counts() and recount.lua find.
    redis.call('HINCRBY', P..'c:'..report, 'pending', 1)
    redis.call('SADD', REPORTS, report)
    if redis.call('SADD', IDS, id) == 0 then forget_remains(id, report) end
    local score = -tonumber(ARGV[i + 4])
    redis.call('HSET', key, 'id', id, 'url', ARGV[i + 1], 'filename', ARGV[i + 2],
      'report', report, 'window_start', ARGV[i + 4], 'window_end', ARGV[i + 5], 'state', 'pending',
      'attempts', 0, 'not_before', 0, 'last_error', '', 'bytes', 0, 'sha256', '',
      'created', at, 'modified', at, 'owner', '')
    redis.call('ZADD', READY, score, id)
    redis.call('ZADD', P..'s:pending', score, id)
    redis.call('ZADD', P..'s:pending:'..report, score, id)
    created[report] = (created[report] or 0) + 1
  end
end
return flat(created)
