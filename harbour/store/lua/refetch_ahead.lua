-- Put back to pending, to be fetched again, the final tasks (downloaded or
-- empty) among those given whose window ends after now and whose last
-- fetch was before SINCE: the days ahead of a report OASIS serves only
-- current data of and publishes ahead, fetched again each day until their
-- day is past (see harbour/services/work.py), so that a past day ends with
-- the answer fetched on it.  A downloaded one keeps its hash, so that the
-- file in place is not taken for the new answer, and gets its revision
-- raised, so that a copy of the file the new one replaces is kept under
-- its own name (with keep_revisions), as a revision's is; nothing is
-- counted as revised by OASIS, and no tables are listed to go: the new
-- answer's parse replaces them.  It keeps the state it came from as
-- 'ahead_from': unless a new answer with data comes before its day ends,
-- it goes back to that state as it was (see ahead_back in move.lua), its
-- 'fetched' that of the answer it keeps ('ahead_fetched'), so that a
-- revision published since is not taken as older than it.  A window
-- already over, or fetched or put back ('ahead_asked') since SINCE, is
-- left alone, and so is every other state.
-- ARGV: P, clock, since, then the ids.  Returns the ids moved, each once.
local since = number(3)
local at = now()
local moved = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local key = P..'t:'..id
  local state, report, start, finish, fetched, modified, asked = unpack(redis.call('HMGET', key, 'state',
    'report', 'window_start', 'window_end', 'fetched', 'modified', 'ahead_asked'))
  if (state == 'downloaded' or state == 'empty') and tonumber(finish) > at
      and tonumber(fetched or modified) < since and tonumber(asked or '0') < since then
    local score = -tonumber(start)
    move(P, id, report, state, 'pending', score)
    if state == 'downloaded' then redis.call('HINCRBY', key, 'revision', 1) end
    -- As AHEAD in tasks.py.
    redis.call('HSET', key, 'attempts', 0, 'not_before', 0,
      'last_error', 'fetched again: its day is still ahead', 'modified', at, 'ahead_from', state,
      'ahead_fetched', fetched or modified, 'ahead_asked', at)
    redis.call('ZADD', READY, score, id)
    table.insert(moved, id)
  end
end
return moved
