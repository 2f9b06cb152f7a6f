-- Shared by every task script: move a task between states, keeping the
-- per-state sets and per-report counts in step; whether OWNER holds it; and
-- a table of counts as the flat reply Redis sends.
local function move(P, id, report, from, to, score)
  redis.call('ZREM', P..'s:'..from, id)
  redis.call('ZREM', P..'s:'..from..':'..report, id)
  redis.call('ZADD', P..'s:'..to, score, id)
  redis.call('ZADD', P..'s:'..to..':'..report, score, id)
  redis.call('HINCRBY', P..'c:'..report, from, -1)
  redis.call('HINCRBY', P..'c:'..report, to, 1)
  redis.call('HSET', P..'t:'..id, 'state', to)
end
-- TOKEN ('' for any) is the claim's fencing token: the owner is one per
-- process, shared by its workers, so only the token tells claims apart.
local function held(P, id, owner, token)
  local key = P..'t:'..id
  return redis.call('HGET', key, 'state') == 'downloading' and redis.call('HGET', key, 'owner') == owner
    and (token == '' or redis.call('HGET', key, 'claim') == token)
end
local function flat(counts)
  local out = {}
  for key, n in pairs(counts) do
    table.insert(out, key)
    table.insert(out, n)
  end
  return out
end
-- Retire a task (see retire.lua), remembering the state it had, to which
-- it returns if asked for again.
local function retire_task(P, id, now)
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  move(P, id, redis.call('HGET', key, 'report'), state, 'retired',
    -tonumber(redis.call('HGET', key, 'window_start')))
  redis.call('ZREM', P..'ready', id)
  redis.call('ZREM', P..'delayed', id)
  redis.call('HSET', key, 'modified', now, 'retired_from', state)
  redis.call('HDEL', key, 'retiring')
  redis.call('ZADD', P..'retired', now, id)
end
-- A task retired while it was being downloaded is retired once that ends.
local function settle(P, id, now)
  if redis.call('HGET', P..'t:'..id, 'retiring') == '1' then retire_task(P, id, now) end
end
