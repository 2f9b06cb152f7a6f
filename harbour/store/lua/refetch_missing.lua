-- Put back to pending, to be downloaded again, the downloaded tasks whose
-- files are gone from their storage (see harbour/services/audit.py): due
-- at once, their attempts reset, their hash cleared so that the next
-- download is a first one, not a revision (their revision unchanged, not
-- counted as revised).  Their bytes and storage stay: a download into
-- another storage, or one answering no data, lists the tables parsed from
-- the file gone to go (see finish_many.lua).  A task is moved only if it
-- is still downloaded with the storage and hash given: one downloaded
-- again, revised, retired or claimed meanwhile is left alone.
-- ARGV: P, clock, then (id, storage, sha256) for each.  Returns the ids
-- moved.
groups(3)
for i = 3, #ARGV, 3 do storage_name(i + 1) end
local at = now()
local moved = {}
for i = 3, #ARGV, 3 do
  local id, storage, sha256 = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = P..'t:'..id
  local state, had, hash, report, start = unpack(redis.call('HMGET', key, 'state', 'storage', 'sha256', 'report',
    'window_start'))
  if state == 'downloaded' and (had or '') == storage and hash == sha256 then
    local score = -tonumber(start)
    move(P, id, report, 'downloaded', 'pending', score)
    -- As FILE_MISSING in tasks.py.
    redis.call('HSET', key, 'sha256', '', 'attempts', 0, 'not_before', 0,
      'last_error', 'its file was gone from the download directory', 'modified', at)
    redis.call('ZADD', READY, score, id)
    table.insert(moved, id)
  end
end
return moved
