-- Return tasks whose download or parse lease expired: downloads to
-- pending (a day ahead fetched again whose day is over, back as it was:
-- see ahead_back in move.lua), parses to the parse queue; a parse cut off
-- so ARGV[3] times in a row (its process died or stalled each time: a file
-- that kills its parser, say) ends unparsable, with the error ARGV[4],
-- rather than taken again without end.  At most MOST leases of each kind,
-- so that no script runs long: the caller sweeps again while either comes
-- back full.
-- ARGV: P, clock, the most parses of one file cut off, the error, most.
-- Returns {download leases swept, parse leases swept}.
local at = now()
local cut_off_most, cut_off_error, most = whole(3, 1), ARGV[4], whole(5, 1)
local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', at, 'LIMIT', 0, most)
for _, id in ipairs(expired) do
  redis.call('ZREM', LEASES, id)
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == 'downloading' then
    if ahead_over(key, at) then
      ahead_back(P, id, 'downloading', at, 'lease expired')
    else
      local score = -tonumber(redis.call('HGET', key, 'window_start'))
      move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
      redis.call('HSET', key, 'owner', '', 'modified', at, 'last_error', 'lease expired')
      forget_stale(key)
      redis.call('ZADD', READY, score, id)
    end
    settle(P, id, at)
  end
end
local parses = redis.call('ZRANGEBYSCORE', PARSE_LEASES, '-inf', at, 'LIMIT', 0, most)
for _, id in ipairs(parses) do
  redis.call('ZREM', PARSE_LEASES, id)
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == 'downloaded' and redis.call('HGET', key, 'parse') == 'parsing' then
    local cut_off = redis.call('HINCRBY', key, 'parse_cut_off', 1)
    if cut_off >= cut_off_most then
      parse_move(key, redis.call('HGET', key, 'report'), 'parsing', 'unparsable')
      redis.call('HSET', key, 'parse_owner', '', 'parse_error', cut_off_error)
    else
      parse_give_back(id, key, at, 'lease expired')
    end
  end
end
return {#expired, #parses}
