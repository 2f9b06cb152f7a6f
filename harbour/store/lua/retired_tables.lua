-- The oldest ARGV[3] entries of RETIRED_TABLES (see retire.lua): windows
-- whose tables are to go.  ARGV: P, clock, count (at least 1), the storage
-- of the reader's downloads ('' if unknown).
-- Returns {entries, dropped}: the entries as they are (to forget them by,
-- see forget_retired_tables.lua), and those of them whose tables are to
-- go: whose task is still retired, or marked to be (its download under
-- way), or forgotten since (purged: nobody asks for it), or whose request
-- answers no data now (empty, see finish_many.lua); one brought back or
-- downloaded since keeps its tables.  A window whose file was downloaded
-- anew into another storage (see finish_many.lua) is the reader's to drop
-- only if its tables were parsed from the reader's storage, and the task's
-- file is not there again since.  A window resized so that it no longer
-- holds all of its file (see redefine.lua) drops the tables parsed from
-- that file unless a file downloaded since has been parsed: that parse
-- replaced them (its task passed through pending, which ends any parse,
-- before it was downloaded again); or unless its window holds again the
-- one it had before (its request put back before the entry is read): its
-- tables then hold only hours it asks for, as a grown window's do.
local entries = redis.call('LRANGE', RETIRED_TABLES, 0, whole(3, 1) - 1)
local mine = storage_name(4)
local dropped = {}
for _, entry in ipairs(entries) do
  local id, moved_from, old_start, old_end = listed(entry)
  if id then
    local key = P..'t:'..id
    local state = redis.call('HGET', key, 'state')
    if old_start then
      local parsed_anew = state == 'downloaded' and redis.call('HGET', key, 'parse') == 'parsed'
      local holds = state
        and tonumber(redis.call('HGET', key, 'window_start')) <= old_start
        and tonumber(redis.call('HGET', key, 'window_end')) >= old_end
      if not parsed_anew and not holds then
        table.insert(dropped, entry)
      end
    elseif moved_from then
      if mine ~= '' and moved_from == mine and (redis.call('HGET', key, 'storage') or '') ~= mine then
        table.insert(dropped, entry)
      end
    elseif not state or state == 'retired' or state == 'empty'
      or (state == 'downloading' and redis.call('HGET', key, 'retiring') == '1') then
      table.insert(dropped, entry)
    end
  end
end
return {entries, dropped}
