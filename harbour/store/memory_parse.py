"""
The parse queue of L{harbour.store.memory.MemoryTaskStore}: the twin of
L{harbour.store.parse_queue.RedisParseQueue} (see C{lua/*_parse.lua} and
C{parse_follow} in C{lua/move.lua}).
"""

from __future__ import annotations

from typing import Any

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from harbour.errors import StoreRefused
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
)
from harbour.store.scripts import REFUSED, refused
from harbour.store.tasks import DOWNLOADED, LEASE_EXPIRED, Task, check_storage


class MemoryParseQueue:
    """
    The parse methods of the memory store: see
    L{harbour.interfaces.ITaskStore} for each.

    @ivar _parse_queue: {task id: when it is due to be parsed}.
    @ivar _parse_leases: {task id: when its parse lease expires}.
    @ivar _parse_cut_off: {task id: how many of its parses in a row were
        cut off}.
    """

    clock: IReactorTime
    _tasks: dict[str, Task]
    _parse_queue: dict[str, float]
    _parse_leases: dict[str, float]
    _parse_cut_off: dict[str, int]

    def _follow_parse(self, before: Task, after: Task) -> Task:
        """
        @return: C{after}, the task C{before} became, queued to be parsed
            if it became downloaded, out of the parse queue if it stopped
            being downloaded.
        """
        if before.state == DOWNLOADED and after.state != DOWNLOADED:
            if after.parse:
                self._parse_queue.pop(after.id, None)
                self._parse_leases.pop(after.id, None)
                return attr.evolve(after, parse=UNQUEUED, parse_owner="")
        elif after.state == DOWNLOADED and before.state != DOWNLOADED:
            self._parse_queue[after.id] = self.clock.seconds()
            self._parse_cut_off.pop(after.id, None)
            return attr.evolve(after, parse=QUEUED, parse_error="", parse_owner="", rows=0)
        return after

    def _parse_held(self, task_id: str, owner: str, token: int) -> Task | None:
        task = self._tasks.get(task_id)
        if task is None or task.state != DOWNLOADED or task.parse != PARSING:
            return None
        if task.parse_owner != owner or task.parse_claim != token:
            return None
        return task

    def _set(self, task: Task, **changes: Any) -> None:
        # Parse transitions leave a task's modified time alone, as in Redis.
        self._tasks[task.id] = attr.evolve(task, **changes)

    def claim_parse(self, owner: str, lease_seconds: float, storage: str = "") -> Deferred[ParseJob | None]:
        """
        See L{harbour.interfaces.ITaskStore.claim_parse}.
        """
        if (refusal := refused(lease_seconds=lease_seconds)) is not None:
            return refusal
        try:
            check_storage(storage)
        except ValueError as e:
            return fail(StoreRefused(f"{REFUSED}: {e}"))
        now = self.clock.seconds()
        # Redis keeps a queue per storage; one filtered is the same queue.
        due = sorted(
            (at, identifier)
            for identifier, at in self._parse_queue.items()
            if at <= now and self._tasks[identifier].storage in ("", storage)
        )
        if not due:
            return succeed(None)
        identifier = due[0][1]
        del self._parse_queue[identifier]
        task = self._tasks[identifier]
        self._parse_leases[identifier] = now + lease_seconds
        self._set(task, parse=PARSING, parse_owner=owner, parse_claim=task.parse_claim + 1)
        return succeed(
            ParseJob(
                task.id,
                task.report,
                task.filename,
                task.url,
                task.sha256,
                task.revision,
                task.parse_claim + 1,
            )
        )

    def finish_parse(self, task_id: str, owner: str, token: int, rows: int, error: str) -> Deferred[bool]:
        """
        See L{harbour.interfaces.ITaskStore.finish_parse}.
        """
        if not error and rows < 0:
            # Checked before the claim is, as C{lua/finish_parse.lua} does.
            return fail(StoreRefused(f"{REFUSED}: rows is not a whole number of at least 0: {rows}"))
        task = self._parse_held(task_id, owner, token)
        if task is None:
            return succeed(False)
        self._parse_leases.pop(task_id, None)
        self._parse_cut_off.pop(task_id, None)
        if error:
            self._set(task, parse=UNPARSABLE, parse_owner="", parse_error=error)
        else:
            self._set(task, parse=PARSED, parse_owner="", parse_error="", rows=rows)
        return succeed(True)

    def release_parse(self, task_id: str, owner: str, token: int, delay: float, error: str) -> Deferred[bool]:
        """
        See L{harbour.interfaces.ITaskStore.release_parse}.
        """
        if (refusal := refused(delay=delay)) is not None:
            return refusal
        task = self._parse_held(task_id, owner, token)
        if task is None:
            return succeed(False)
        self._parse_leases.pop(task_id, None)
        self._parse_queue[task_id] = self.clock.seconds() + delay
        self._set(task, parse=QUEUED, parse_owner="", parse_error=error)
        return succeed(True)

    def renew_parse(self, task_id: str, owner: str, token: int, lease_seconds: float) -> Deferred[bool]:
        """
        See L{harbour.interfaces.ITaskStore.renew_parse}.
        """
        if (refusal := refused(lease_seconds=lease_seconds)) is not None:
            return refusal
        if self._parse_held(task_id, owner, token) is None:
            return succeed(False)
        self._parse_leases[task_id] = self.clock.seconds() + lease_seconds
        return succeed(True)

    def requeue_parse(self, report: str | None, only_unqueued: bool) -> Deferred[int]:
        """
        See L{harbour.interfaces.ITaskStore.requeue_parse}.
        """
        queued = 0
        for task in list(self._tasks.values()):
            if task.state != DOWNLOADED or (report and task.report != report) or task.parse == QUEUED:
                continue
            if only_unqueued and task.parse != UNQUEUED:
                continue
            self._parse_leases.pop(task.id, None)
            self._parse_cut_off.pop(task.id, None)
            self._parse_queue[task.id] = self.clock.seconds()
            self._set(task, parse=QUEUED, parse_owner="")
            queued += 1
        return succeed(queued)

    def parse_counts(self) -> Deferred[dict[str, dict[str, int]]]:
        """
        See L{harbour.interfaces.ITaskStore.parse_counts}.
        """
        counts: dict[str, dict[str, int]] = {}
        for task in self._tasks.values():
            if task.parse in PARSE_STATES:
                states = counts.setdefault(task.report, dict.fromkeys(PARSE_STATES, 0))
                states[task.parse] += 1
        return succeed(dict(sorted(counts.items())))

    def _sweep_parses(self) -> int:
        """
        Return parses whose lease expired to the queue.

        @return: How many leases expired.
        """
        now = self.clock.seconds()
        expired = [i for i, expiry in self._parse_leases.items() if expiry <= now]
        for identifier in expired:
            del self._parse_leases[identifier]
            task = self._tasks.get(identifier)
            if task is not None and task.state == DOWNLOADED and task.parse == PARSING:
                cut_off = self._parse_cut_off[identifier] = self._parse_cut_off.get(identifier, 0) + 1
                if cut_off >= CUT_OFF_MOST:
                    self._set(task, parse=UNPARSABLE, parse_owner="", parse_error=CUT_OFF_ERROR)
                else:
                    self._parse_queue[identifier] = now
                    self._set(task, parse=QUEUED, parse_owner="", parse_error=LEASE_EXPIRED)
        return len(expired)
