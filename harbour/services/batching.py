"""
Requests sent one call at a time, those made meanwhile together.

Workers that finish in the same turn of the reactor each ask the store (or
a thread) for something at once.  One call is under way at a time: the
requests made meanwhile wait, and go together in the next, so busy workers
send a few calls per round instead of one each, and an idle worker's
request goes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import attr
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

_Request = TypeVar("_Request")
_Answer = TypeVar("_Answer")

#: A key for requests that may each go with any other of the same key.
TOGETHER = "together"


@attr.s(eq=False)
class Batches(Generic[_Request, _Answer]):
    """
    Sends requests in batches, one call under way at a time, in the order
    they were made: the first request waiting goes with those right after
    it that share its key, at most C{most} of them.

    @ivar call: Sends a batch; it fires with one answer per request, in
        order.
    @ivar most: The most requests in one call: a script runs alone in
        Redis, so a long one would hold every other client back, and every
        request of a long call waits for its last.
    @ivar unwanted: Called with the answer to a request whose L{Deferred}
        was cancelled while its call was under way (one cancelled while
        it waits is never sent); what it raises is logged.
    """

    log = Logger()

    call: Callable[[list[_Request]], Deferred[list[_Answer]]] = attr.ib()
    most: int = attr.ib()
    unwanted: Callable[[_Answer], object] = attr.ib(default=lambda answer: None)
    # Each request waiting, its key, and who waits for it.
    _waiting: list[tuple[_Request, Hashable, Deferred[_Answer]]] = attr.ib(factory=list, init=False)
    _sending: bool = attr.ib(default=False, init=False)

    def ask(self, request: _Request, key: Hashable) -> Deferred[_Answer]:
        """
        Send C{request} with the next call.

        @param key: It goes only with requests of an equal key; L{None}
            sends it in a call of its own.
        @return: A L{Deferred} firing with its answer, or failing as the
            call failed (a reply with another number of answers than
            requests fails with L{ValueError}).  Cancelled, it fails with
            L{CancelledError} at once, and its answer, if its call is under
            way, goes to L{unwanted}.
        """

        def cancel(d: Deferred[_Answer]) -> None:
            for index, (*ignored, waiting) in enumerate(self._waiting):
                if waiting is d:
                    del self._waiting[index]
                    return

        d: Deferred[_Answer] = Deferred(cancel)
        self._waiting.append((request, key, d))
        self._send()
        return d

    def _send(self) -> None:
        if self._sending or not self._waiting:
            return
        key = self._waiting[0][1]
        size = 1
        if key is not None:
            while size < min(self.most, len(self._waiting)) and self._waiting[size][1] == key:
                size += 1
        batch, self._waiting = self._waiting[:size], self._waiting[size:]
        self._sending = True

        def answered(answers: list[_Answer]) -> None:
            if len(answers) != len(batch):
                failed(Failure(ValueError(f"{len(answers)} answers to {len(batch)} requests")))
                return
            self._sending = False
            for (*ignored, d), answer in zip(batch, answers):
                if not d.called:
                    d.callback(answer)
                    continue
                # Cancelled: whatever the hook does, the rest are answered.
                try:
                    self.unwanted(answer)
                except Exception:
                    self.log.failure("cannot dispose of an answer nobody wanted")
            self._send()

        def failed(failure: Failure) -> None:
            self._sending = False
            for *ignored, d in batch:
                if not d.called:
                    d.errback(failure)
            self._send()

        maybeDeferred(self.call, [request for request, *ignored in batch]).addCallbacks(answered, failed)
