"""
The task store (the seed's C{harbour_db}): one task per request, kept in
Redis (its in-memory twin is L{harbour.store.memory}).

A task is known by its file name: the window a request covers under its
report.  Its URL may change under that name (a window that grows as its
days arrive, a report whose definition changed); the task then takes the
new URL and is fetched again.

Keys live under the store's prefix C{P}, which carries one hash tag
(C{--prefix harbour} gives C{{harbour}:}, see L{harbour.store.keys}), so
that every key of a harbour is in one Redis Cluster slot:

    P t:<id>              hash: the task
    P ids                 set: every task id (L{RedisTaskStore.ids})
    P ready               zset: due pending tasks, newest window first
    P delayed             zset: pending tasks by not_before
    P leases              zset: downloading tasks by lease expiry
    P s:<state>[:<report>] zset: tasks by state (and report), for listing
    P c:<report>          hash: state -> count, moved with every transition
                          (and set to the listings' sizes as a hub starts,
                          see L{harbour.store.recount})
    P reports             set: report names
    P revisions           hash: report -> files re-fetched because OASIS revised them
    P revise:due          hash: id -> "time|version" of a revision that met the
                          task mid-download, looked at again by every revise()
    P retired             zset: retired tasks by when they were retired
    P parse:queue         zset: downloaded tasks waiting to be parsed, by when
                          they are due (the oldest first), of those recorded
                          without a storage: any claimer takes them
    P parse:queue:<storage> zset: the same, of files downloaded into the
                          directory of that storage: only its claimers take them
    P parse:leases        zset: tasks being parsed by lease expiry
    P pc:<report>         hash: parse state -> count (queued, parsing, parsed,
                          unparsable), moved with every parse transition
                          (and set to the tasks' parse states as a hub
                          starts, see L{harbour.store.recount})
    P pcr:<report>        hash: the tally of a recount of pc:<report> under
                          way (see C{lua/recount_parse.lua}), gone after it
    P retired:tables      list: "id\\nreport\\nfilename" of windows retired, or
                          answering no data where a file answered before,
                          whose tables are to go, oldest first, until the
                          hub has dropped them

A task is its hash: an id whose hash is gone (evicted by a Redis that
evicts keys, which the store refuses at start, or deleted by hand) is
dropped from the queues by the next claim, and made anew, what is left of
it forgotten, when the manifest asks for it again.

A task's hash may carry C{stale} ("resized" or "changed"): its request
changed while it was being downloaded, so it is fetched again once done.

Its C{claim} counts its claims: the fencing token of the latest, which
renew, finish and release check, so that a worker whose lease expired
cannot touch the claim a sibling (same owner) took after it.  Scripts that
may touch many tasks work in bounded batches: one running past
C{lua-time-limit} would make Redis answer C{BUSY} to everybody.

The parse queue: a task that becomes C{downloaded} is queued to be parsed
(its C{parse} is C{queued}); a parse is claimed (C{parsing}, leased, fenced
by C{parse_claim}) and ends C{parsed} or C{unparsable}.  A task that stops
being C{downloaded} (revised, redefined, retired) leaves the queue and its
C{parse} becomes C{""}; downloaded again, it is queued again.  A download
records the C{storage} its file went to (the id of the download directory,
see L{harbour.services.storage}); the task then waits, whenever it is
queued (downloaded, given back, swept, queued again), in the queue of that
storage, which only a claimer of that storage takes: a host parses only
files it has.  A task recorded without a storage (before storages were, or
whose storage could not be told) waits in the shared queue, which every
claimer takes.

Every transition is one Lua script, so it is atomic.  Each script is given
the fixed keys above as C{KEYS}; the keys it finds at run time (a task's
hash, a state's listing, a report's counts) are built from the prefix, so
they share its hash tag and slot, which is what Redis Cluster requires.
The time scripts compare (leases, C{not_before}, retirement, the parse
queue) is Redis's own C{TIME}, read inside the script, so the hosts sharing
a Redis need not agree on their clocks; callers give delays, in seconds
from now.  (Redis 5 and later replicate a script by its effects, so a
script may write after reading C{TIME}.)  A store given a test's
L{twisted.internet.task.Clock} follows that clock instead, so tests move
time deterministically.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.interfaces import IRedis, ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.keys import FIXED_KEYS
from harbour.store.parse_queue import (
    CUT_OFF_ERROR,
    CUT_OFF_MOST,
    PARSE_STATES,
    PARSED,
    PARSING,
    QUEUED,
    UNPARSABLE,
    UNQUEUED,
    ParseJob,
    RedisParseQueue,
)
from harbour.store.recount import Recounted, recount
from harbour.store.scripts import answers, clock_argument, follows_redis_time, load_script, pairs, refused
from harbour.store.unclaiming import DOWNLOAD, LostClaims

__all__ = [
    "PARSED",
    "PARSE_STATES",
    "PARSING",
    "QUEUED",
    "UNPARSABLE",
    "UNQUEUED",
    "Outcome",
    "ParseJob",
    "Retirement",
    "RetiredTables",
    "Task",
    "RedisTaskStore",
    "pairs",
]

PENDING = "pending"
DOWNLOADING = "downloading"
DOWNLOADED = "downloaded"
EMPTY = "empty"
FAILED = "failed"
#: A task the manifest no longer asks for: never claimed, revived if asked
#: for again, forgotten after the retention.
RETIRED = "retired"
#: The C{last_error} of a task whose claim expired (its worker died).
LEASE_EXPIRED = "lease expired"
STATES = (PENDING, DOWNLOADING, DOWNLOADED, EMPTY, FAILED, RETIRED)
FINAL_STATES = (DOWNLOADED, EMPTY, FAILED)

#: What a storage's name may be (see C{storage_name} in C{lua/move.lua}).
_STORAGE_NAME = re.compile(r"[A-Za-z0-9_-]{0,64}")

#: Tasks sent to Redis per creation script (each batch is atomic).
BATCH = 2_000

#: Expired leases of each kind (downloads, parses) returned per sweep script.
SWEEP_BATCH = 1_000

#: What L{ITaskStore.revise} is given for one task: its id, the POSIX time
#: OASIS changed its data, and OASIS's version number.
Revision = tuple[str, float, int | str]

#: What L{ITaskStore.revise} reports for each task put back.
Revised = dict[str, object]

#: What L{ITaskStore.refetch_missing} is given for one task whose file is
#: gone: its id, and the storage and sha256 its file had.
Missing = tuple[str, str, str]

#: The C{last_error} of a task put back because its file was gone (as
#: C{lua/refetch_missing.lua} writes it).
FILE_MISSING = "its file was gone from the download directory"

#: The C{last_error} of a task put back to be fetched again because its day
#: is still ahead (as C{lua/refetch_ahead.lua} writes it).
AHEAD = "fetched again: its day is still ahead"

#: The C{last_error} of a task put back by L{ITaskStore.refetch_ahead} that
#: got no new answer with data before its day ended, or whose new fetch
#: ended with no data or failed (its error follows): it is back in the
#: state it came from, its file and tables kept (as C{AHEAD_KEPT} in
#: C{lua/move.lua}).
AHEAD_KEPT = "no new answer while its day was ahead: the one fetched before is kept"

#: What an entry of the retired tables' list (see L{RetiredTables}) ends
#: with, in place of a storage, for a window resized to one that no longer
#: holds all of its file, followed by C{":<window_start>:<window_end>"} of
#: the window it had before (as C{RESIZED} in C{lua/move.lua}): no
#: storage's name has a C{:}.
RESIZED = ":resized"


def completion(states: Mapping[str, int]) -> tuple[int, int]:
    """
    @param states: A report's task counts by state.
    @return: How many of the windows asked for are done (downloaded,
        empty or failed), and how many are asked for: retired windows are
        not.
    """
    done = sum(states.get(state, 0) for state in FINAL_STATES)
    return done, sum(n for state, n in states.items() if state != RETIRED)


def task_id(filename: str) -> str:
    """
    @return: The stable id of the task whose file is C{filename}.
    """
    return hashlib.sha256(filename.encode("utf-8")).hexdigest()[:20]


def last_per_file(requests: Iterable[ReportURL]) -> list[ReportURL]:
    """
    @return: C{requests} with only the last request of each file name, in
        the order the file names first come: what L{ITaskStore.create}
        takes of requests that share one.
    """
    last: dict[str, ReportURL] = {}
    for request in requests:
        last[request.filename] = request
    return list(last.values())


def redefinition(old_url: str, new_url: str, state: str) -> str | None:
    """
    How a task in C{state} whose request was C{old_url} takes its new
    request, C{new_url}, under the same file name.

    @return: C{"resized"} if only the window's bounds differ (the file is
        simply replaced), C{"changed"} if the report's definition changed
        (the old file is kept as a revision), C{"restated"} if the new
        request asks for the same window in other words (the task only
        takes the new URL), or L{None} if nothing need be done: a final
        answer (C{downloaded}, or C{empty}) to a window now only cut at its
        start holds every day the new request asks for.  That is the
        oldest window as a relative C{start} passes it, which would
        otherwise be fetched again every day.

        A request that drops its C{enddatetime} and keeps its start is a
        day group's, which OASIS answers with the day that starts there
        whatever C{enddatetime} says (spec section 2.2): tasks made when
        harbour sent one keep their answers.  One without C{enddatetime}
        whose start moved asks for another day (or month), never the same
        one cut: it is resized.
    """
    (old_rest, old_window), (new_rest, new_window) = _split(old_url), _split(new_url)
    if old_rest != new_rest:
        return "changed"
    old_start, new_start = old_window.get("startdatetime", ""), new_window.get("startdatetime", "")
    if old_start == new_start and "enddatetime" in old_window and "enddatetime" not in new_window:
        return "restated"
    same_end = old_window.get("enddatetime") == new_window.get("enddatetime")
    # OASIS's times (20250101T08:00-0000) sort as they follow.
    cut = "enddatetime" in new_window and same_end and old_start < new_start
    if state in (DOWNLOADED, EMPTY) and old_start and cut:
        return None
    return "resized"


#: The query parameters that bound a request's window.
_WINDOW_PARAMETERS = ("startdatetime", "enddatetime")


def _split(url: str) -> tuple[list[str], dict[str, str]]:
    """
    @return: What of C{url} is not its window (its path, then its other
        query parameters sorted), and its window's parameters by name.
    """
    path, ignored, query = url.partition("?")
    rest, window = [], {}
    for part in query.split("&"):
        name, ignored, value = part.partition("=")
        if name in _WINDOW_PARAMETERS:
            window[name] = value
        else:
            rest.append(part)
    return [path, *sorted(rest)], window


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
    #: One more each time a newer copy of its file is to be fetched while
    #: its file is kept (an OASIS revision, a changed definition, a day
    #: ahead fetched again): numbers the copies kept (see
    #: L{harbour.services.files.kept_name}).
    revision: int = 0
    #: How many times OASIS revised its data after its file was fetched
    #: (see L{ITaskStore.revise}): of the raises of L{revision}, only those.
    revised: int = 0
    fetched: float = 0.0
    stale: str = ""
    retired_from: str = ""
    retiring: str = ""
    #: The fencing token of its latest claim: one more on every claim.
    claim: int = 0
    #: The token of the latest claim its holder ended (finished or gave
    #: back): a lease that ran out leaves it, so that a holder whose answer
    #: was lost can tell whether its outcome was recorded.
    ended: int = 0
    #: Where its file is in the parse queue: C{""} (never queued),
    #: C{queued}, C{parsing}, C{parsed} or C{unparsable}.
    parse: str = ""
    #: The last parse error (C{""} if none).
    parse_error: str = ""
    #: The rows its file gave when last parsed.
    rows: int = 0
    #: Who is parsing it, and the fencing token of its latest parse claim.
    parse_owner: str = ""
    parse_claim: int = 0
    #: The storage its file was last downloaded into (C{""}: unknown).
    storage: str = ""
    #: Of a task put back to pending only because its day is ahead (see
    #: L{ITaskStore.refetch_ahead}): the state it came from (C{downloaded}
    #: or C{empty}), to which it returns, its file and tables kept, unless
    #: a new answer with data comes before its day ends; else C{""}.
    ahead_from: str = ""
    #: Of a task put back so: the C{fetched} of the answer it keeps, which
    #: is its C{fetched} again if it goes back (C{0.0}: none kept).
    ahead_fetched: float = 0.0
    #: When L{ITaskStore.refetch_ahead} last put it back (C{0.0}: never):
    #: once a day, whatever its C{fetched} is once it goes back.
    ahead_asked: float = 0.0

    @classmethod
    def from_hash(cls, values: Mapping[str, str]) -> Task:
        """
        Build a task from its Redis hash (all strings).
        """
        return cls(
            id=values["id"],
            url=values["url"],
            filename=values["filename"],
            report=values["report"],
            window_start=float(values["window_start"]),
            window_end=float(values["window_end"]),
            state=values["state"],
            attempts=int(values["attempts"]),
            not_before=float(values["not_before"]),
            last_error=values["last_error"],
            bytes=int(values["bytes"]),
            sha256=values["sha256"],
            created=float(values["created"]),
            modified=float(values["modified"]),
            owner=values["owner"],
            revision=int(values.get("revision", 0)),
            revised=int(values.get("revised", 0)),
            fetched=float(values.get("fetched", 0)),
            stale=values.get("stale", ""),
            retired_from=values.get("retired_from", ""),
            retiring=values.get("retiring", ""),
            claim=int(values.get("claim", 0)),
            ended=int(values.get("ended", 0)),
            parse=values.get("parse", ""),
            parse_error=values.get("parse_error", ""),
            rows=int(values.get("rows", 0)),
            parse_owner=values.get("parse_owner", ""),
            parse_claim=int(values.get("parse_claim", 0)),
            storage=values.get("storage", ""),
            ahead_from=values.get("ahead_from", ""),
            ahead_fetched=float(values.get("ahead_fetched", 0)),
            ahead_asked=float(values.get("ahead_asked", 0)),
        )

    @classmethod
    def from_request(cls, request: ReportURL, now: float) -> Task:
        """
        A new pending task for C{request}.
        """
        return cls(
            task_id(request.filename),
            request.url,
            request.filename,
            request.report,
            request.window_start.timestamp(),
            request.window_end.timestamp(),
            created=now,
            modified=now,
        )

    def to_json(self) -> dict[str, object]:
        """
        @return: The task as plain JSON data.
        """
        return attr.asdict(self)


def _check_files(
    instance: object, attribute: attr.Attribute[tuple[tuple[str, str], ...]], value: object
) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(f, tuple) and len(f) == 2 and all(isinstance(p, str) and p for p in f) for f in value
    ):
        raise ValueError(f"{attribute.name} must be a tuple of (report, filename) pairs, not {value!r}")


@attr.s(frozen=True, auto_attribs=True)
class Retirement:
    """
    What L{ITaskStore.retire_with_files} did.

    @ivar count: How many tasks it retired (as L{ITaskStore.retire} counts).
    @ivar files: C{(report, filename)} of each task it retired, or marked
        to be retired once its download ends, that has a file downloaded
        before (its window's tables are to go), sorted.
    """

    count: int = attr.ib(validator=attr.validators.ge(0))
    files: tuple[tuple[str, str], ...] = attr.ib(default=(), validator=_check_files)


@attr.s(frozen=True, auto_attribs=True)
class Outcome:
    """
    The end of one claim, as L{ITaskStore.finish} takes it.

    @ivar state: C{downloaded}, C{empty} or C{failed}.
    @ivar token: The claim's fencing token, or L{None} for any claim.
    @ivar storage: Of a download, the storage its file went to (see
        L{check_storage}; C{""}: unknown).
    """

    task_id: str
    owner: str
    state: str = attr.ib(validator=lambda instance, attribute, value: check_state(value, FINAL_STATES))
    bytes: int = attr.ib(default=0, validator=attr.validators.ge(0))
    sha256: str = ""
    error: str = ""
    token: int | None = None
    storage: str = attr.ib(default="", validator=lambda instance, attribute, value: check_storage(value))


def check_storage(storage: str) -> str:
    """
    @raise ValueError: for a storage name the store cannot take: it ends a
        key's name (C{parse:queue:<storage>}), so it is at most 64
        letters, digits, C{-} and C{_} (C{""}: none).
    """
    if not isinstance(storage, str) or not _STORAGE_NAME.fullmatch(storage):
        raise ValueError(f"not a storage name: {storage!r}")
    return storage


def check_state(state: str, allowed: Iterable[str] = STATES) -> str:
    """
    @raise ValueError: for a state not in C{allowed}.
    """
    allowed = tuple(allowed)
    if state not in allowed:
        raise ValueError(f"unknown state {state!r}: use one of {', '.join(allowed)}")
    return state


CREATE = load_script("create")


CLAIM_MANY = load_script("claim_many")
RENEW = load_script("renew")
FINISH_MANY = load_script("finish_many")
RELEASE = load_script("release")
SWEEP = load_script("sweep")
RETRY = load_script("retry")
REVISE = load_script("revise")
REDEFINE = load_script("redefine")
RETIRE = load_script("retire")
REVIVE = load_script("revive")
PURGE = load_script("purge")
URLS = load_script("urls")
RETIRED_TABLES = load_script("retired_tables")
FORGET_RETIRED_TABLES = load_script("forget_retired_tables")
REFETCH_MISSING = load_script("refetch_missing")
REFETCH_AHEAD = load_script("refetch_ahead")


def _check_entries(instance: object, attribute: attr.Attribute[tuple[str, ...]], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(entry, str) for entry in value):
        raise ValueError(f"{attribute.name} must be a tuple of strings, not {value!r}")


@attr.s(frozen=True, auto_attribs=True)
class RetiredTables:
    """
    What L{ITaskStore.retired_tables} read.

    @ivar entries: The entries read, as the store keeps them (to give
        L{ITaskStore.forget_retired_tables} once their tables are gone),
        each C{"<id>\\n<report>\\n<filename>"}, and C{"\\n<storage>"} for
        a window whose file was downloaded anew elsewhere than that
        storage, or C{"\\n:resized:<window_start>:<window_end>"} (see
        L{RESIZED}) for a window resized to one that no longer holds all
        of its file (the window it had before).
    @ivar dropped: Those of them whose tables are to go, in the order
        retired.
    """

    entries: tuple[str, ...] = attr.ib(default=(), validator=_check_entries)
    dropped: tuple[str, ...] = attr.ib(default=(), validator=_check_entries)

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """
        C{(report, filename)} of each entry of L{dropped}.
        """
        files = []
        for entry in self.dropped:
            ignored, report, filename = entry.split("\n")[:3]
            files.append((report, filename))
        return tuple(files)


def _positive(count: int) -> None:
    """
    @raise ValueError: unless C{count} is at least 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")


def _token(token: int | None) -> str:
    """
    @return: A fencing token as the scripts take it (C{''}: any claim).
    """
    return "" if token is None else str(token)


@implementer(ITaskStore)
@attr.s(eq=False)
class RedisTaskStore(RedisParseQueue):
    """
    The task store on Redis.

    @ivar prefix: Prepended to every key (ends with C{:}, and carries a hash
        tag: see L{harbour.store.keys.tagged_prefix}).
    @ivar server_time: Whether scripts take the time from Redis (C{TIME})
        rather than C{clock}; by default, unless C{clock} is a test's
        L{Clock}.
    """

    redis: IRedis = attr.ib()
    clock: IReactorTime = attr.ib()
    prefix: str = attr.ib(default="{harbour}:")
    server_time: bool = attr.ib(
        default=attr.Factory(lambda self: follows_redis_time(self.clock), takes_self=True), kw_only=True
    )
    _lost_claims: LostClaims = attr.ib(
        default=attr.Factory(lambda self: LostClaims(self.clock, self._run), takes_self=True), init=False
    )

    def _run(self, script: str, *args: object) -> Deferred[Any]:
        """
        Run one of the store's scripts with its fixed keys, the prefix and
        the time to use (see C{lua/move.lua}) before C{args}.
        """
        keys = [self.prefix + name for name in FIXED_KEYS]
        now = clock_argument(None if self.server_time else self.clock.seconds())
        return self.redis.eval(script, keys, [self.prefix, now, *args])

    @inlineCallbacks
    def create(self, requests: Iterable[ReportURL]) -> Generator[Deferred[Any], Any, dict[str, int]]:
        """
        See L{ITaskStore.create}: the URLs of the known ids are read in one
        script per batch, so a refresh that finds everything as it was
        sends only ids.
        """
        created: dict[str, int] = {}
        # A file named twice would be read as unknown twice, and made from
        # its first request only.
        pending = last_per_file(requests)
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            ids = [task_id(r.filename) for r in batch]
            found = json.loads((yield self._run(URLS, *ids)))
            new: list[str] = []
            changed: list[str] = []
            revived: list[str] = []
            for request, identifier, url, state in zip(batch, ids, found[::2], found[1::2]):
                reviving = state in (RETIRED, DOWNLOADING)
                if url == request.url and not reviving:
                    continue  # as it was: most of a refresh
                window = [repr(request.window_start.timestamp()), repr(request.window_end.timestamp())]
                if reviving:
                    # Revived (or, being downloaded, no longer marked to be
                    # retired), or made anew if purged meanwhile: the fields
                    # CREATE takes (see revive.lua).
                    revived += [identifier, request.url, request.filename, request.report, *window]
                if url == request.url:
                    continue
                if url:
                    # What to do for either kind of state: REDEFINE picks by
                    # the state it finds, which a download ending since this
                    # read (or REVIVE) may have changed.
                    final, other = (
                        redefinition(url, request.url, seen) or "" for seen in (DOWNLOADED, PENDING)
                    )
                    if final or other:
                        changed += [identifier, url, request.url, *window, final, other]
                else:
                    new += [identifier, request.url, request.filename, request.report, *window]
            for script, args in ((CREATE, new), (REVIVE, revived)):
                if args:
                    # Each counts only the tasks it made or brought back.
                    reply = yield self._run(script, *args)
                    for report, count in pairs(reply).items():
                        created[report] = created.get(report, 0) + int(count)
            if changed:
                yield self._run(REDEFINE, *changed)
        return created

    @inlineCallbacks
    def ids(self) -> Generator[Deferred[Any], Any, set[str]]:
        """
        See L{ITaskStore.ids}.
        """
        return set((yield self.redis.execute("SMEMBERS", self.prefix + "ids")))

    def retire(self, ids: Iterable[str]) -> Deferred[int]:
        """
        See L{ITaskStore.retire}.
        """
        return self.retire_with_files(ids).addCallback(lambda retirement: retirement.count)

    @inlineCallbacks
    def retire_with_files(self, ids: Iterable[str]) -> Generator[Deferred[Any], Any, Retirement]:
        """
        See L{ITaskStore.retire_with_files}.
        """
        retired, pending = 0, sorted(ids)
        files: set[tuple[str, str]] = set()
        for start in range(0, len(pending), BATCH):
            count, flat = yield self._run(RETIRE, *pending[start : start + BATCH])
            retired += int(count)
            files.update(zip(flat[::2], flat[1::2]))
        return Retirement(retired, tuple(sorted(files)))

    @inlineCallbacks
    def retired_tables(self, count: int, storage: str = "") -> Generator[Deferred[Any], Any, RetiredTables]:
        """
        See L{ITaskStore.retired_tables}.
        """
        _positive(count)
        check_storage(storage)
        entries, dropped = yield self._run(RETIRED_TABLES, str(count), storage)
        return RetiredTables(tuple(entries), tuple(dropped))

    @inlineCallbacks
    def forget_retired_tables(
        self, entries: Sequence[str], dropped: Sequence[str] = ()
    ) -> Generator[Deferred[Any], Any, int]:
        """
        See L{ITaskStore.forget_retired_tables}.
        """
        if not entries:
            return 0
        return int((yield self._run(FORGET_RETIRED_TABLES, str(len(entries)), *entries, *dropped)))

    @inlineCallbacks
    def purge(self, older_than: float) -> Generator[Deferred[Any], Any, int]:
        """
        See L{ITaskStore.purge}: in batches, so no script runs long.
        """
        purged = 0
        while True:
            count = int((yield self._run(PURGE, repr(float(older_than)), str(BATCH))))
            purged += count
            if count < BATCH:
                return purged

    def recount(self) -> Deferred[Recounted]:
        """
        Set every report's counts to what its listings hold, and its parse
        counts to what its tasks hold (see L{harbour.store.recount}).

        @return: A L{Deferred} firing with the counts that were wrong.
        """
        return recount(self.redis, self.prefix)

    @inlineCallbacks
    def claim(self, owner: str, lease_seconds: float) -> Generator[Deferred[Any], Any, Task | None]:
        """
        See L{ITaskStore.claim}: as the one claim of L{claim_many}.
        """
        claimed = yield self.claim_many(owner, lease_seconds, 1)
        return claimed[0] if claimed else None

    @inlineCallbacks
    def claim_many(
        self, owner: str, lease_seconds: float, count: int
    ) -> Generator[Deferred[Any], Any, list[Task]]:
        """
        See L{ITaskStore.claim_many}: in one script.
        """
        if count < 1:
            # Nothing to ask Redis for; the lease is still checked, as the
            # script would.
            if (refusal := refused(lease_seconds=lease_seconds)) is not None:
                return (yield refusal)
            return []
        reply = yield self._lost_claims.claim(
            DOWNLOAD, owner, lease_seconds, CLAIM_MANY, repr(float(lease_seconds)), owner, str(count)
        )
        return [Task.from_hash(pairs(fields)) for fields in json.loads(reply)]

    @inlineCallbacks
    def renew(
        self, task_id: str, owner: str, lease_seconds: float, token: int | None = None
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{ITaskStore.renew}.
        """
        return bool((yield self._run(RENEW, task_id, owner, repr(float(lease_seconds)), _token(token))))

    @inlineCallbacks
    def finish(
        self,
        task_id: str,
        owner: str,
        state: str,
        bytes: int = 0,
        sha256: str = "",
        error: str = "",
        token: int | None = None,
        storage: str = "",
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{ITaskStore.finish}: as the one outcome of L{finish_many}.
        """
        [held] = yield self.finish_many(
            [Outcome(task_id, owner, state, bytes, sha256, error, token, storage)]
        )
        return held

    @inlineCallbacks
    def finish_many(self, outcomes: Sequence[Outcome]) -> Generator[Deferred[Any], Any, list[bool]]:
        """
        See L{ITaskStore.finish_many}: in one script.
        """
        if not outcomes:
            return []
        args: list[str] = []
        for outcome in outcomes:
            args += [
                outcome.task_id,
                outcome.owner,
                outcome.state,
                str(outcome.bytes),
                outcome.sha256,
                outcome.error,
                _token(outcome.token),
                outcome.storage,
            ]
        return [bool(held) for held in (yield self._run(FINISH_MANY, *args))]

    @inlineCallbacks
    def release(
        self,
        task_id: str,
        owner: str,
        delay: float,
        error: str = "",
        counted: bool = True,
        token: int | None = None,
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{ITaskStore.release}.
        """
        args = [task_id, owner, repr(float(delay)), error, "1" if counted else "0", _token(token)]
        return bool((yield self._run(RELEASE, *args)))

    @inlineCallbacks
    def sweep(self) -> Generator[Deferred[Any], Any, int]:
        """
        See L{ITaskStore.sweep}: at most L{SWEEP_BATCH} leases of each
        kind per script, so no script runs long, and another script while
        one comes back full.  Each takes the leases it returns out of the
        leases' listings, so the sweep ends once fewer are left expired.
        """
        swept = 0
        while True:
            downloads, parses = yield self._run(SWEEP, str(CUT_OFF_MOST), CUT_OFF_ERROR, str(SWEEP_BATCH))
            swept += int(downloads) + int(parses)
            if max(int(downloads), int(parses)) < SWEEP_BATCH:
                return swept

    @inlineCallbacks
    def counts(self) -> Generator[Deferred[Any], Any, dict[str, dict[str, int]]]:
        """
        See L{ITaskStore.counts}.
        """
        reports = sorted((yield self.redis.execute("SMEMBERS", self.prefix + "reports")))
        hashes = yield answers([self.redis.execute("HGETALL", self.prefix + "c:" + r) for r in reports])
        return {
            report: {state: int(n) for state, n in pairs(flat).items() if int(n)}
            for report, flat in zip(reports, hashes)
        }

    @inlineCallbacks
    def tasks(
        self, state: str, report: str | None, offset: int, limit: int
    ) -> Generator[Deferred[Any], Any, tuple[list[Task], int]]:
        """
        See L{ITaskStore.tasks}.
        """
        key = self.prefix + "s:" + check_state(state) + (":" + report if report else "")
        if limit < 1:
            # ZRANGE from offset to offset - 1 would be the whole listing.
            return [], int((yield self.redis.execute("ZCARD", key)))
        ids, total = yield answers(
            [
                self.redis.execute("ZRANGE", key, offset, offset + limit - 1),
                self.redis.execute("ZCARD", key),
            ]
        )
        found = yield answers([self.get(i) for i in ids])
        return [t for t in found if t is not None], int(total)

    @inlineCallbacks
    def retry(self, state: str, report: str | None) -> Generator[Deferred[Any], Any, int]:
        """
        See L{ITaskStore.retry}: in batches, so no script runs long.
        """
        check_state(state, (FAILED, EMPTY))
        moved = 0
        while True:
            done, read = yield self._run(RETRY, state, report or "", str(BATCH))
            moved += int(done)
            if int(read) < BATCH:
                return moved

    @inlineCallbacks
    def get(self, task_id: str) -> Generator[Deferred[Any], Any, Task | None]:
        """
        See L{ITaskStore.get}.
        """
        flat = yield self.redis.execute("HGETALL", self.prefix + "t:" + task_id)
        return Task.from_hash(pairs(flat)) if flat else None

    @inlineCallbacks
    def revise(self, revisions: Iterable[Revision]) -> Generator[Deferred[Any], Any, list[Revised]]:
        """
        See L{ITaskStore.revise}.
        """
        changed: list[Revised] = []
        given = list(revisions)
        # At least one call, so that revisions noted mid-download are looked at.
        for start in range(0, max(1, len(given)), BATCH):
            args: list[str] = []
            for identifier, at, version in given[start : start + BATCH]:
                args += [identifier, repr(at), str(version)]
            reply = yield self._run(REVISE, *args)
            changed += [json.loads(entry) for entry in reply]
        return changed

    @inlineCallbacks
    def refetch_missing(self, entries: Iterable[Missing]) -> Generator[Deferred[Any], Any, list[str]]:
        """
        See L{ITaskStore.refetch_missing}: in batches, so no script runs
        long.
        """
        given = list(entries)
        for ignored, storage, ignored in given:
            check_storage(storage)
        moved: list[str] = []
        for start in range(0, len(given), BATCH):
            args: list[str] = []
            for identifier, storage, sha256 in given[start : start + BATCH]:
                args += [identifier, storage, sha256]
            moved += yield self._run(REFETCH_MISSING, *args)
        return moved

    @inlineCallbacks
    def refetch_ahead(self, ids: Iterable[str], since: float) -> Generator[Deferred[Any], Any, list[str]]:
        """
        See L{ITaskStore.refetch_ahead}: in batches, so no script runs
        long.
        """
        given, moved = list(ids), []
        for start in range(0, len(given), BATCH):
            moved += yield self._run(REFETCH_AHEAD, repr(float(since)), *given[start : start + BATCH])
        return moved

    @inlineCallbacks
    def revision_counts(self) -> Generator[Deferred[Any], Any, dict[str, int]]:
        """
        See L{ITaskStore.revision_counts}.
        """
        flat = yield self.redis.execute("HGETALL", self.prefix + "revisions")
        return {report: int(n) for report, n in sorted(pairs(flat).items())}
