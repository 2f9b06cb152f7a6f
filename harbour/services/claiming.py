"""
Claims asked of the store a batch at a time.

Workers that finish downloads in the same turn of the reactor each ask for
their next task at once: the claims go together
(L{harbour.interfaces.ITaskStore.claim_many}, through
L{harbour.services.batching.Batches}).  A call never asks for more tasks
than it has waiters, and a task claimed for a waiter that gave up meanwhile
is given back at once.  (A task whose claim's answer is lost, as any
claim's can be, is given back by the next claim: see
L{harbour.store.unclaiming}.)
"""

from __future__ import annotations

import attr
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.interfaces import ITaskStore
from harbour.services.batching import Batches
from harbour.store.tasks import Task

#: The most claims asked in one call.
MOST_AT_ONCE = 100


@attr.s(eq=False)
class Claims:
    """
    Claims tasks in batches.

    @ivar store: Where they are claimed.
    """

    log = Logger()

    store: ITaskStore = attr.ib()
    _batches: Batches[tuple[str, float], Task | None] = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        self._batches = Batches(self._claim_many, MOST_AT_ONCE, self._give_back)

    def claim(self, owner: str, lease_seconds: float) -> Deferred[Task | None]:
        """
        Claim the most urgent due task for C{owner}, under a lease of
        C{lease_seconds}, with the next call to the store.

        @return: A L{Deferred} firing with the task, or L{None} if none was
            due, or failing as the store's call failed.  Cancel it to give
            up the claim.
        """
        # Only claims for the same owner and lease go together: each
        # worker trusts the lease it asked for.
        return self._batches.ask((owner, lease_seconds), (owner, lease_seconds))

    def _claim_many(self, claims: list[tuple[str, float]]) -> Deferred[list[Task | None]]:
        """
        Ask for C{claims}, all for one owner and lease, in one call.

        @return: A L{Deferred} firing with a task or L{None} for each.
        """
        owner, lease_seconds = claims[0]

        def spread(claimed: list[Task]) -> list[Task | None]:
            if len(claimed) > len(claims):
                raise ValueError(f"{len(claimed)} tasks for {len(claims)} claims")
            return [*claimed, *[None] * (len(claims) - len(claimed))]

        return self.store.claim_many(owner, lease_seconds, len(claims)).addCallback(spread)

    def _give_back(self, task: Task | None) -> None:
        """
        Give back C{task}, claimed for a waiter that gave up: due at once,
        its attempt not counted.
        """
        if task is None:
            return

        def failed(failure: Failure) -> None:
            # Its lease runs out, and it comes back then.
            self.log.failure("cannot give back {url}", failure, url=task.url, service="download")

        release = self.store.release
        maybeDeferred(release, task.id, task.owner, 0.0, counted=False, token=task.claim).addErrback(failed)
