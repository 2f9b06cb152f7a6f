-- Claim the oldest due task of the parse queues open to the claimer: that
-- of its STORAGE (the files downloaded into its download directory, which
-- only it and whoever shares that directory have) and the shared one
-- (files recorded without a storage, which may be anywhere).  Each queue
-- is asked for its head only, however long the others are.
-- ARGV: P, clock, owner, lease, storage ('' for the shared queue alone),
-- nonce (the call's own, kept on the task: see unclaim.lua).
local owner, lease, storage, nonce = ARGV[3], number(4), storage_name(5), ARGV[6] or ''
local at = now()
local queues = {PARSE_QUEUE}
if storage ~= '' then table.insert(queues, storage_queue(storage)) end
-- The queues hold only downloaded tasks waiting to be parsed (move.lua
-- keeps them so); anything else is dropped, boundedly.
for ignored = 1, 100 do
  -- The oldest head, ties broken by id as within one queue.
  local queue, id, due
  for _, candidate in ipairs(queues) do
    local head = redis.call('ZRANGEBYSCORE', candidate, '-inf', at, 'WITHSCORES', 'LIMIT', 0, 1)
    if #head > 0 then
      local score = tonumber(head[2])
      if not id or score < due or (score == due and head[1] < id) then
        queue, id, due = candidate, head[1], score
      end
    end
  end
  if not id then return false end
  local key = P..'t:'..id
  redis.call('ZREM', queue, id)
  if redis.call('HGET', key, 'state') == 'downloaded' and redis.call('HGET', key, 'parse') == 'queued' then
    parse_move(key, redis.call('HGET', key, 'report'), 'queued', 'parsing')
    redis.call('HINCRBY', key, 'parse_claim', 1)
    redis.call('HSET', key, 'parse_owner', owner, 'parse_nonce', nonce)
    redis.call('ZADD', PARSE_LEASES, at + lease, id)
    return cjson.encode(redis.call('HGETALL', key))
  end
end
return false
