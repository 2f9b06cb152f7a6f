-- End a claim.  ARGV: P, clock, id, owner, state, bytes, sha256, error, token.
return finish(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
