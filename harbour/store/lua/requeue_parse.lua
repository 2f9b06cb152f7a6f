-- Queue downloaded tasks (of REPORT, if not '') to be parsed again: one
-- ZSCAN step of their listing from CURSOR, so that no script runs long;
-- with ONLY_UNQUEUED '1', only those never queued.  A task already queued
-- keeps its place.  A scan returns every task listed for all of it, however
-- the listing changes between steps (offsets would shift as tasks leave
-- it, and skip others); a task it returns twice is queued already.
-- ARGV: P, clock, report, cursor, count, only_unqueued.
-- Returns {next cursor ('0' once the scan is done), tasks queued}.
-- The cursor stays a string: it may be past what a Lua number holds exactly.
local report, cursor, count, only_unqueued = ARGV[3], ARGV[4], whole(5, 1), ARGV[6] == '1'
if not string.match(cursor, '^%d+$') then refuse('ARGV[4] is not a scan cursor: '..cursor) end
local source = P..'s:downloaded'
if report ~= '' then source = source..':'..report end
local step = redis.call('ZSCAN', source, cursor, 'COUNT', count)
local found = step[2]
local queued = 0
-- ZSCAN answers member, score, member, score...
for i = 1, #found, 2 do
  local id = found[i]
  local key = P..'t:'..id
  local parse = redis.call('HGET', key, 'parse') or ''
  if redis.call('HGET', key, 'state') ~= 'downloaded' then
    -- Its hash is gone (evicted, or deleted by hand): no task, and no file
    -- to parse.  Dropped from the listing (a scan goes on past a member
    -- removed), and not written back as a hash of parse fields alone.
    redis.call('ZREM', source, id)
    redis.call('ZREM', P..'s:downloaded', id)
  elseif parse ~= 'queued' and (parse == '' or not only_unqueued) then
    redis.call('ZREM', PARSE_LEASES, id)
    parse_move(key, redis.call('HGET', key, 'report'), parse, 'queued')
    redis.call('HSET', key, 'parse_owner', '')
    redis.call('HDEL', key, 'parse_cut_off')
    redis.call('ZADD', parse_queue(key), now(), id)
    queued = queued + 1
  end
end
return {step[1], queued}
