-- Shared by every task script, run before it.
--
-- KEYS are the store's fixed keys, in the order of FIXED_KEYS in tasks.py.
-- The keys a script finds at run time (P t:<id>, P s:<state>[:<report>],
-- P c:<report>, P pc:<report>) are built from the prefix P (ARGV[1]),
-- which carries the same hash tag: every key a script touches is in the
-- slot of its KEYS, as Redis Cluster requires.
--
-- ARGV[2] is the time to use, or '' for Redis's own (TIME): hosts sharing a
-- Redis need not agree on their clocks.  Redis >= 5 replicates scripts by
-- their effects, so a script may write after reading TIME.
local IDS, READY, DELAYED, LEASES, REPORTS, REVISIONS, DUE, RETIRED, PARSE_QUEUE, PARSE_LEASES, RETIRED_TABLES = unpack(KEYS)
local P = ARGV[1]
-- A task's states, as STATES in tasks.py.
local STATES = {'pending', 'downloading', 'downloaded', 'empty', 'failed', 'retired'}
-- A downloaded task's parse states, as PARSE_STATES in parse_queue.py.
local PARSE_STATES = {'queued', 'parsing', 'parsed', 'unparsable'}
-- A script checks every argument before it writes: Redis keeps whatever a
-- script wrote before it failed, so an argument found bad halfway would
-- leave the store half changed (tasks claimed without a lease, say).
-- Data is not checked so: a key under P of another type than the script
-- expects (another program's) fails the call that writes it.  Where it is
-- cheap, a report's counts are written first, so that counts of the wrong
-- type fail the script before it wrote anything; counts left wrong by a
-- failure after them are put right by recount.lua (and parse counts by
-- recount_parse.lua), as a hub starts.
local function refuse(what)
  error('harbour: bad script argument: '..what, 0)
end
-- ARGV[i] as a finite number.
local function number(i)
  local n = tonumber(ARGV[i])
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    refuse('ARGV['..i..'] is not a finite number: '..tostring(ARGV[i]))
  end
  return n
end
-- ARGV[i] as a whole number, at least LEAST and exact in a double.
local function whole(i, least)
  local n = number(i)
  if n % 1 ~= 0 or n < least or n > 2^53 then
    refuse('ARGV['..i..'] is not a whole number of at least '..least..': '..ARGV[i])
  end
  return n
end
-- ARGV[i], which must be one of the words given.
local function one_of(i, ...)
  for _, word in ipairs({...}) do
    if ARGV[i] == word then return word end
  end
  refuse('ARGV['..i..'] is not one of '..table.concat({...}, ', ')..': '..tostring(ARGV[i]))
end
-- Check that ARGV after P and the clock is whole groups of SIZE fields,
-- those at the FIELDS given (counted from 1 in each group) finite numbers.
local function groups(size, ...)
  if (#ARGV - 2) % size ~= 0 then
    refuse((#ARGV - 2)..' arguments after the clock, not groups of '..size)
  end
  for i = 3, #ARGV, size do
    for _, field in ipairs({...}) do number(i + field - 1) end
  end
end
if ARGV[2] ~= '' then number(2) end
local clock_now
local function now()
  if not clock_now then
    if ARGV[2] ~= '' then
      clock_now = number(2)
    else
      local time = redis.call('TIME')
      clock_now = tonumber(time[1]) + tonumber(time[2]) / 1000000
    end
  end
  return clock_now
end
-- ARGV[i] as a storage's name ('' for none): it ends a key's name (see
-- parse_queue), so it is kept to letters, digits, '-' and '_'.
local function storage_name(i)
  local name = ARGV[i] or ''
  if #name > 64 or not string.match(name, '^[%w_%-]*$') then
    refuse('ARGV['..i..'] is not a storage name: '..name)
  end
  return name
end
-- The parse queue a task waits in: that of the storage its file was
-- downloaded into (its 'storage', see finish_many.lua), which only a
-- claimer of that storage takes (see claim_parse.lua); or, for a task
-- recorded without one, the shared queue, which every claimer takes.
local function storage_queue(storage)
  if storage == '' then return PARSE_QUEUE end
  return P..'parse:queue:'..storage
end
local function parse_queue(key)
  return storage_queue(redis.call('HGET', key, 'storage') or '')
end
-- The parse queue (see tasks.py): move a task's parse state, keeping the
-- per-report parse counts in step, and the tally of a recount of them
-- under way (see recount_parse.lua) with them.
local function parse_move(key, report, from, to)
  if from ~= '' then redis.call('HINCRBY', P..'pc:'..report, from, -1) end
  if to ~= '' then redis.call('HINCRBY', P..'pc:'..report, to, 1) end
  redis.call('HSET', key, 'parse', to)
  local tally = P..'pcr:'..report
  -- Only a tally: another program's key of that name stops no move.
  if redis.call('TYPE', tally).ok == 'hash' then
    -- A task the recount has not met is tallied now, as it is after this
    -- move; one it met (or tallied so before) moves in the tally too.
    local met = 't:'..string.sub(key, #P + 3)
    if redis.call('HSETNX', tally, met, 1) == 0 and from ~= '' then
      redis.call('HINCRBY', tally, from, -1)
    end
    if to ~= '' then redis.call('HINCRBY', tally, to, 1) end
  end
end
-- A task that becomes downloaded is queued to be parsed; one that stops
-- being downloaded leaves the parse queue.
local function parse_follow(id, report, from, to)
  local key = P..'t:'..id
  if from == 'downloaded' and to ~= 'downloaded' then
    local parse = redis.call('HGET', key, 'parse') or ''
    if parse ~= '' then
      parse_move(key, report, parse, '')
      redis.call('ZREM', parse_queue(key), id)
      redis.call('ZREM', PARSE_LEASES, id)
      redis.call('HSET', key, 'parse_owner', '')
    end
  elseif to == 'downloaded' and from ~= 'downloaded' then
    parse_move(key, report, redis.call('HGET', key, 'parse') or '', 'queued')
    redis.call('HSET', key, 'parse_error', '', 'parse_owner', '', 'rows', 0)
    redis.call('HDEL', key, 'parse_cut_off')
    redis.call('ZADD', parse_queue(key), now(), id)
  end
end
-- Move a task between states, keeping the per-state sets, the per-report
-- counts and the parse queue in step.  The counts first (see above).
local function move(P, id, report, from, to, score)
  redis.call('HINCRBY', P..'c:'..report, from, -1)
  redis.call('HINCRBY', P..'c:'..report, to, 1)
  redis.call('ZREM', P..'s:'..from, id)
  redis.call('ZREM', P..'s:'..from..':'..report, id)
  redis.call('ZADD', P..'s:'..to, score, id)
  redis.call('ZADD', P..'s:'..to..':'..report, score, id)
  redis.call('HSET', P..'t:'..id, 'state', to)
  parse_follow(id, report, from, to)
end
-- Whether OWNER holds a task's download.  TOKEN ('' for any) is the claim's
-- fencing token: the owner is one per process, shared by its workers, so
-- only the token tells claims apart.
local function held(P, id, owner, token)
  local key = P..'t:'..id
  return redis.call('HGET', key, 'state') == 'downloading' and redis.call('HGET', key, 'owner') == owner
    and (token == '' or redis.call('HGET', key, 'claim') == token)
end
-- Whether OWNER holds a task's parse, claim TOKEN.
local function parse_held(id, owner, token)
  local key = P..'t:'..id
  return redis.call('HGET', key, 'state') == 'downloaded' and redis.call('HGET', key, 'parse') == 'parsing'
    and redis.call('HGET', key, 'parse_owner') == owner and redis.call('HGET', key, 'parse_claim') == token
end
-- Give the parse of the task KEY (id ID) back to its queue, due at DUE,
-- nobody's, with ERROR as its parse_error if given.
local function parse_give_back(id, key, due, error)
  redis.call('ZREM', PARSE_LEASES, id)
  parse_move(key, redis.call('HGET', key, 'report'), 'parsing', 'queued')
  redis.call('HSET', key, 'parse_owner', '')
  if error then redis.call('HSET', key, 'parse_error', error) end
  redis.call('ZADD', parse_queue(key), due, id)
end
-- A table of counts as the flat reply Redis sends.
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
local function retire_task(P, id, at)
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  move(P, id, redis.call('HGET', key, 'report'), state, 'retired',
    -tonumber(redis.call('HGET', key, 'window_start')))
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('HSET', key, 'modified', at, 'retired_from', state)
  redis.call('HDEL', key, 'retiring')
  redis.call('ZADD', RETIRED, at, id)
end
-- What an entry of RETIRED_TABLES ends with, in place of a storage, for a
-- window resized to one that no longer holds all of its file (see
-- redefine.lua), followed by ':<window_start>:<window_end>' of the window
-- it had before: no storage's name has a ':'.  As RESIZED in tasks.py.
local RESIZED = ':resized'
-- List the window of task ID (REPORT, FILENAME) as one whose tables are to
-- go (see retired_tables.lua); with MOVED_FROM, only those parsed from
-- that storage's files, its file having been downloaded anew elsewhere
-- (or, if it is RESIZED, those parsed before its window was resized).
local function list_tables(id, report, filename, moved_from)
  local entry = id..'\n'..report..'\n'..filename
  if moved_from then entry = entry..'\n'..moved_from end
  redis.call('RPUSH', RETIRED_TABLES, entry)
end
-- The task id of an entry of RETIRED_TABLES, the storage it moved from
-- (nil for a window retired, emptied or resized), and for a window
-- resized the window_start and window_end it had before (else nil).
local function listed(entry)
  local id, moved_from = string.match(entry, '^([^\n]*)\n[^\n]*\n[^\n]*\n([^\n]*)$')
  if id then
    local old_start, old_end = string.match(moved_from, '^'..RESIZED..':([^:]*):([^:]*)$')
    if old_start then return id, nil, tonumber(old_start), tonumber(old_end) end
    return id, moved_from
  end
  return string.match(entry, '^([^\n]*)\n'), nil
end
-- A task retired while it was being downloaded is retired once that ends.
local function settle(P, id, at)
  if redis.call('HGET', P..'t:'..id, 'retiring') == '1' then retire_task(P, id, at) end
end
-- A claim given back or expired fetched nothing, and the next one asks for
-- the request as it is then: a change of the request while it was fetched
-- (see redefine.lua) needs no second fetch, but a resized window's file in
-- place is replaced, not kept, as it would have been.
local function forget_stale(key)
  if redis.call('HGET', key, 'stale') == 'resized' then redis.call('HSET', key, 'sha256', '') end
  redis.call('HDEL', key, 'stale')
end
-- As AHEAD_KEPT in tasks.py.
local AHEAD_KEPT = 'no new answer while its day was ahead: the one fetched before is kept'
-- Whether the task KEY was put back to pending only because its day was
-- ahead (see refetch_ahead.lua) and, due at DUE, would not be fetched again
-- before its day ends: OASIS serves no past day of such a report, so a
-- fetch then could only lose, or misname, the answer fetched on the day.
local function ahead_over(key, due)
  local from = redis.call('HGET', key, 'ahead_from')
  return from ~= false and from ~= '' and due >= tonumber(redis.call('HGET', key, 'window_end'))
end
-- Bring a task put back to pending only because its day was ahead, now in
-- state FROM (pending or downloading), back to the state it came from as
-- it was: its file, hash, storage, revision and the time it was fetched
-- (so that a revision published since is not lost), its tables never listed to
-- go (its file is parsed again); out of the queues, its lease dropped,
-- nobody's.  WHY ('' for none) tells what became of the fetch again.
local function ahead_back(P, id, from, at, why)
  local key = P..'t:'..id
  local before, report, start, fetched = unpack(redis.call('HMGET', key, 'ahead_from', 'report', 'window_start',
    'ahead_fetched'))
  move(P, id, report, from, before, -tonumber(start))
  if fetched then redis.call('HSET', key, 'fetched', fetched) end
  -- Raised by refetch_ahead.lua for a copy no new answer came to replace.
  if before == 'downloaded' then redis.call('HINCRBY', key, 'revision', -1) end
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', LEASES, id)
  -- The request changed meanwhile: the answer kept is the only one the day
  -- can have, OASIS serving none once it is past.
  redis.call('HDEL', key, 'ahead_from', 'ahead_fetched', 'stale')
  local reason = AHEAD_KEPT
  if why ~= '' then reason = reason..' ('..why..')' end
  redis.call('HSET', key, 'owner', '', 'modified', at, 'not_before', 0, 'last_error', reason)
  if from == 'downloading' then redis.call('HSET', key, 'ended', redis.call('HGET', key, 'claim')) end
end
-- Give back a download claim (a task downloading): pending, due at
-- NOT_BEFORE, its lease dropped, its attempt not counted unless COUNTED
-- (an answer that says only "not yet", or no answer at all, uses none),
-- with ERROR (if not nil) as its last_error.  A day ahead fetched again
-- that would be due only once its day is over is back as it was instead.
local function give_back(P, id, at, not_before, counted, error)
  local key = P..'t:'..id
  if ahead_over(key, not_before) then
    ahead_back(P, id, 'downloading', at, error or '')
    settle(P, id, at)
    return
  end
  if error then redis.call('HSET', key, 'last_error', error) end
  local score = -tonumber(redis.call('HGET', key, 'window_start'))
  move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
  redis.call('ZREM', LEASES, id)
  redis.call('HSET', key, 'owner', '', 'modified', at, 'not_before', not_before,
    'ended', redis.call('HGET', key, 'claim'))
  forget_stale(key)
  if not counted then redis.call('HINCRBY', key, 'attempts', -1) end
  if not_before > at then
    redis.call('ZADD', DELAYED, not_before, id)
  else
    redis.call('ZADD', READY, score, id)
  end
  settle(P, id, at)
end
-- Put a task in STATE back to pending, to be fetched again because its
-- request changed: HOW is 'changed' (a downloaded file in place is kept as
-- a revision) or 'resized' (it is replaced); REASON is its last_error.
local function refetch(P, id, report, state, how, score, reason)
  local key = P..'t:'..id
  move(P, id, report, state, 'pending', score)
  if state == 'downloaded' and how == 'changed' then
    redis.call('HINCRBY', key, 'revision', 1)
  elseif how == 'resized' then
    redis.call('HSET', key, 'sha256', '')
  end
  redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', reason)
  redis.call('ZADD', READY, score, id)
end
-- Forget what is left under REPORT of a task whose hash is gone (its
-- listings and their counts, its places in the queues), so that nothing
-- counts or lists it twice once it is made anew.  (Its parse count, under
-- pc:<report>, cannot be told without its hash, and stays until a hub
-- starts: see recount_parse.lua.)
local function forget_remains(id, report)
  for _, state in ipairs(STATES) do
    if redis.call('ZREM', P..'s:'..state..':'..report, id) == 1 then
      redis.call('HINCRBY', P..'c:'..report, state, -1)
    end
    redis.call('ZREM', P..'s:'..state, id)
  end
  redis.call('ZREM', READY, id)
  redis.call('ZREM', DELAYED, id)
  redis.call('ZREM', LEASES, id)
  redis.call('ZREM', RETIRED, id)
  redis.call('ZREM', PARSE_LEASES, id)
  redis.call('HDEL', DUE, id)
end
-- Create the task given at ARGV[I] onwards (id, url, filename, report,
-- window_start, window_end), pending, unless it is known.  A task is known
-- by its hash: an id whose hash is gone (evicted, deleted by hand, or
-- purged since the caller read it) is created anew, once what is left of
-- it is forgotten.  Returns whether it created the task.
local function create_task(i, at)
  local id, report = ARGV[i], ARGV[i + 3]
  local key = P..'t:'..id
  if redis.call('EXISTS', key) == 1 then return false end
  -- The count first (see above), and its report with it: a report counted
  -- is one counts() and recount.lua find.
  redis.call('HINCRBY', P..'c:'..report, 'pending', 1)
  redis.call('SADD', REPORTS, report)
  if redis.call('SADD', IDS, id) == 0 then forget_remains(id, report) end
  local score = -tonumber(ARGV[i + 4])
  redis.call('HSET', key, 'id', id, 'url', ARGV[i + 1], 'filename', ARGV[i + 2],
    'report', report, 'window_start', ARGV[i + 4], 'window_end', ARGV[i + 5], 'state', 'pending',
    'attempts', 0, 'not_before', 0, 'last_error', '', 'bytes', 0, 'sha256', '',
    'created', at, 'modified', at, 'owner', '')
  redis.call('ZADD', READY, score, id)
  redis.call('ZADD', P..'s:pending', score, id)
  redis.call('ZADD', P..'s:pending:'..report, score, id)
  return true
end
-- Set STATE's count in the hash COUNTS to RIGHT if it says otherwise, and
-- note it in WRONG as the recount scripts return it: the state, what its
-- count said, and its count now.
local function correct(counts, state, right, wrong)
  local said = redis.call('HGET', counts, state) or '0'
  if tonumber(said) ~= right then
    redis.call('HSET', counts, state, right)
    table.insert(wrong, state)
    table.insert(wrong, said)
    table.insert(wrong, right)
  end
end
