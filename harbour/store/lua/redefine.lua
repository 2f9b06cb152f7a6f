-- Give tasks whose request changed under the same file name their new URL
-- and window.  ARGV: P, clock, then (id, read_url, url, window_start,
-- window_end, how_final, how_other) for each.  HOW is 'resized' (the window
-- grew or shrank: its file is replaced, nothing kept), 'changed' (the
-- report's definition changed: a downloaded file is kept as a revision),
-- 'restated' (the same window asked for in other words: only the URL
-- changes) or '' (nothing to do); HOW_FINAL is for a task downloaded or
-- empty, HOW_OTHER for one in any other state (see redefinition in
-- tasks.py).  The script picks by the state it reads, not by the state
-- the caller read: a download may have ended since.  A task whose URL is
-- no longer READ_URL (another create changed it since) is left alone: what
-- to do was decided from READ_URL, and the next create decides from the
-- URL it finds; so is one retired since.  A final task resized or changed
-- is fetched again; one being downloaded is fetched again once it finishes
-- ('stale').  A task resized or changed to a window that does not hold
-- all of the file downloaded for it before has that file's tables listed
-- to go (see retired_tables.lua), whatever its state.
groups(7, 4, 5)
for i = 3, #ARGV, 7 do
  one_of(i + 5, '', 'resized', 'changed', 'restated')
  one_of(i + 6, '', 'resized', 'changed', 'restated')
end
local at = now()
local out = {}
for i = 3, #ARGV, 7 do
  local id = ARGV[i]
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  local how = ''
  if state and state ~= 'retired' and redis.call('HGET', key, 'url') == ARGV[i + 1] then
    how = (state == 'downloaded' or state == 'empty') and ARGV[i + 5] or ARGV[i + 6]
  end
  if how ~= '' then
    local report = redis.call('HGET', key, 'report')
    local score = -tonumber(ARGV[i + 3])
    -- Its window now one that does not hold all of the file downloaded
    -- for it before (an hourly window that shrank keeps its name): the
    -- tables parsed from that file hold hours that other windows now
    -- answer, counted twice until it is fetched and parsed again (for good
    -- if that fails), so they go now, as a retired window's do.  A window
    -- that grew keeps them: they hold only hours it still asks for.
    -- The entry says the window it had, so that one asked for again
    -- before the entry is read keeps its tables.
    local had_file = state == 'downloaded' or tonumber(redis.call('HGET', key, 'bytes') or '0') > 0
    local old_start, old_end = redis.call('HGET', key, 'window_start'), redis.call('HGET', key, 'window_end')
    if how ~= 'restated' and had_file
      and (tonumber(ARGV[i + 3]) > tonumber(old_start) or tonumber(ARGV[i + 4]) < tonumber(old_end)) then
      list_tables(id, report, redis.call('HGET', key, 'filename'), RESIZED..':'..old_start..':'..old_end)
    end
    redis.call('HSET', key, 'url', ARGV[i + 2], 'window_start', ARGV[i + 3], 'window_end', ARGV[i + 4],
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
