-- Give a parse back to the queue, due DELAY seconds from now.
-- ARGV: P, clock, id, owner, token, delay, error.
local id, delay = ARGV[3], number(6)
if not parse_held(id, ARGV[4], ARGV[5]) then return 0 end
parse_give_back(id, P..'t:'..id, now() + delay, ARGV[7])
return 1
