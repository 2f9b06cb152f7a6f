-- Give a claim back, due DELAY seconds from now.
-- ARGV: P, clock, id, owner, delay, error, counted, token.
local id, owner = ARGV[3], ARGV[4]
local delay = number(5)
if not held(P, id, owner, ARGV[8]) then return 0 end
local at = now()
give_back(P, id, at, at + delay, ARGV[7] ~= '0', ARGV[6])
return 1
