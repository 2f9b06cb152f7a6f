"""
Hashing and judging an answer's bytes as they arrive.

Both cost the reactor's thread about 0.9 ms per MB (0.7 s of the 2.0 s
that four 200 MB answers took), and both run in C, letting go of the
interpreter's lock: so past its first megabyte an answer is followed in a
thread, a megabyte at a time, while the reactor's thread receives what
comes next.  A smaller answer is followed on the reactor's thread as it
arrives: handing it over would cost more than it saves.

If the thread falls behind (a source faster than hashing, on a busy
machine), the bytes held for it (the batch it follows and those waiting)
are dropped once they pass L{BEHIND}, rather than kept without bound, and
the whole file is judged once it is written (see L{judge_file}).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from harbour.oasis import classify as verdicts
from harbour.oasis.streaming import ZipStream
from harbour.services.files import InThread

#: An answer is followed on the reactor's thread up to this many bytes,
#: then handed over in batches of about this size.
BATCH = 1 << 20
#: The most bytes an answer holds for the thread (the batch it follows and
#: those waiting): past it, the file is judged once written.
BEHIND = 4 * BATCH


@attr.s(auto_attribs=True, frozen=True)
class Judged:
    """
    What an answer is.

    @ivar sha256: Its hash, in hex.
    @ivar verdict: What it means, or L{None} if it must be classified from
        its file.
    """

    sha256: str
    verdict: verdicts.Verdict | None


def judge_file(path: Path) -> Judged:
    """
    In a thread: hash and classify a whole file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(BATCH), b""):
            digest.update(chunk)
    return Judged(digest.hexdigest(), verdicts.classify(path))


@attr.s(eq=False)
class AnswerCheck:
    """
    Follows one answer's bytes (see the module's docstring): feed it every
    byte in order with L{feed}, then ask L{finish} what the answer is.

    @ivar in_thread: Runs a function in a thread.
    @ivar batch: See L{BATCH}.
    @ivar behind: See L{BEHIND}.
    """

    in_thread: InThread = attr.ib()
    batch: int = attr.ib(default=BATCH)
    behind: int = attr.ib(default=BEHIND)
    _digest: hashlib._Hash = attr.ib(factory=hashlib.sha256, init=False)
    _stream: ZipStream = attr.ib(factory=ZipStream, init=False)
    _fed: int = attr.ib(default=0, init=False)
    _waiting: list[bytes] = attr.ib(factory=list, init=False)
    _waiting_bytes: int = attr.ib(default=0, init=False)
    # The batch in a thread now, if any, and its size.
    _running: Deferred[None] | None = attr.ib(default=None, init=False)
    _running_bytes: int = attr.ib(default=0, init=False)
    _dropped: bool = attr.ib(default=False, init=False)

    def feed(self, data: bytes) -> None:
        """
        Follow the answer's next bytes.
        """
        if self._dropped:
            return
        self._fed += len(data)
        if self._fed <= self.batch:
            self._follow([data])
            return
        self._waiting.append(data)
        self._waiting_bytes += len(data)
        if self._waiting_bytes + self._running_bytes > self.behind:
            self.abandon()
        elif self._running is None and self._waiting_bytes >= self.batch:
            self._hand_over()

    def _follow(self, chunks: Sequence[bytes]) -> None:
        # On either thread, never on both at once: a batch runs alone.
        for chunk in chunks:
            self._digest.update(chunk)
            self._stream.feed(chunk)

    def abandon(self) -> None:
        """
        Follow no more (the download failed, or the thread fell behind):
        drop what waits, and hand nothing more over.
        """
        self._dropped = True
        self._waiting = []
        self._waiting_bytes = 0

    def _hand_over(self) -> None:
        chunks, self._running_bytes = self._waiting, self._waiting_bytes
        self._waiting, self._waiting_bytes = [], 0
        running = self._running = self.in_thread(self._follow, chunks)
        running.addBoth(self._handed_back)

    def _handed_back(self, result: None | Failure) -> None:
        self._running = None
        self._running_bytes = 0
        if isinstance(result, Failure):
            # Nothing the hash or the stream does raises; were it to,
            # the file is judged whole.
            self.abandon()
        elif self._waiting_bytes >= self.batch and not self._dropped:
            self._hand_over()

    def finish(self) -> Deferred[Judged | None]:
        """
        Every byte has been fed.

        @return: A L{Deferred} firing with what the answer is, or with
            L{None} if the file must be judged whole (L{judge_file}).
        """
        if self._running is not None:
            d: Deferred[Judged | None] = Deferred()

            def again(ignored: object) -> None:
                self.finish().chainDeferred(d)

            self._running.addBoth(again)
            return d
        if self._dropped:
            return succeed(None)
        chunks, self._waiting, self._waiting_bytes = self._waiting, [], 0
        self._follow(chunks)
        return succeed(Judged(self._digest.hexdigest(), self._stream.verdict()))
