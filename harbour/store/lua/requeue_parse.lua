-- Queue downloaded tasks (of REPORT, if not '') to be parsed again: those
-- at positions OFFSET to OFFSET + LIMIT - 1 of their listing, so that no
-- script runs long; with ONLY_UNQUEUED '1', only those never queued.  A
-- task already queued keeps its place.
-- ARGV: P, clock, report, offset, limit, only_unqueued.
-- Returns {tasks looked at, tasks queued}.
local report, offset, limit, only_unqueued = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local source = P..'s:downloaded'
if report ~= '' then source = source..':'..report end
local ids = redis.call('ZRANGE', source, offset, offset + limit - 1)
local queued = 0
for _, id in ipairs(ids) do
  local key = P..'t:'..id
  local parse = redis.call('HGET', key, 'parse') or ''
  if parse ~= 'queued' and (parse == '' or not only_unqueued) then
    redis.call('ZREM', PARSE_LEASES, id)
    parse_move(key, redis.call('HGET', key, 'report'), parse, 'queued')
    redis.call('HSET', key, 'parse_owner', '')
    redis.call('ZADD', PARSE_QUEUE, now(), id)
    queued = queued + 1
  end
end
return {#ids, queued}
