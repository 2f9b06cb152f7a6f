-- Forget entries of RETIRED_TABLES whose tables are gone: ARGV[3..], from
-- the head, in order, as long as each is there (another drainer may have
-- forgotten them already; an entry is never forgotten unless given).  A
-- task among them downloaded again (brought back while its tables were
-- being dropped) is queued to be parsed again: the drop may have taken
-- the tables its parse had written.  ARGV: P, clock, entries...
-- Returns how many were forgotten.
local forgotten = 0
for i = 3, #ARGV do
  if redis.call('LINDEX', RETIRED_TABLES, 0) ~= ARGV[i] then break end
  redis.call('LPOP', RETIRED_TABLES)
  forgotten = forgotten + 1
  local id = string.match(ARGV[i], '^([^\n]*)\n')
  local key = P..'t:'..(id or '')
  if id and redis.call('HGET', key, 'state') == 'downloaded' then
    local parse = redis.call('HGET', key, 'parse') or ''
    if parse ~= 'queued' then
      redis.call('ZREM', PARSE_LEASES, id)
      parse_move(key, redis.call('HGET', key, 'report'), parse, 'queued')
      redis.call('HSET', key, 'parse_owner', '')
      redis.call('ZADD', PARSE_QUEUE, now(), id)
    end
  end
end
return forgotten
