-- Retire tasks the manifest no longer asks for (a report disabled or
-- removed, a window out of range): never claimed again.  One being
-- downloaded is marked, and retired as soon as its attempt ends, whatever
-- the end (see settle in move.lua).  ARGV: P, clock, ids...
local at = now()
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local state = redis.call('HGET', P..'t:'..id, 'state')
  if state == 'downloading' then
    redis.call('HSET', P..'t:'..id, 'retiring', '1')
  elseif state and state ~= 'retired' then
    retire_task(P, id, at)
    n = n + 1
  end
end
return n
