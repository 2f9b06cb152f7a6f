"""
The task store (the seed's C{harbour_db}): one task per report URL, kept in
Redis, and an in-memory twin for unit tests.

Keys live under the store's prefix C{P}:

    P t:<id>              hash: the task
    P ids                 set: every task id (creation checks it in bulk)
    P ready               zset: due pending tasks, newest window first
    P delayed             zset: pending tasks by not_before
    P leases              zset: downloading tasks by lease expiry
    P s:<state>[:<report>] zset: tasks by state (and report), for listing
    P c:<report>          hash: state -> count, moved with every transition
    P reports             set: report names
    P revisions           hash: report -> files re-fetched because OASIS revised them
    P revise:due          hash: id -> "time|version" of a revision that met the
                          task mid-download, looked at again by every revise()

Every transition is one Lua script, so it is atomic.  Times (C{now}) come
from the caller's clock, so hosts sharing a Redis should keep their clocks
in step (NTP).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable

import attr
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from zope.interface import implementer

from harbour.interfaces import IRedis, ITaskStore
from harbour.oasis import ReportURL

PENDING = "pending"
DOWNLOADING = "downloading"
DOWNLOADED = "downloaded"
EMPTY = "empty"
FAILED = "failed"
#: The C{last_error} of a task whose claim expired (its worker died).
LEASE_EXPIRED = "lease expired"
STATES = (PENDING, DOWNLOADING, DOWNLOADED, EMPTY, FAILED)
FINAL_STATES = (DOWNLOADED, EMPTY, FAILED)

#: Tasks sent to Redis per creation script (each batch is atomic).
BATCH = 2_000


def task_id(url: str) -> str:
    """
    @return: The stable id of the task for C{url}.
    """
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:20]


@attr.s(frozen=True, auto_attribs=True)
class Task:
    """
    One report URL and what has happened to it (SPEC section 6).
    """

    id: str
    url: str
    filename: str
    report: str
    window_start: float
    window_end: float
    state: str = PENDING
    attempts: int = 0
    not_before: float = 0.0
    last_error: str = ""
    bytes: int = 0
    sha256: str = ""
    created: float = 0.0
    modified: float = 0.0
    owner: str = ""
    revision: int = 0
    fetched: float = 0.0

    @classmethod
    def from_hash(cls, values: dict) -> "Task":
        """
        Build a task from its Redis hash (all strings).
        """
        return cls(
            id=values["id"], url=values["url"], filename=values["filename"], report=values["report"],
            window_start=float(values["window_start"]), window_end=float(values["window_end"]),
            state=values["state"], attempts=int(values["attempts"]),
            not_before=float(values["not_before"]), last_error=values["last_error"],
            bytes=int(values["bytes"]), sha256=values["sha256"], created=float(values["created"]),
            modified=float(values["modified"]), owner=values["owner"],
            revision=int(values.get("revision", 0)), fetched=float(values.get("fetched", 0)),
        )

    @classmethod
    def from_request(cls, request: ReportURL, now: float) -> "Task":
        """
        A new pending task for C{request}.
        """
        return cls(task_id(request.url), request.url, request.filename, request.report,
                   request.window_start.timestamp(), request.window_end.timestamp(),
                   created=now, modified=now)

    def to_json(self) -> dict:
        """
        @return: The task as plain JSON data.
        """
        return attr.asdict(self)


def check_state(state: str, allowed: Iterable[str] = STATES) -> str:
    """
    @raise ValueError: for a state not in C{allowed}.
    """
    allowed = tuple(allowed)
    if state not in allowed:
        raise ValueError(f"unknown state {state!r}: use one of {', '.join(allowed)}")
    return state


_MOVE = """
local function move(P, id, report, from, to, score)
  redis.call('ZREM', P..'s:'..from, id)
  redis.call('ZREM', P..'s:'..from..':'..report, id)
  redis.call('ZADD', P..'s:'..to, score, id)
  redis.call('ZADD', P..'s:'..to..':'..report, score, id)
  redis.call('HINCRBY', P..'c:'..report, from, -1)
  redis.call('HINCRBY', P..'c:'..report, to, 1)
  redis.call('HSET', P..'t:'..id, 'state', to)
end
local function held(P, id, owner)
  local key = P..'t:'..id
  return redis.call('HGET', key, 'state') == 'downloading' and redis.call('HGET', key, 'owner') == owner
