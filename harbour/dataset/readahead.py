"""
Parsing and writing at once: a source of record batches drained by a
thread of its own, a few batches ahead of its consumer.

pyarrow's CSV reader and Parquet writer both release the GIL, so a parse
in one thread and the writing of its batches in another keep two cores
busy where one loop would keep one; the bounded queue keeps no more than a
few batches in memory.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Generic, TypeVar

import attr

T = TypeVar("T")


@attr.s(frozen=True, slots=True, auto_attribs=True)
class _Failed:
    """
    The source raised C{error}: the consumer raises it in turn.
    """

    error: BaseException


@attr.s(frozen=True, slots=True, auto_attribs=True)
class _Ended:
    """
    The source has no more items.
    """


@attr.s(slots=True, auto_attribs=True)
class _Producer(Generic[T]):
    """
    The thread's side: move the source's items into C{ready} until the
    source ends, fails, or C{stop} is set.
    """

    source: Iterator[T]
    ready: queue.Queue[T | _Failed | _Ended]
    stop: threading.Event

    def run(self) -> None:
        """
        Drain the source, then close it, in this thread: a generator is
        closed by the thread that runs it.
        """
        try:
            for item in self.source:
                self.ready.put(item)
                if self.stop.is_set():
                    return
        except BaseException as e:
            if not self.stop.is_set():
                self.ready.put(_Failed(e))
        else:
            if not self.stop.is_set():
                self.ready.put(_Ended())
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()


def read_ahead(source: Iterator[T], depth: int) -> Generator[T, None, None]:
    """
    @param source: Items, each made by work that releases the GIL.
    @param depth: How many items may wait, made but not yet taken.
    @return: The items of C{source}, in order, made in a thread of their
        own.  Closing it early (or raising in its consumer) stops the
        thread after at most one more item and waits for it, so that the
        source is closed when it returns.
    @raise BaseException: Whatever C{source} raised, once the items before
        it were taken.
    """
    if depth < 1:
        raise ValueError(f"a read-ahead of {depth} items holds nothing")
    ready: queue.Queue[T | _Failed | _Ended] = queue.Queue(depth)
    stop = threading.Event()
    producer = _Producer(source, ready, stop)
    thread = threading.Thread(target=producer.run, name="harbour-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Ended):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        # Room for the producer's pending put, so that it sees stop.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()
