"""
The parse queue of the task store: every downloaded file waits there to be
parsed (by the C{tables} service), claimed like a download so that a killed
process loses nothing, by a process that has the file: one queue per
storage the files were downloaded into, and a shared one for files
recorded without (see L{harbour.store.tasks}).

L{RedisParseQueue} holds the Redis half of L{harbour.interfaces.ITaskStore}'s
parse methods, for L{harbour.store.tasks.RedisTaskStore}.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.interfaces import IRedis
from harbour.store.scripts import answers, load_script, pairs
from harbour.store.unclaiming import PARSE, LostClaims

#: A task's C{parse}: never queued (not downloaded, or downloaded before the
#: parse queue existed).
UNQUEUED = ""
QUEUED = "queued"
PARSING = "parsing"
PARSED = "parsed"
UNPARSABLE = "unparsable"
PARSE_STATES = (QUEUED, PARSING, PARSED, UNPARSABLE)

#: Tasks looked at per requeue script (the C{COUNT} of its C{ZSCAN} step).
REQUEUE_BATCH = 2_000

#: The most parses of one file cut off in a row (their lease expired: the
#: process died or stalled) before the file is C{unparsable}: a file that
#: kills its parser would otherwise be taken again after every restart.
CUT_OFF_MOST = 3
#: The C{parse_error} of such a file.
CUT_OFF_ERROR = (
    f"its parse was cut off {CUT_OFF_MOST} times in a row (its process died or stalled each time): "
    "harbourctl reparse tries again"
)


CLAIM_PARSE = load_script("claim_parse")
FINISH_PARSE = load_script("finish_parse")
RELEASE_PARSE = load_script("release_parse")
RENEW_PARSE = load_script("renew_parse")
REQUEUE_PARSE = load_script("requeue_parse")


def _check_token(instance: object, attribute: attr.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be a claim's token (1 or more), not {value!r}")


@attr.s(frozen=True, auto_attribs=True)
class ParseJob:
    """
    A downloaded file claimed to be parsed.

    @ivar token: The parse claim's fencing token: L{finish_parse},
        L{release_parse} and L{renew_parse} with an older one are refused.
    """

    id: str = attr.ib(validator=attr.validators.min_len(1))
    report: str = attr.ib(validator=attr.validators.min_len(1))
    filename: str = attr.ib(validator=attr.validators.min_len(1))
    url: str
    sha256: str
    revision: int = attr.ib(validator=attr.validators.ge(0))
    token: int = attr.ib(validator=_check_token)

    @classmethod
    def from_hash(cls, values: Mapping[str, str]) -> ParseJob:
        """
        Build a job from its task's Redis hash (all strings).
        """
        return cls(
            id=values["id"],
            report=values["report"],
            filename=values["filename"],
            url=values["url"],
            sha256=values["sha256"],
            revision=int(values.get("revision", 0)),
            token=int(values["parse_claim"]),
        )


class RedisParseQueue:
    """
    The parse methods of L{harbour.store.tasks.RedisTaskStore}: see
    L{harbour.interfaces.ITaskStore} for each.
    """

    redis: IRedis
    prefix: str
    _lost_claims: LostClaims

    def _run(self, script: str, *args: object) -> Deferred[Any]:
        raise NotImplementedError()

    @inlineCallbacks
    def claim_parse(
        self, owner: str, lease_seconds: float, storage: str = ""
    ) -> Generator[Deferred[Any], Any, ParseJob | None]:
        """
        See L{harbour.interfaces.ITaskStore.claim_parse}.
        """
        reply = yield self._lost_claims.claim(
            PARSE, owner, lease_seconds, CLAIM_PARSE, owner, repr(lease_seconds), storage
        )
        return ParseJob.from_hash(pairs(json.loads(reply))) if reply else None

    @inlineCallbacks
    def finish_parse(
        self, task_id: str, owner: str, token: int, rows: int, error: str
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{harbour.interfaces.ITaskStore.finish_parse}.
        """
        return bool((yield self._run(FINISH_PARSE, task_id, owner, str(token), str(rows), error)))

    @inlineCallbacks
    def release_parse(
        self, task_id: str, owner: str, token: int, delay: float, error: str
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{harbour.interfaces.ITaskStore.release_parse}.
        """
        return bool((yield self._run(RELEASE_PARSE, task_id, owner, str(token), repr(float(delay)), error)))

    @inlineCallbacks
    def renew_parse(
        self, task_id: str, owner: str, token: int, lease_seconds: float
    ) -> Generator[Deferred[Any], Any, bool]:
        """
        See L{harbour.interfaces.ITaskStore.renew_parse}.
        """
        return bool((yield self._run(RENEW_PARSE, task_id, owner, str(token), repr(float(lease_seconds)))))

    @inlineCallbacks
    def requeue_parse(self, report: str | None, only_unqueued: bool) -> Generator[Deferred[Any], Any, int]:
        """
        See L{harbour.interfaces.ITaskStore.requeue_parse}: one C{ZSCAN}
        step of the downloaded tasks per script, so no script runs long and
        a task leaving the listing between steps makes no other one missed.
        """
        queued, cursor = 0, "0"
        while True:
            cursor, count = yield self._run(
                REQUEUE_PARSE,
                report or "",
                cursor,
                str(REQUEUE_BATCH),
                "1" if only_unqueued else "0",
            )
            queued += int(count)
            if str(cursor) == "0":
                return queued

    @inlineCallbacks
    def parse_counts(self) -> Generator[Deferred[Any], Any, dict[str, dict[str, int]]]:
        """
        See L{harbour.interfaces.ITaskStore.parse_counts}.
        """
        reports = sorted((yield self.redis.execute("SMEMBERS", self.prefix + "reports")))
        hashes = yield answers([self.redis.execute("HGETALL", self.prefix + "pc:" + r) for r in reports])
        counts = {}
        for report, flat in zip(reports, hashes):
            found = {state: int(n) for state, n in pairs(flat).items()}
            if any(found.values()):
                counts[report] = {state: found.get(state, 0) for state in PARSE_STATES}
        return counts
