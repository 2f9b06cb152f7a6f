"""
The ends of claims, recorded in the store a batch at a time.

A group commit makes several files durable at once, and their attempts
then record their outcomes in the same turn of the reactor.  One store
call is under way at a time: the outcomes asked for meanwhile wait, and
go together in the next (L{harbour.interfaces.ITaskStore.finish_many}), so
a busy worker sends a few calls per group instead of one per file, and an
idle one sends each outcome at once, as before.
"""

from __future__ import annotations

import attr
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from harbour.interfaces import ITaskStore
from harbour.store.tasks import Outcome

#: The most outcomes sent in one call: a script runs alone in Redis, so
#: a long one would hold every other client back.
MOST_AT_ONCE = 100


@attr.s(eq=False)
class Finishes:
    """
    Records outcomes in batches.

    @ivar store: Where they are recorded.
    """

    store: ITaskStore = attr.ib()
    # Each outcome waiting, whether it must go in a call of its own, and
    # who waits for it.
    _waiting: list[tuple[Outcome, bool, Deferred[bool]]] = attr.ib(factory=list, init=False)
    _sending: bool = attr.ib(default=False, init=False)

    def finish(self, outcome: Outcome, alone: bool = False) -> Deferred[bool]:
        """
        Record C{outcome} with the next call to the store.

        @param alone: Whether it goes in a call of its own: a try after a
            call that failed, so that an outcome the store cannot record
            does not fail others with it again and again.
        @return: A L{Deferred} firing with whether its claim was still held
            (and the outcome recorded), or failing as the store's call
            failed; the caller may try again (an error part-way through a
            call leaves the outcomes before it recorded: the caller learns
            whether its own was from the store).
        """
        d: Deferred[bool] = Deferred()
        self._waiting.append((outcome, alone, d))
        self._send()
        return d

    def _send(self) -> None:
        if self._sending or not self._waiting:
            return
        size = 1
        if not self._waiting[0][1]:
            while size < min(MOST_AT_ONCE, len(self._waiting)) and not self._waiting[size][1]:
                size += 1
        batch, self._waiting = self._waiting[:size], self._waiting[size:]
        self._sending = True

        def answered(held: list[bool]) -> None:
            if len(held) != len(batch):
                failed(Failure(ValueError(f"{len(held)} answers to {len(batch)} outcomes")))
                return
            self._sending = False
            for (*ignored, d), one in zip(batch, held):
                d.callback(one)
            self._send()

        def failed(failure: Failure) -> None:
            self._sending = False
            for *ignored, d in batch:
                d.errback(failure)
            self._send()

        outcomes = [outcome for outcome, *ignored in batch]
        maybeDeferred(self.store.finish_many, outcomes).addCallbacks(answered, failed)
