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
    _waiting: list[tuple[Outcome, Deferred[bool]]] = attr.ib(factory=list, init=False)
    _sending: bool = attr.ib(default=False, init=False)

    def finish(self, outcome: Outcome) -> Deferred[bool]:
        """
        Record C{outcome} with the next call to the store.

        @return: A L{Deferred} firing with whether its claim was still held
            (and the outcome recorded), or failing as the store's call
            failed (the caller may try again: nothing was recorded, or all
            of that call's outcomes were).
        """
        d: Deferred[bool] = Deferred()
        self._waiting.append((outcome, d))
        self._send()
        return d

    def _send(self) -> None:
        if self._sending or not self._waiting:
            return
        batch, self._waiting = self._waiting[:MOST_AT_ONCE], self._waiting[MOST_AT_ONCE:]
        self._sending = True

        def answered(held: list[bool]) -> None:
            self._sending = False
            for (ignored, d), one in zip(batch, held):
                d.callback(one)
            self._send()

        def failed(failure: Failure) -> None:
            self._sending = False
            for ignored, d in batch:
                d.errback(failure)
            self._send()

        outcomes = [outcome for outcome, ignored in batch]
        maybeDeferred(self.store.finish_many, outcomes).addCallbacks(answered, failed)
