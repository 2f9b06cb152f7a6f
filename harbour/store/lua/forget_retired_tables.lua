-- Forget entries of RETIRED_TABLES whose tables are gone: the N entries
-- given, from the head, in order, as long as each is there (another
-- drainer may have forgotten them already; an entry is never forgotten
-- unless given).  A task among those whose tables were dropped that is
-- downloaded again (brought back while they were being dropped) is queued
-- to be parsed again: the drop may have taken the tables its parse wrote
-- (not one whose file moved to another storage: its parse writes there).
-- ARGV: P, clock, N, entries (N), the entries whose tables were dropped.
-- Returns how many were forgotten.
local n = whole(3, 0)
if 3 + n > #ARGV then refuse(n..' entries named, '..(#ARGV - 3)..' given') end
local dropped = {}
for i = 4 + n, #ARGV do dropped[ARGV[i]] = true end
local forgotten = 0
for i = 4, 3 + n do
  if redis.call('LINDEX', RETIRED_TABLES, 0) ~= ARGV[i] then break end
  redis.call('LPOP', RETIRED_TABLES)
  forgotten = forgotten + 1
  local id, moved_from = listed(ARGV[i])
  local key = P..'t:'..(id or '')
  if id and not moved_from and dropped[ARGV[i]] and redis.call('HGET', key, 'state') == 'downloaded' then
    local parse = redis.call('HGET', key, 'parse') or ''
    if parse ~= 'queued' then
      redis.call('ZREM', PARSE_LEASES, id)
      parse_move(key, redis.call('HGET', key, 'report'), parse, 'queued')
      redis.call('HSET', key, 'parse_owner', '')
      redis.call('HDEL', key, 'parse_cut_off')
      redis.call('ZADD', parse_queue(key), now(), id)
    end
  end
end
return forgotten
