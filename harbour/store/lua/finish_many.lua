-- End several claims, in turn.  ARGV: P, clock, then for each claim: id,
-- owner, state, bytes, sha256, error, token.  Returns one 1 or 0 per claim,
-- as finish.lua does.
local ended = {}
for i = 3, #ARGV, 7 do
  table.insert(ended, finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]))
end
return ended
