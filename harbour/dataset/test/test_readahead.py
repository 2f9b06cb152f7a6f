"""
Tests of L{harbour.dataset.readahead}: a source drained in a thread of its
own gives its items in order, passes its failure on, and is closed however
its consumer stops.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from twisted.trial.unittest import SynchronousTestCase

from harbour.dataset.readahead import read_ahead


class SourceFailed(Exception):
    """
    The failure of a test's source.
    """


class RecordedSource:
    """
    A generator's stand-in that records the thread that runs it and
    whether it was closed.

    @ivar threads: The name of the thread that made each item.
    """

    def __init__(self, items: int, fail_after: int | None = None) -> None:
        self._items = iter(range(items))
        self._fail_after = fail_after
        self._made = 0
        self.threads: list[str] = []
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        if self._fail_after is not None and self._made == self._fail_after:
            raise SourceFailed("the source broke")
        item = next(self._items)
        self._made += 1
        self.threads.append(threading.current_thread().name)
        return item

    def close(self) -> None:
        """
        Record that the source was closed.
        """
        self.closed = True


class ReadAheadTests(SynchronousTestCase):
    """
    L{read_ahead}.
    """

    def test_in_order(self) -> None:
        """
        Every item comes, in the source's order, made in another thread,
        and the source is closed at its end.
        """
        source = RecordedSource(50)
        self.assertEqual(list(read_ahead(source, 2)), list(range(50)))
        self.assertNotIn(threading.current_thread().name, source.threads)
        self.assertTrue(source.closed)

    def test_failure(self) -> None:
        """
        The source's exception is raised to the consumer after the items
        made before it.
        """
        source = RecordedSource(50, fail_after=3)
        taken = []
        with self.assertRaises(SourceFailed):
            for item in read_ahead(source, 2):
                taken.append(item)
        self.assertEqual(taken, [0, 1, 2])
        self.assertTrue(source.closed)

    def test_consumer_stops(self) -> None:
        """
        A consumer that stops early (here by raising) stops the thread:
        the source is closed by the time the consumer's exception leaves,
        and little more than the read-ahead was made.
        """
        source = RecordedSource(1_000)
        with self.assertRaises(SourceFailed):
            for item in read_ahead(source, 2):
                if item == 5:
                    raise SourceFailed("the consumer broke")
        self.assertTrue(source.closed)
        self.assertLessEqual(len(source.threads), 5 + 1 + 2 + 1)

    def test_empty(self) -> None:
        """
        An empty source gives nothing and is closed.
        """
        source = RecordedSource(0)
        self.assertEqual(list(read_ahead(source, 1)), [])
        self.assertTrue(source.closed)

    def test_no_depth(self) -> None:
        """
        A read-ahead of no item is refused.
        """
        with self.assertRaises(ValueError):
            list(read_ahead(iter([1]), 0))
