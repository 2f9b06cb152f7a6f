-- Create the tasks not known yet.  ARGV: P, clock, then (id, url, filename,
-- report, window_start, window_end) for each.
groups(6, 5, 6)
local at = now()
local created = {}
for i = 3, #ARGV, 6 do
  local id, report = ARGV[i], ARGV[i + 3]
  if redis.call('SADD', IDS, id) == 1 then
    local score = -tonumber(ARGV[i + 4])
    redis.call('HSET', P..'t:'..id, 'id', id, 'url', ARGV[i + 1], 'filename', ARGV[i + 2],
      'report', report, 'window_start', ARGV[i + 4], 'window_end', ARGV[i + 5], 'state', 'pending',
      'attempts', 0, 'not_before', 0, 'last_error', '', 'bytes', 0, 'sha256', '',
      'created', at, 'modified', at, 'owner', '')
    redis.call('ZADD', READY, score, id)
    redis.call('ZADD', P..'s:pending', score, id)
    redis.call('ZADD', P..'s:pending:'..report, score, id)
    redis.call('HINCRBY', P..'c:'..report, 'pending', 1)
    redis.call('SADD', REPORTS, report)
    created[report] = (created[report] or 0) + 1
  end
end
return flat(created)
