-- Set REPORT's counts (c:<report>) to the sizes of its listings
-- (s:<state>:<report>), which are what they count: a script that failed
-- halfway may have changed one and not the other.  ARGV: P, clock, report.
-- Returns, for each state whose count was wrong: the state, what its
-- count said, and its count now.
local report = ARGV[3]
local counts = P..'c:'..report
local wrong = {}
for _, state in ipairs(STATES) do
  correct(counts, state, redis.call('ZCARD', P..'s:'..state..':'..report), wrong)
end
return wrong
