-- The URL of each task id given ('' for an unknown id): creation compares
-- them with the manifest's, to create new tasks and redefine changed ones.
local P = ARGV[1]
local urls = {}
for i = 2, #ARGV do
  urls[i - 1] = redis.call('HGET', P..'t:'..ARGV[i], 'url') or ''
end
return urls
