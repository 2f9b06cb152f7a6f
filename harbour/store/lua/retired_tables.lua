-- The oldest ARGV[3] entries of RETIRED_TABLES (see retire.lua): windows
-- whose tables are to go.  ARGV: P, clock, count.
-- Returns {entries read, {report, filename, ...}}: the flat list names
-- those whose task is still retired (or marked to be, its download under
-- way); one brought back since (or purged) keeps its tables.  The entries stay until forgotten (LTRIM) once their
-- tables are gone.
local entries = redis.call('LRANGE', RETIRED_TABLES, 0, tonumber(ARGV[3]) - 1)
local files = {}
for _, entry in ipairs(entries) do
  local id, report, filename = string.match(entry, '^([^\n]*)\n([^\n]*)\n(.*)$')
  local key = P..'t:'..(id or '')
  local state = id and redis.call('HGET', key, 'state')
  if state == 'retired' or (state == 'downloading' and redis.call('HGET', key, 'retiring') == '1') then
    table.insert(files, report)
    table.insert(files, filename)
  end
end
return {#entries, files}
