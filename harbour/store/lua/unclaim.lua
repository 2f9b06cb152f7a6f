-- Give back the claims OWNER made in calls whose answers were lost (the
-- connection dropped, or the reply timed out, after Redis may have run
-- them): each such call's NONCE is on the tasks it claimed.  Nobody holds
-- them, so they are due again at once, their attempts not counted, rather
-- than when their leases run out.  KIND is 'download' or 'parse'.
-- ARGV: P, clock, kind, owner, nonce...  Returns the number of tasks given
-- back, then the nonces found (a call found ran, and will not run again).
local kind, owner = one_of(3, 'download', 'parse'), ARGV[4]
local lost = {}
for i = 5, #ARGV do lost[ARGV[i]] = true end
local at = now()
local given, found, seen = 0, {}, {}
local leases, field = LEASES, 'claim_nonce'
if kind == 'parse' then leases, field = PARSE_LEASES, 'parse_nonce' end
-- The leases are the claims under way, a few per worker.
for _, id in ipairs(redis.call('ZRANGE', leases, 0, -1)) do
  local key = P..'t:'..id
  local nonce = redis.call('HGET', key, field)
  if nonce and lost[nonce] then
    if kind == 'download' and held(P, id, owner, '') then
      give_back(P, id, at, at, false)
    elseif kind == 'parse' and parse_held(id, owner, redis.call('HGET', key, 'parse_claim')) then
      parse_give_back(id, key, at)
    else
      nonce = nil
    end
    if nonce then
      given = given + 1
      if not seen[nonce] then
        seen[nonce] = true
        table.insert(found, nonce)
      end
    end
  end
end
table.insert(found, 1, given)
return found
