-- Give tasks whose request changed under the same file name their new URL
-- and window.  ARGV: P, clock, then (id, url, window_start, window_end, how)
-- for each, HOW being 'resized' (the window grew or shrank: its file is
-- replaced, nothing kept), 'changed' (the report's definition changed:
-- a downloaded file is kept as a revision) or 'restated' (the same window
-- asked for in other words: only the URL changes).  A final task resized or
-- changed is fetched again; one being downloaded is fetched again once it
-- finishes ('stale').
groups(5, 3, 4)
for i = 3, #ARGV, 5 do one_of(i + 4, 'resized', 'changed', 'restated') end
local at = now()
local out = {}
for i = 3, #ARGV, 5 do
  local id, how = ARGV[i], ARGV[i + 4]
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  if state then
    local report = redis.call('HGET', key, 'report')
    local score = -tonumber(ARGV[i + 2])
    redis.call('HSET', key, 'url', ARGV[i + 1], 'window_start', ARGV[i + 2], 'window_end', ARGV[i + 3],
      'modified', at)
    if how == 'restated' or state == 'downloading' or state == 'pending' then
      -- Its state stands (the same request, whatever its state; one
      -- waiting or under way): its listings, and the ready queue if it is
      -- there, order it by its new window, as they would once it moves.
      redis.call('ZADD', P..'s:'..state, 'XX', score, id)
      redis.call('ZADD', P..'s:'..state..':'..report, 'XX', score, id)
      if state == 'pending' then redis.call('ZADD', READY, 'XX', score, id) end
      if how ~= 'restated' and state == 'downloading' then redis.call('HSET', key, 'stale', how) end
    else
      refetch(P, id, report, state, how, score, how == 'resized' and 'window resized' or 'request changed')
    end
    out[report] = (out[report] or 0) + 1
  end
end
return flat(out)