end
"""

CREATE = _MOVE + """
local P, now = ARGV[1], ARGV[2]
local created = {}
for i = 3, #ARGV, 6 do
  local id, report = ARGV[i], ARGV[i + 3]
  if redis.call('SADD', P..'ids', id) == 1 then
    local score = -tonumber(ARGV[i + 4])
    redis.call('HSET', P..'t:'..id, 'id', id, 'url', ARGV[i + 1], 'filename', ARGV[i + 2],
      'report', report, 'window_start', ARGV[i + 4], 'window_end', ARGV[i + 5], 'state', 'pending',
      'attempts', 0, 'not_before', 0, 'last_error', '', 'bytes', 0, 'sha256', '',
      'created', now, 'modified', now, 'owner', '')
    redis.call('ZADD', P..'ready', score, id)
    redis.call('ZADD', P..'s:pending', score, id)
    redis.call('ZADD', P..'s:pending:'..report, score, id)
    redis.call('HINCRBY', P..'c:'..report, 'pending', 1)
    redis.call('SADD', P..'reports', report)
    created[report] = (created[report] or 0) + 1
  end
end
local out = {}
for report, n in pairs(created) do
  table.insert(out, report)
  table.insert(out, n)
end
return out
"""

CLAIM = _MOVE + """
local P, now, lease, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local due = redis.call('ZRANGEBYSCORE', P..'delayed', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', P..'delayed', id)
  redis.call('ZADD', P..'ready', -tonumber(redis.call('HGET', P..'t:'..id, 'window_start')), id)
end
local popped = redis.call('ZPOPMIN', P..'ready')
if #popped == 0 then return false end
local id = popped[1]
local key = P..'t:'..id
move(P, id, redis.call('HGET', key, 'report'), 'pending', 'downloading', popped[2])
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'owner', owner, 'modified', now, 'fetched', now)
redis.call('ZADD', P..'leases', now + lease, id)
-- One JSON string: a reply of many bulk strings costs the client far more.
return cjson.encode(redis.call('HGETALL', key))
"""

RENEW = _MOVE + """
local P, id, owner, expiry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not held(P, id, owner) then return 0 end
redis.call('ZADD', P..'leases', expiry, id)
return 1
"""

FINISH = _MOVE + """
local P, id, owner, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not held(P, id, owner) then return 0 end
local key = P..'t:'..id
move(P, id, redis.call('HGET', key, 'report'), 'downloading', state,
     -tonumber(redis.call('HGET', key, 'window_start')))
redis.call('ZREM', P..'leases', id)
redis.call('HSET', key, 'owner', '', 'modified', now, 'last_error', ARGV[8])
-- Only a download replaces the hash: a revision that fails still knows
-- which file in place it is to replace.
if state == 'downloaded' then
  redis.call('HSET', key, 'bytes', ARGV[6], 'sha256', ARGV[7])
end
return 1
"""

RELEASE = _MOVE + """
local P, id, owner, now, not_before = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if not held(P, id, owner) then return 0 end
local key = P..'t:'..id
local score = -tonumber(redis.call('HGET', key, 'window_start'))
move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
redis.call('ZREM', P..'leases', id)
redis.call('HSET', key, 'owner', '', 'modified', now, 'not_before', not_before, 'last_error', ARGV[6])
if not_before > now then
  redis.call('ZADD', P..'delayed', not_before, id)
else
  redis.call('ZADD', P..'ready', score, id)
end
return 1
"""

SWEEP = _MOVE + """
local P, now = ARGV[1], tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', P..'leases', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', P..'leases', id)
  local key = P..'t:'..id
  if redis.call('HGET', key, 'state') == 'downloading' then
    local score = -tonumber(redis.call('HGET', key, 'window_start'))
    move(P, id, redis.call('HGET', key, 'report'), 'downloading', 'pending', score)
    redis.call('HSET', key, 'owner', '', 'modified', now, 'last_error', 'lease expired')
    redis.call('ZADD', P..'ready', score, id)
  end
end
return #expired
"""

RETRY = _MOVE + """
local P, state, report, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local source = P..'s:'..state
if report ~= '' then source = source..':'..report end
local ids = redis.call('ZRANGE', source, 0, -1)
for _, id in ipairs(ids) do
  local key = P..'t:'..id
  local score = -tonumber(redis.call('HGET', key, 'window_start'))
  move(P, id, redis.call('HGET', key, 'report'), state, 'pending', score)
  redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', '', 'modified', now)
  redis.call('ZADD', P..'ready', score, id)
