-- Retire tasks the manifest no longer asks for (a report disabled or
-- removed, a window out of range): never claimed again.  One being
-- downloaded is marked, and retired as soon as its attempt ends, whatever
-- the end (see settle in move.lua).  ARGV: P, clock, ids...
-- Returns {tasks retired, {report, filename, ...}}: the flat list names
-- each task retired or marked here that has a file downloaded before
-- (downloaded, or put back to pending since: its bytes are kept), whose
-- tables are to go.  Each is also pushed, as "id\nreport\nfilename",
-- on RETIRED_TABLES, where it stays until its tables are gone (see
-- retired_tables.lua): an event alone would be lost with a process killed
-- before publishing it.
local at = now()
local n = 0
local files = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  local marked = state == 'downloading' and redis.call('HGET', key, 'retiring') == '1'
  if state and state ~= 'retired' and not marked then
    if state == 'downloaded' or tonumber(redis.call('HGET', key, 'bytes') or '0') > 0 then
      local report, filename = redis.call('HGET', key, 'report'), redis.call('HGET', key, 'filename')
      table.insert(files, report)
      table.insert(files, filename)
      list_tables(id, report, filename)
    end
    if state == 'downloading' then
      redis.call('HSET', key, 'retiring', '1')
    else
      retire_task(P, id, at)
      n = n + 1
    end
  end
end
return {n, files}
