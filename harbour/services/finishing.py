"""
The ends of claims, recorded in the store a batch at a time.

A group commit makes several files durable at once, and their attempts
then record their outcomes in the same turn of the reactor: they go
together (L{harbour.interfaces.ITaskStore.finish_many}, through
L{harbour.services.batching.Batches}).
"""

from __future__ import annotations

import attr
from twisted.internet.defer import Deferred

from harbour.interfaces import ITaskStore
from harbour.services.batching import TOGETHER, Batches
from harbour.store.tasks import Outcome

#: The most outcomes sent in one call.
MOST_AT_ONCE = 100


@attr.s(eq=False)
class Finishes:
    """
    Records outcomes in batches.

    @ivar store: Where they are recorded.
    """

    store: ITaskStore = attr.ib()
    _batches: Batches[Outcome, bool] = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._batches = Batches(self.store.finish_many, MOST_AT_ONCE)

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
        return self._batches.ask(outcome, None if alone else TOGETHER)