end
return #ids
"""


REVISE = _MOVE + """
local P, now = ARGV[1], tonumber(ARGV[2])
local due = P..'revise:due'
local changed = {}
local function revise(id, at, version)
  local key = P..'t:'..id
  local state = redis.call('HGET', key, 'state')
  if state == 'downloading' then
    -- Its answer may predate the revision: look again once it is final.
    local noted = redis.call('HGET', due, id)
    if not noted or tonumber(string.match(noted, '^[^|]+')) < at then
      redis.call('HSET', due, id, at..'|'..version)
    end
    return
  end
  redis.call('HDEL', due, id)
  if state ~= 'downloaded' and state ~= 'empty' then return end
  local fetched = tonumber(redis.call('HGET', key, 'fetched') or redis.call('HGET', key, 'modified'))
  if fetched >= at then return end
  local report = redis.call('HGET', key, 'report')
  local score = -tonumber(redis.call('HGET', key, 'window_start'))
  move(P, id, report, state, 'pending', score)
  local revision = tonumber(redis.call('HGET', key, 'revision') or '0')
  local why = 'published after it was fetched'
  if state == 'downloaded' then
    revision = redis.call('HINCRBY', key, 'revision', 1)
    redis.call('HINCRBY', P..'revisions', report, 1)
    why = 'revised in OASIS (version '..version..')'
  end
  redis.call('HSET', key, 'attempts', 0, 'not_before', 0, 'last_error', why, 'modified', now)
  redis.call('ZADD', P..'ready', score, id)
  table.insert(changed, cjson.encode({id = id, report = report, previous = state, revision = revision}))
end
local earlier = redis.call('HGETALL', due)
for i = 1, #earlier, 2 do
  local at, version = string.match(earlier[i + 1], '^([^|]+)|(.*)$')
  revise(earlier[i], tonumber(at), version)
end
for i = 3, #ARGV, 3 do
  revise(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2])
