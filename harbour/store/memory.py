"""
The task store in memory: L{harbour.store.tasks.RedisTaskStore}'s twin for
unit tests, passing the same behaviour suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from harbour.interfaces import ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.memory_parse import MemoryParseQueue
from harbour.store.recount import Recounted
from harbour.store.scripts import refused
from harbour.store.tasks import (
    AHEAD,
    AHEAD_KEPT,
    DOWNLOADED,
    DOWNLOADING,
    EMPTY,
    FAILED,
    FILE_MISSING,
    FINAL_STATES,
    LEASE_EXPIRED,
    PARSED,
    PENDING,
    QUEUED,
    RESIZED,
    RETIRED,
    Missing,
    Outcome,
    RetiredTables,
    Retirement,
    Revised,
    Revision,
    Task,
    check_state,
    check_storage,
    last_per_file,
    redefinition,
    task_id,
)

#: The end of an entry of the retired tables' list for a window resized,
#: with the window it had before (as C{listed} in C{lua/move.lua} reads it).
_RESIZED_WINDOW = re.compile(re.escape(RESIZED) + ":([^:]*):([^:]*)")


def _invalid(check: Callable[[], object]) -> Deferred[Any] | None:
    """
    Check a call's arguments as the Redis store does before it asks Redis.

    @param check: Raises L{ValueError} for arguments the call does not take.
    @return: A L{Deferred} failed with that error, as the Redis store's
        answer is, or L{None} if the arguments pass.
    """
    try:
        check()
    except ValueError as e:
        return fail(e)
    return None


@implementer(ITaskStore)
@attr.s(eq=False)
class MemoryTaskStore(MemoryParseQueue):
    """
    The task store in memory, with the same behaviour, for unit tests: its
    time is C{clock}'s.
    """

    clock: IReactorTime = attr.ib()
    _tasks: dict[str, Task] = attr.ib(factory=dict, init=False)
    _leases: dict[str, float] = attr.ib(factory=dict, init=False)
    _due: dict[str, tuple[float, str]] = attr.ib(factory=dict, init=False)
    _revisions: dict[str, int] = attr.ib(factory=dict, init=False)
    _retired: dict[str, float] = attr.ib(factory=dict, init=False)
    # The entries retire_with_files listed ("id\nreport\nfilename"), oldest first, until forgotten.
    _retired_tables: list[str] = attr.ib(factory=list, init=False)
    _parse_queue: dict[str, float] = attr.ib(factory=dict, init=False)
    _parse_leases: dict[str, float] = attr.ib(factory=dict, init=False)
    _parse_cut_off: dict[str, int] = attr.ib(factory=dict, init=False)

    def _replace(self, task: Task, **changes: Any) -> Task:
        changed = self._follow_parse(task, attr.evolve(task, modified=self.clock.seconds(), **changes))
        self._tasks[changed.id] = changed
        return changed

    def _held(self, task_id: str, owner: str, token: int | None) -> Task | None:
        task = self._tasks.get(task_id)
        if task is None or task.state != DOWNLOADING or task.owner != owner:
            return None
        if token is not None and task.claim != token:
            return None
        return task

    def create(self, requests: Iterable[ReportURL]) -> Deferred[dict[str, int]]:
        """
        See L{ITaskStore.create}.
        """
        created: dict[str, int] = {}
        now = self.clock.seconds()
        # Each request in turn would redefine the task by the one before.
        for request in last_per_file(requests):
            identifier = task_id(request.filename)
            task = self._tasks.get(identifier)
            if task is None:
                self._tasks[identifier] = Task.from_request(request, now)
                created[request.report] = created.get(request.report, 0) + 1
                continue
            if task.state == RETIRED:
                task = self._revive(task)
                created[request.report] = created.get(request.report, 0) + 1
            elif task.retiring:
                # Unmarked only: its modified time stays, as in Redis.
                task = self._tasks[identifier] = attr.evolve(task, retiring="")
            how = redefinition(task.url, request.url, task.state) if task.url != request.url else None
            if how is not None:
                self._redefine(task, request, how)
        return succeed(created)

    def ids(self) -> Deferred[set[str]]:
        """
        See L{ITaskStore.ids}.
        """
        return succeed(set(self._tasks))

    def retire(self, ids: Iterable[str]) -> Deferred[int]:
        """
        See L{ITaskStore.retire}.
        """
        return self.retire_with_files(ids).addCallback(lambda retirement: retirement.count)

    def retire_with_files(self, ids: Iterable[str]) -> Deferred[Retirement]:
        """
        See L{ITaskStore.retire_with_files} (and C{lua/retire.lua}).
        """
        retired = 0
        files: set[tuple[str, str]] = set()
        for identifier in sorted(ids):
            task = self._tasks.get(identifier)
            if task is None or task.state == RETIRED or (task.state == DOWNLOADING and task.retiring):
                continue
            if task.state == DOWNLOADED or task.bytes > 0:
                files.add((task.report, task.filename))
                self._list_tables(task)
            if task.state == DOWNLOADING:
                # Marked only: its modified time stays, as in Redis.
                self._tasks[identifier] = attr.evolve(task, retiring="1")
            else:
                self._retire(task)
                retired += 1
        return succeed(Retirement(retired, tuple(sorted(files))))

    def _list_tables(self, task: Task, moved_from: str | None = None) -> None:
        """
        List C{task}'s window as one whose tables are to go (as
        C{list_tables} in C{lua/move.lua}).
        """
        entry = f"{task.id}\n{task.report}\n{task.filename}"
        self._retired_tables.append(entry if moved_from is None else f"{entry}\n{moved_from}")

    def retired_tables(self, count: int, storage: str = "") -> Deferred[RetiredTables]:
        """
        See L{ITaskStore.retired_tables} (and C{lua/retired_tables.lua}).
        """
        if count < 1:
            return fail(ValueError(f"count must be at least 1, not {count}"))
        if (invalid := _invalid(lambda: check_storage(storage))) is not None:
            return invalid
        entries = tuple(self._retired_tables[:count])
        dropped = []
        for entry in entries:
            task_id, moved_from, before = _listed(entry)
            task = self._tasks.get(task_id)
            if before is not None:
                parsed_anew = task is not None and task.state == DOWNLOADED and task.parse == PARSED
                holds = task is not None and task.window_start <= before[0] and task.window_end >= before[1]
                if not parsed_anew and not holds:
                    dropped.append(entry)
                continue
            if moved_from is not None:
                if storage and moved_from == storage and (task is None or task.storage != storage):
                    dropped.append(entry)
                continue
            retiring = task is not None and task.state == DOWNLOADING and task.retiring
            if task is None or task.state in (RETIRED, EMPTY) or retiring:
                dropped.append(entry)
        return succeed(RetiredTables(entries, tuple(dropped)))

    def forget_retired_tables(self, entries: Sequence[str], dropped: Sequence[str] = ()) -> Deferred[int]:
        """
        See L{ITaskStore.forget_retired_tables} (and
        C{lua/forget_retired_tables.lua}).
        """
        forgotten, requeue = 0, set(dropped)
        for entry in entries:
            if not self._retired_tables or self._retired_tables[0] != entry:
                break
            del self._retired_tables[0]
            forgotten += 1
            task_id, moved_from, ignored = _listed(entry)
            task = self._tasks.get(task_id)
            if (
                entry in requeue
                and moved_from is None
                and task is not None
                and task.state == DOWNLOADED
                and task.parse != QUEUED
            ):
                self._parse_leases.pop(task.id, None)
                self._parse_cut_off.pop(task.id, None)
                self._parse_queue[task.id] = self.clock.seconds()
                self._set(task, parse=QUEUED, parse_owner="")
        return succeed(forgotten)

    def _retire(self, task: Task) -> Task:
        """
        Retire C{task}, remembering its state (see C{retire_task} in
        C{move.lua}).
        """
        self._retired[task.id] = self.clock.seconds()
        return self._replace(task, state=RETIRED, retired_from=task.state, retiring="")

    def _settle(self, task: Task) -> None:
        """
        Retire C{task} if it was retired while being downloaded.
        """
        if task.retiring:
            self._retire(task)

    def _revive(self, task: Task) -> Task:
        """
        Bring a retired task back to the state it was retired from (see
        C{revive.lua}).
        """
        self._retired.pop(task.id, None)
        if task.retired_from in FINAL_STATES:
            return self._replace(task, state=task.retired_from, retired_from="")
        return self._replace(task, state=PENDING, attempts=0, not_before=0.0, last_error="", retired_from="")

    def purge(self, older_than: float) -> Deferred[int]:
        """
        See L{ITaskStore.purge}.
        """
        if (refusal := refused(older_than=older_than)) is not None:
            return refusal
        before = self.clock.seconds() - older_than
        gone = [identifier for identifier, at in self._retired.items() if at <= before]
        for identifier in gone:
            task = self._tasks.pop(identifier)
            del self._retired[identifier]
            self._revisions_left(task.report)
        return succeed(len(gone))

    def _revisions_left(self, report: str) -> None:
        """
        Forget C{report}'s revision count once it has no task left.
        """
        if not any(t.report == report for t in self._tasks.values()):
            self._revisions.pop(report, None)

    def _redefine(self, task: Task, request: ReportURL, how: str) -> None:
        """
        Give C{task} the changed request C{request} (see C{redefine.lua}).
        """
        had_file = task.state == DOWNLOADED or task.bytes > 0
        if how != "restated" and had_file and not _holds(request, task):
            # Its tables hold hours other windows now answer; the window
            # it had lets one asked for again before the entry is read
            # keep them.
            self._list_tables(task, moved_from=f"{RESIZED}:{task.window_start!r}:{task.window_end!r}")
        task = self._replace(
            task,
            url=request.url,
            window_start=request.window_start.timestamp(),
            window_end=request.window_end.timestamp(),
        )
        if how == "restated":
            return
        if task.state == DOWNLOADING:
            self._replace(task, stale=how)
        elif task.state != PENDING:
            self._refetch(task, how, "window resized" if how == "resized" else "request changed")

    def _refetch(self, task: Task, how: str, why: str) -> Task:
        """
        Put a final C{task} back to pending, keeping its file as a revision
        when its definition changed, keeping nothing when resized.
        """
        changes: dict[str, Any] = {}
        if task.state == DOWNLOADED and how == "changed":
            changes["revision"] = task.revision + 1
        elif how == "resized":
            changes["sha256"] = ""
        return self._replace(
            task, state=PENDING, attempts=0, not_before=0.0, last_error=why, stale="", **changes
        )

    def claim(self, owner: str, lease_seconds: float) -> Deferred[Task | None]:
        """
        See L{ITaskStore.claim}.
        """
        if (refusal := refused(lease_seconds=lease_seconds)) is not None:
            return refusal
        return succeed(self._claim(owner, lease_seconds))

    def claim_many(self, owner: str, lease_seconds: float, count: int) -> Deferred[list[Task]]:
        """
        See L{ITaskStore.claim_many}.
        """
        if (refusal := refused(lease_seconds=lease_seconds)) is not None:
            return refusal
        claimed: list[Task] = []
        while len(claimed) < count and (task := self._claim(owner, lease_seconds)) is not None:
            claimed.append(task)
        return succeed(claimed)

    def _claim(self, owner: str, lease_seconds: float) -> Task | None:
        """
        Claim the most urgent due task, if any: one put back only because
        its day was ahead, whose day is over, is back as it was instead.
        """
        now = self.clock.seconds()
        while True:
            due = [t for t in self._tasks.values() if t.state == PENDING and t.not_before <= now]
            if not due:
                return None
            task = min(due, key=lambda t: (-t.window_start, t.id))
            if not _ahead_over(task, now):
                break
            self._ahead_back(task, "its day ended first")
        self._leases[task.id] = now + lease_seconds
        return self._replace(
            task,
            state=DOWNLOADING,
            owner=owner,
            attempts=task.attempts + 1,
            fetched=now,
            claim=task.claim + 1,
        )

    def renew(
        self, task_id: str, owner: str, lease_seconds: float, token: int | None = None
    ) -> Deferred[bool]:
        """
        See L{ITaskStore.renew}.
        """
        if (refusal := refused(lease_seconds=lease_seconds)) is not None:
            return refusal
        if self._held(task_id, owner, token) is None:
            return succeed(False)
        self._leases[task_id] = self.clock.seconds() + lease_seconds
        return succeed(True)

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
    ) -> Deferred[bool]:
        """
        See L{ITaskStore.finish}.
        """
        if (
            invalid := _invalid(lambda: (check_state(state, FINAL_STATES), check_storage(storage)))
        ) is not None:
            return invalid
        task = self._held(task_id, owner, token)
        if task is None:
            return succeed(False)
        self._leases.pop(task_id, None)
        ahead = task.ahead_from
        if ahead and state != DOWNLOADED:
            # A day ahead fetched again keeps what it had unless data replaces it.
            self._settle(self._ahead_back(task, error or ("no data" if state == EMPTY else state)))
            return succeed(True)
        if state == DOWNLOADED:
            if task.storage and task.storage != storage:
                self._list_tables(task, moved_from=task.storage)
            task = attr.evolve(task, bytes=bytes, sha256=sha256, storage=storage)
        elif state == EMPTY and task.bytes > 0:
            self._list_tables(task)
        task = self._replace(
            task, state=state, owner="", last_error=error, ended=task.claim, ahead_from="", ahead_fetched=0.0
        )
        if task.stale:
            if ahead:
                # Still a day ahead: what was just fetched is what it keeps,
                # resized or not, and it is not fetched once its day is over.
                task = self._refetch(task, "changed", "request changed while fetched")
                task = self._replace(task, ahead_from=state)
            else:
                task = self._refetch(task, task.stale, "request changed while fetched")
        self._settle(task)
        return succeed(True)

    def finish_many(self, outcomes: Sequence[Outcome]) -> Deferred[list[bool]]:
        """
        See L{ITaskStore.finish_many}.
        """
        ended: list[bool] = []
        for o in outcomes:
            self.finish(
                o.task_id, o.owner, o.state, o.bytes, o.sha256, o.error, o.token, o.storage
            ).addCallback(ended.append)
        return succeed(ended)

    def release(
        self,
        task_id: str,
        owner: str,
        delay: float,
        error: str = "",
        counted: bool = True,
        token: int | None = None,
    ) -> Deferred[bool]:
        """
        See L{ITaskStore.release}.
        """
        if (refusal := refused(delay=delay)) is not None:
            return refusal
        task = self._held(task_id, owner, token)
        if task is None:
            return succeed(False)
        not_before = self.clock.seconds() + delay
        self._leases.pop(task_id, None)
        if _ahead_over(task, not_before):
            self._settle(self._ahead_back(task, error))
            return succeed(True)
        attempts = task.attempts if counted else task.attempts - 1
        self._settle(
            self._replace(
                task,
                state=PENDING,
                owner="",
                not_before=not_before,
                last_error=error,
                attempts=attempts,
                ended=task.claim,
                **_stale_forgotten(task),
            )
        )
        return succeed(True)

    def sweep(self) -> Deferred[int]:
        """
        See L{ITaskStore.sweep}.
        """
        now = self.clock.seconds()
        expired = [i for i, expiry in self._leases.items() if expiry <= now]
        for identifier in expired:
            del self._leases[identifier]
            task = self._tasks[identifier]
            if task.state == DOWNLOADING and _ahead_over(task, now):
                self._settle(self._ahead_back(task, LEASE_EXPIRED))
            elif task.state == DOWNLOADING:
                self._settle(
                    self._replace(
                        task, state=PENDING, owner="", last_error=LEASE_EXPIRED, **_stale_forgotten(task)
                    )
                )
        return succeed(len(expired) + self._sweep_parses())

    def counts(self) -> Deferred[dict[str, dict[str, int]]]:
        """
        See L{ITaskStore.counts}.
        """
        result: dict[str, dict[str, int]] = {}
        for task in self._tasks.values():
            states = result.setdefault(task.report, {})
            states[task.state] = states.get(task.state, 0) + 1
        return succeed(dict(sorted(result.items())))

    def recount(self) -> Deferred[Recounted]:
        """
        See L{harbour.store.tasks.RedisTaskStore.recount}: counts and parse
        counts here are reckoned from the tasks whenever asked, so none is
        ever wrong.
        """
        return succeed({})

    def tasks(
        self, state: str, report: str | None, offset: int, limit: int
    ) -> Deferred[tuple[list[Task], int]]:
        """
        See L{ITaskStore.tasks}.
        """
        if (invalid := _invalid(lambda: check_state(state))) is not None:
            return invalid
        found = sorted(
            (t for t in self._tasks.values() if t.state == state and (not report or t.report == report)),
            key=lambda t: (-t.window_start, t.id),
        )
        return succeed((found[offset : offset + max(limit, 0)], len(found)))

    def retry(self, state: str, report: str | None) -> Deferred[int]:
        """
        See L{ITaskStore.retry}.
        """
        if (invalid := _invalid(lambda: check_state(state, (FAILED, EMPTY)))) is not None:
            return invalid
        chosen = [t for t in self._tasks.values() if t.state == state and (not report or t.report == report)]
        for task in chosen:
            self._replace(task, state=PENDING, attempts=0, not_before=0.0, last_error="")
        return succeed(len(chosen))

    def get(self, task_id: str) -> Deferred[Task | None]:
        """
        See L{ITaskStore.get}.
        """
        return succeed(self._tasks.get(task_id))

    def revise(self, revisions: Iterable[Revision]) -> Deferred[list[Revised]]:
        """
        See L{ITaskStore.revise}.
        """
        changed: list[Revised] = []
        earlier = [(i, at, version) for i, (at, version) in self._due.items()]
        for identifier, at, version in earlier + [(i, float(a), str(v)) for i, a, v in revisions]:
            task = self._tasks.get(identifier)
            if task is not None and task.state == DOWNLOADING:
                if identifier not in self._due or self._due[identifier][0] < at:
                    self._due[identifier] = (at, version)
                continue
            self._due.pop(identifier, None)
            if task is None:
                continue
            # A retired task is looked at as the state it would come back to.
            previous = task.retired_from if task.state == RETIRED else task.state
            if previous not in (DOWNLOADED, EMPTY) or (task.fetched or task.modified) >= at:
                continue
            revision, revised, why = task.revision, task.revised, "published after it was fetched"
            if previous == DOWNLOADED:
                revision += 1
                revised += 1
                self._revisions[task.report] = self._revisions.get(task.report, 0) + 1
                why = f"revised in OASIS (version {version})"
            if task.state == RETIRED:
                self._replace(task, retired_from=PENDING, revision=revision, revised=revised)
            else:
                self._replace(
                    task,
                    state=PENDING,
                    attempts=0,
                    not_before=0.0,
                    last_error=why,
                    revision=revision,
                    revised=revised,
                )
            changed.append(
                {
                    "id": identifier,
                    "report": task.report,
                    "previous": task.state,
                    "revision": revision,
                    "revised": revised,
                    "url": task.url,
                    "filename": task.filename,
                }
            )
        return succeed(changed)

    def refetch_missing(self, entries: Iterable[Missing]) -> Deferred[list[str]]:
        """
        See L{ITaskStore.refetch_missing} (and C{lua/refetch_missing.lua}).
        """
        given = list(entries)
        if (
            invalid := _invalid(lambda: [check_storage(storage) for ignored, storage, ignored in given])
        ) is not None:
            return invalid
        moved: list[str] = []
        for identifier, storage, sha256 in given:
            task = self._tasks.get(identifier)
            if task is None or (task.state, task.storage, task.sha256) != (DOWNLOADED, storage, sha256):
                continue
            self._replace(task, state=PENDING, sha256="", attempts=0, not_before=0.0, last_error=FILE_MISSING)
            moved.append(identifier)
        return succeed(moved)

    def refetch_ahead(self, ids: Iterable[str], since: float) -> Deferred[list[str]]:
        """
        See L{ITaskStore.refetch_ahead} (and C{lua/refetch_ahead.lua}).
        """
        now, moved = self.clock.seconds(), []
        for identifier in ids:
            task = self._tasks.get(identifier)
            if task is None or task.state not in (DOWNLOADED, EMPTY) or task.window_end <= now:
                continue
            if (task.fetched or task.modified) >= since or task.ahead_asked >= since:
                continue
            revision = task.revision + 1 if task.state == DOWNLOADED else task.revision
            self._replace(
                task,
                state=PENDING,
                revision=revision,
                attempts=0,
                not_before=0.0,
                last_error=AHEAD,
                ahead_from=task.state,
                ahead_fetched=task.fetched or task.modified,
                ahead_asked=now,
            )
            moved.append(identifier)
        return succeed(moved)

    def _ahead_back(self, task: Task, why: str) -> Task:
        """
        Bring C{task}, put back to pending only because its day was ahead
        (now pending or downloading), back to the state it came from as it
        was, its file parsed again (see C{ahead_back} in C{lua/move.lua}).

        @param why: What became of the fetch again (C{""}: nothing to say).
        """
        self._leases.pop(task.id, None)
        changes: dict[str, Any] = {}
        if task.ahead_from == DOWNLOADED:
            changes["revision"] = task.revision - 1
        if task.state == DOWNLOADING:
            changes["ended"] = task.claim
        if task.ahead_fetched:
            changes["fetched"] = task.ahead_fetched
        return self._replace(
            task,
            state=task.ahead_from,
            ahead_from="",
            ahead_fetched=0.0,
            stale="",
            owner="",
            not_before=0.0,
            last_error=f"{AHEAD_KEPT} ({why})" if why else AHEAD_KEPT,
            **changes,
        )

    def revision_counts(self) -> Deferred[dict[str, int]]:
        """
        See L{ITaskStore.revision_counts}.
        """
        return succeed(dict(sorted(self._revisions.items())))


def _ahead_over(task: Task, due: float) -> bool:
    """
    @return: Whether C{task} was put back to pending only because its day
        was ahead and, due at C{due}, would not be fetched again before its
        day ends (see C{ahead_over} in C{lua/move.lua}).
    """
    return bool(task.ahead_from) and due >= task.window_end


def _stale_forgotten(task: Task) -> dict[str, str]:
    """
    @return: The changes to a claim given back or expired: it fetched
        nothing, and the next claim asks for the request as it is then, so
        a change while it was fetched needs no second fetch; but a resized
        window's file in place is replaced, not kept (see C{forget_stale} in
        C{lua/move.lua}).
    """
    if task.stale == "resized":
        return {"stale": "", "sha256": ""}
    return {"stale": ""}


def _holds(request: ReportURL, task: Task) -> bool:
    """
    @return: Whether C{request}'s window holds all of C{task}'s (as it was
        before C{request}), as C{redefine.lua} tells.
    """
    return (
        request.window_start.timestamp() <= task.window_start
        and request.window_end.timestamp() >= task.window_end
    )


def _listed(entry: str) -> tuple[str, str | None, tuple[float, float] | None]:
    """
    @return: The task id of an entry of the retired tables' list, the
        storage its file moved from (L{None} for a window retired, emptied
        or resized), and for a window resized the C{(start, end)} of the
        window it had before (else L{None}), as C{listed} in
        C{lua/move.lua}.
    """
    parts = entry.split("\n")
    if len(parts) != 4:
        return parts[0], None, None
    match = _RESIZED_WINDOW.fullmatch(parts[3])
    if match is None:
        return parts[0], parts[3], None
    return parts[0], None, (float(match[1]), float(match[2]))
