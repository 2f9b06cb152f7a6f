-- End claims, in turn.  ARGV: P, clock, then for each claim: id, owner,
-- state, bytes, sha256, error, token, storage.  Returns one 1 or 0 per
-- claim.
-- The end of one claim: 1, or 0 (and nothing changes) if OWNER no longer
-- holds claim TOKEN ('': any).  A download records the STORAGE its file
-- went to ('': unknown), whose parse queue it joins (see parse_queue).
local function finish(id, owner, state, bytes, sha256, last_error, token, storage)
  if not held(P, id, owner, token) then return 0 end
  local at = now()
  local key = P..'t:'..id
  local score = -tonumber(redis.call('HGET', key, 'window_start'))
  local report = redis.call('HGET', key, 'report')
  local ahead = redis.call('HGET', key, 'ahead_from') or ''
  if ahead ~= '' and state ~= 'downloaded' then
    -- A day ahead fetched again keeps what it had unless data replaces it.
    local why = last_error
    if why == '' then why = state == 'empty' and 'no data' or state end
    ahead_back(P, id, 'downloading', at, why)
    settle(P, id, at)
    return 1
  end
  redis.call('HDEL', key, 'ahead_from', 'ahead_fetched')
  -- Only a download replaces the hash: a revision that fails still knows
  -- which file in place it is to replace.
  if state == 'downloaded' then
    -- Downloaded anew into another storage than its last file's: the
    -- tables parsed from that one, on the host that has it, are to go
    -- (this file is parsed where it is).
    local before = redis.call('HGET', key, 'storage') or ''
    if before ~= '' and before ~= storage then
      list_tables(id, report, redis.call('HGET', key, 'filename'), before)
    end
    redis.call('HSET', key, 'bytes', bytes, 'sha256', sha256, 'storage', storage)
  end
  move(P, id, report, 'downloading', state, score)
  -- No data now, where a file answered before (a revision or a changed
  -- request fetched again): its window's tables go, as a retired one's
  -- do, and the file stays (see retired_tables.lua).
  if state == 'empty' and tonumber(redis.call('HGET', key, 'bytes') or '0') > 0 then
    list_tables(id, report, redis.call('HGET', key, 'filename'))
  end
  redis.call('ZREM', LEASES, id)
  redis.call('HSET', key, 'owner', '', 'modified', at, 'last_error', last_error,
    'ended', redis.call('HGET', key, 'claim'))
  -- Its request changed while it was being fetched (see redefine.lua): what
  -- it fetched answers the old one, so it is fetched again.
  local stale = redis.call('HGET', key, 'stale')
  if stale and stale ~= '' then
    redis.call('HDEL', key, 'stale')
    if ahead ~= '' then
      -- Still a day ahead, fetched again: the answer just fetched is
      -- kept as a changed request's is, even for a resized window, as it
      -- is what the day keeps if no other comes; and the day is not
      -- fetched once it is over (see ahead_over in move.lua).
      refetch(P, id, report, state, 'changed', score, 'request changed while fetched')
      redis.call('HSET', key, 'ahead_from', state)
    else
      refetch(P, id, report, state, stale, score, 'request changed while fetched')
    end
  end
  settle(P, id, at)
  return 1
end
groups(8, 4)
for i = 3, #ARGV, 8 do
  one_of(i + 2, 'downloaded', 'empty', 'failed')
  storage_name(i + 7)
end
local ended = {}
for i = 3, #ARGV, 8 do
  table.insert(ended, finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7]))
end
return ended
