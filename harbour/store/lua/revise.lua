-- Apply revisions: a downloaded or empty task fetched before its revision
-- is pending again; a retired one that was either comes back pending when
-- asked for again; one being downloaded is noted in DUE and looked at by
-- every later call, once its attempt has ended.
-- ARGV: P, clock, then (id, at, version) for each.
groups(3, 2)
local at_now = now()
local due = DUE
local changed = {}
local function revise(id, at, version)
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  if state == 'downloading' then
    -- Its answer may predate the revision: look again once it is final.
    local noted = redis.call('HGET', due, id)
    if not noted or tonumber(string.match(noted, '^[^|]+')) < at then
      -- %.17g: Lua's tostring keeps 14 digits, which would move the time.
      redis.call('HSET', due, id, string.format('%.17g', at)..'|'..version)
    end
    return
  end
  redis.call('HDEL', due, id)
  -- A retired task is looked at as the state it would come back to: a
  -- revision met while it was away must not be lost when it returns.
  local previous = state
  if state == 'retired' then previous = redis.call('HGET', key, 'retired_from') end
  if previous ~= 'downloaded' and previous ~= 'empty' then return end
  local fetched = tonumber(redis.call('HGET', key, 'fetched') or redis.call('HGET', key, 'modified'))
  if fetched >= at then return end
  local report = redis.call('HGET', key, 'report')
  local revision = tonumber(redis.call('HGET', key, 'revision') or '0')
  local revised = tonumber(redis.call('HGET', key, 'revised') or '0')
  local why = 'published after it was fetched'
  if previous == 'downloaded' then
    revision = redis.call('HINCRBY', key, 'revision', 1)
    -- Only here: revision also numbers the copies kept of files fetched
    -- again for other reasons (see refetch_ahead.lua).
    revised = redis.call('HINCRBY', key, 'revised', 1)
    redis.call('HINCRBY', REVISIONS, report, 1)
    why = 'revised in OASIS (version '..version..')'
  end
  if state == 'retired' then
    -- It comes back pending if asked for again (see revive.lua), its file
    -- in place kept as a revision as for one revised while asked for.
    redis.call('HSET', key, 'retired_from', 'pending', 'modified', at_now)
  else
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    move(P, id, report, state, 'pending', score)
    redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', why, 'modified', at_now)
    redis.call('ZADD', READY, score, id)
  end
  table.insert(changed, cjson.encode({id = id, report = report, previous = state, revision = revision,
    revised = revised, url = redis.call('HGET', key, 'url'), filename = redis.call('HGET', key, 'filename')}))
end
local earlier = redis.call('HGETALL', due)
for i = 1, #earlier, 2 do
  local at, version = string.match(earlier[i + 1], '^([^|]+)|(.*)$')
  revise(earlier[i], tonumber(at), version)
end
for i = 3, #ARGV, 3 do
  revise(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2])
end
return changed
