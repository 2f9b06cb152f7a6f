-- One step of the recount of REPORT's parse counts (pc:<report>), which
-- have no listing to be sized: its downloaded tasks (the only ones with a
-- parse state) are walked with ZSCAN, COUNT at a time, so that no script
-- runs long, and each one's parse state is tallied in P pcr:<report>.
-- Tasks move between steps (other hubs' workers go on), so parse_move (in
-- move.lua) keeps the tally in step while it exists: a task it moves is
-- tallied as it is after the move, once, and then moved in the tally as
-- it moves.  A scan returns every task listed for all of it, and a task it
-- did not list all along either moved (tallied so) or counts for nothing
-- (gone, or never queued): once the scan is done, the tally is what the
-- counts should say, and they are set to it.
-- The first step (CURSOR '0') begins a tally afresh, dropping one left by
-- a recount cut off.  The tally expires TTL seconds after the latest step,
-- so one left so stops costing parse_move; should it be gone before the
-- scan is done (expired, or evicted by a volatile-* policy), the recount
-- gives up, changing nothing, and the next one begins again.
-- ARGV: P, clock, report, cursor, count.
-- Returns {next cursor ('0' once done), {for each parse state whose count
-- was wrong: the state, what its count said, its count now}}.
-- The cursor stays a string: it may be past what a Lua number holds exactly.
local report, cursor, count = ARGV[3], ARGV[4], whole(5, 1)
if not string.match(cursor, '^%d+$') then refuse('ARGV[4] is not a scan cursor: '..cursor) end
local TTL = 600
local tally = P..'pcr:'..report
if cursor == '0' then
  redis.call('DEL', tally)
  for _, state in ipairs(PARSE_STATES) do redis.call('HSET', tally, state, 0) end
elseif redis.call('TYPE', tally).ok ~= 'hash' then
  return {'0', {}}
end
redis.call('EXPIRE', tally, TTL)
local listing = P..'s:downloaded:'..report
local step = redis.call('ZSCAN', listing, cursor, 'COUNT', count)
local found = step[2]
-- ZSCAN answers member, score, member, score...
for i = 1, #found, 2 do
  local id = found[i]
  local key = P..'t:'..id
  if redis.call('HSETNX', tally, 't:'..id, 1) == 1 and redis.call('HGET', key, 'state') == 'downloaded' then
    local parse = redis.call('HGET', key, 'parse') or ''
    if parse ~= '' then redis.call('HINCRBY', tally, parse, 1) end
  end
end
if step[1] ~= '0' then return {step[1], {}} end
local counts = P..'pc:'..report
local wrong = {}
for _, state in ipairs(PARSE_STATES) do
  correct(counts, state, tonumber(redis.call('HGET', tally, state)), wrong)
end
redis.call('DEL', tally)
return {'0', wrong}