end
return changed
"""


def pairs(flat: list) -> dict:
    """
    @return: A flat Redis reply (key, value, key, value...) as a dict.
    """
    return dict(zip(flat[::2], flat[1::2]))


@implementer(ITaskStore)
@attr.s(eq=False)
class RedisTaskStore:
    """
    The task store on Redis.

    @ivar prefix: Prepended to every key (ends with C{:}).
    """

    redis: IRedis = attr.ib()
    clock = attr.ib()
    prefix: str = attr.ib(default="harbour:")

    @inlineCallbacks
    def create(self, requests):
        """
        See L{ITaskStore.create}: ids already known are filtered out first
        with one C{SMISMEMBER} per batch, so a refresh that finds everything
        present sends only ids.
        """
        created: dict[str, int] = {}
        requests = list(requests)
        for start in range(0, len(requests), BATCH):
            batch = requests[start:start + BATCH]
            ids = [task_id(r.url) for r in batch]
            known = yield self.redis.execute("SMISMEMBER", self.prefix + "ids", *ids)
            args = [self.prefix, repr(self.clock.seconds())]
            for request, identifier, present in zip(batch, ids, known):
                if int(present):
                    continue
                args += [identifier, request.url, request.filename, request.report,
                         repr(request.window_start.timestamp()), repr(request.window_end.timestamp())]
            if len(args) > 2:
                reply = yield self.redis.eval(CREATE, [], args)
                for report, count in pairs(reply).items():
                    created[report] = created.get(report, 0) + int(count)
        return created

    @inlineCallbacks
    def claim(self, owner: str, lease_seconds: float):
        """
        See L{ITaskStore.claim}.
        """
        reply = yield self.redis.eval(
            CLAIM, [], [self.prefix, repr(self.clock.seconds()), repr(lease_seconds), owner]
        )
        return Task.from_hash(pairs(json.loads(reply))) if reply else None

    @inlineCallbacks
    def renew(self, task_id: str, owner: str, lease_seconds: float):
        """
        See L{ITaskStore.renew}.
        """
        expiry = self.clock.seconds() + lease_seconds
        return bool((yield self.redis.eval(RENEW, [], [self.prefix, task_id, owner, repr(expiry)])))

    @inlineCallbacks
    def finish(self, task_id: str, owner: str, state: str, bytes: int = 0, sha256: str = "", error: str = ""):
        """
        See L{ITaskStore.finish}.
        """
        check_state(state, FINAL_STATES)
        args = [self.prefix, task_id, owner, state, repr(self.clock.seconds()), str(bytes), sha256, error]
        return bool((yield self.redis.eval(FINISH, [], args)))

    @inlineCallbacks
    def release(self, task_id: str, owner: str, not_before: float, error: str):
        """
        See L{ITaskStore.release}.
        """
        args = [self.prefix, task_id, owner, repr(self.clock.seconds()), repr(not_before), error]
        return bool((yield self.redis.eval(RELEASE, [], args)))

    @inlineCallbacks
    def sweep(self):
        """
        See L{ITaskStore.sweep}.
        """
        return int((yield self.redis.eval(SWEEP, [], [self.prefix, repr(self.clock.seconds())])))

    @inlineCallbacks
    def counts(self):
        """
        See L{ITaskStore.counts}.
        """
        reports = sorted((yield self.redis.execute("SMEMBERS", self.prefix + "reports")))
        hashes = yield gatherResults([self.redis.execute("HGETALL", self.prefix + "c:" + r) for r in reports])
        return {
            report: {state: int(n) for state, n in pairs(flat).items() if int(n)}
            for report, flat in zip(reports, hashes)
        }

    @inlineCallbacks
    def tasks(self, state: str, report, offset: int, limit: int):
        """
        See L{ITaskStore.tasks}.
        """
        key = self.prefix + "s:" + check_state(state) + (":" + report if report else "")
        ids, total = yield gatherResults([
            self.redis.execute("ZRANGE", key, offset, offset + limit - 1),
            self.redis.execute("ZCARD", key),
        ])
        found = yield gatherResults([self.get(i) for i in ids])
        return [t for t in found if t is not None], int(total)

    @inlineCallbacks
    def retry(self, state: str, report):
        """
        See L{ITaskStore.retry}.
        """
        check_state(state, (FAILED, EMPTY))
        args = [self.prefix, state, report or "", repr(self.clock.seconds())]
        return int((yield self.redis.eval(RETRY, [], args)))

    @inlineCallbacks
    def get(self, task_id: str):
        """
        See L{ITaskStore.get}.
        """
        flat = yield self.redis.execute("HGETALL", self.prefix + "t:" + task_id)
        return Task.from_hash(pairs(flat)) if flat else None

    @inlineCallbacks
    def revise(self, revisions):
        """
        See L{ITaskStore.revise}.
        """
        changed = []
        revisions = list(revisions)
        # At least one call, so that revisions noted mid-download are looked at.
        for start in range(0, max(1, len(revisions)), BATCH):
            args = [self.prefix, repr(self.clock.seconds())]
            for identifier, at, version in revisions[start:start + BATCH]:
                args += [identifier, repr(at), str(version)]
            reply = yield self.redis.eval(REVISE, [], args)
            changed += [json.loads(entry) for entry in reply]
        return changed

    @inlineCallbacks
    def revision_counts(self):
        """
        See L{ITaskStore.revision_counts}.
        """
        flat = yield self.redis.execute("HGETALL", self.prefix + "revisions")
        return {report: int(n) for report, n in sorted(pairs(flat).items())}


@implementer(ITaskStore)
@attr.s(eq=False)
class MemoryTaskStore:
    """
    The task store in memory, with the same behaviour, for unit tests.
    """

    clock = attr.ib()
    _tasks: dict[str, Task] = attr.ib(factory=dict, init=False)
    _leases: dict[str, float] = attr.ib(factory=dict, init=False)
    _due: dict[str, tuple[float, str]] = attr.ib(factory=dict, init=False)
    _revisions: dict[str, int] = attr.ib(factory=dict, init=False)

    def _replace(self, task: Task, **changes) -> Task:
        task = attr.evolve(task, modified=self.clock.seconds(), **changes)
        self._tasks[task.id] = task
        return task

    def _held(self, task_id: str, owner: str) -> Task | None:
        task = self._tasks.get(task_id)
        if task is None or task.state != DOWNLOADING or task.owner != owner:
            return None
        return task

    def create(self, requests):
        """
        See L{ITaskStore.create}.
        """
        created: dict[str, int] = {}
        now = self.clock.seconds()
        for request in requests:
            identifier = task_id(request.url)
            if identifier not in self._tasks:
                self._tasks[identifier] = Task.from_request(request, now)
                created[request.report] = created.get(request.report, 0) + 1
        return succeed(created)

    def claim(self, owner: str, lease_seconds: float):
        """
        See L{ITaskStore.claim}.
        """
        now = self.clock.seconds()
        due = [t for t in self._tasks.values() if t.state == PENDING and t.not_before <= now]
        if not due:
            return succeed(None)
        task = min(due, key=lambda t: (-t.window_start, t.id))
        self._leases[task.id] = now + lease_seconds
        return succeed(self._replace(task, state=DOWNLOADING, owner=owner, attempts=task.attempts + 1,
                                     fetched=now))

    def renew(self, task_id: str, owner: str, lease_seconds: float):
        """
        See L{ITaskStore.renew}.
        """
        if self._held(task_id, owner) is None:
            return succeed(False)
        self._leases[task_id] = self.clock.seconds() + lease_seconds
        return succeed(True)

    def finish(self, task_id: str, owner: str, state: str, bytes: int = 0, sha256: str = "", error: str = ""):
        """
        See L{ITaskStore.finish}.
        """
        check_state(state, FINAL_STATES)
        task = self._held(task_id, owner)
        if task is None:
            return succeed(False)
        self._leases.pop(task_id, None)
        if state == DOWNLOADED:
            task = attr.evolve(task, bytes=bytes, sha256=sha256)
        self._replace(task, state=state, owner="", last_error=error)
        return succeed(True)

    def release(self, task_id: str, owner: str, not_before: float, error: str):
        """
        See L{ITaskStore.release}.
        """
        task = self._held(task_id, owner)
        if task is None:
            return succeed(False)
        self._leases.pop(task_id, None)
        self._replace(task, state=PENDING, owner="", not_before=not_before, last_error=error)
        return succeed(True)

    def sweep(self):
        """
        See L{ITaskStore.sweep}.
        """
        now = self.clock.seconds()
        expired = [i for i, expiry in self._leases.items() if expiry <= now]
        for identifier in expired:
            del self._leases[identifier]
            task = self._tasks[identifier]
            if task.state == DOWNLOADING:
                self._replace(task, state=PENDING, owner="", last_error=LEASE_EXPIRED)
        return succeed(len(expired))

    def counts(self):
        """
        See L{ITaskStore.counts}.
        """
        result: dict[str, dict[str, int]] = {}
        for task in self._tasks.values():
            states = result.setdefault(task.report, {})
            states[task.state] = states.get(task.state, 0) + 1
        return succeed(dict(sorted(result.items())))

    def tasks(self, state: str, report, offset: int, limit: int):
        """
        See L{ITaskStore.tasks}.
        """
        check_state(state)
        found = sorted(
            (t for t in self._tasks.values() if t.state == state and (not report or t.report == report)),
            key=lambda t: (-t.window_start, t.id),
        )
        return succeed((found[offset:offset + limit], len(found)))

    def retry(self, state: str, report):
        """
        See L{ITaskStore.retry}.
        """
        check_state(state, (FAILED, EMPTY))
        chosen = [t for t in self._tasks.values() if t.state == state and (not report or t.report == report)]
        for task in chosen:
            self._replace(task, state=PENDING, attempts=0, not_before=0.0, last_error="")
        return succeed(len(chosen))

    def get(self, task_id: str):
        """
        See L{ITaskStore.get}.
        """
        return succeed(self._tasks.get(task_id))

    def revise(self, revisions):
        """
        See L{ITaskStore.revise}.
        """
        changed = []
        earlier = [(i, at, version) for i, (at, version) in self._due.items()]
        for identifier, at, version in earlier + [(i, float(a), str(v)) for i, a, v in revisions]:
            task = self._tasks.get(identifier)
            if task is not None and task.state == DOWNLOADING:
                if identifier not in self._due or self._due[identifier][0] < at:
                    self._due[identifier] = (at, version)
                continue
            self._due.pop(identifier, None)
            if task is None or task.state not in (DOWNLOADED, EMPTY):
                continue
            if (task.fetched or task.modified) >= at:
                continue
            revision, why = task.revision, "published after it was fetched"
            if task.state == DOWNLOADED:
                revision += 1
                self._revisions[task.report] = self._revisions.get(task.report, 0) + 1
                why = f"revised in OASIS (version {version})"
            self._replace(task, state=PENDING, attempts=0, not_before=0.0, last_error=why, revision=revision)
            changed.append({"id": identifier, "report": task.report, "previous": task.state,
                            "revision": revision})
        return succeed(changed)

    def revision_counts(self):
        """
        See L{ITaskStore.revision_counts}.
        """
        return succeed(dict(sorted(self._revisions.items())))
