-- The URL and state of each task id given ('' for an unknown id): creation
-- compares them with the manifest's, to create new tasks, redefine changed
-- ones and revive retired ones.  ARGV: P, clock, ids...
-- One JSON string: a reply of many bulk strings costs the client far more.
local found = {}
for i = 3, #ARGV do
  local key = P..'t:'..ARGV[i]
  table.insert(found, redis.call('HGET', key, 'url') or '')
  table.insert(found, redis.call('HGET', key, 'state') or '')
end
return cjson.encode(found)
