"""
Tests for L{harbour.services.checking}.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis import classify as verdicts
from harbour.services.checking import AnswerCheck, Judged, judge_file


def stored_zip(size: int) -> bytes:
    """
    @return: A zip of one stored member of C{size} random bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("data.csv", os.urandom(size))
    return buffer.getvalue()


def chunks(data: bytes, size: int) -> list[bytes]:
    """
    @return: C{data} in pieces of C{size} bytes.
    """
    return [data[start : start + size] for start in range(0, len(data), size)]


class Threads:
    """
    Stands in for a thread pool: runs each call when the test says.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.calls.append((f, args, d))
        return d

    def run_next(self) -> None:
        """
        Run the oldest call not run yet.
        """
        f, args, d = self.calls.pop(0)
        maybeDeferred(f, *args).chainDeferred(d)


class AnswerCheckTests(SynchronousTestCase):
    """
    L{AnswerCheck} hashes and judges an answer as
    L{harbour.oasis.streaming.ZipStream} and C{sha256} do, on the
    reactor's thread while it is small and in a thread past that.
    """

    def test_smallOnReactor(self) -> None:
        """
        An answer no larger than a batch is followed as it arrives, with
        no thread.
        """
        data = stored_zip(5_000)
        threads = Threads()
        check = AnswerCheck(threads, batch=len(data))
        for piece in chunks(data, 999):
            check.feed(piece)
        judged = self.successResultOf(check.finish())
        self.assertEqual(threads.calls, [])
        assert judged is not None
        self.assertEqual(judged.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual(judged.verdict, verdicts.Verdict(verdicts.DATA, members=("data.csv",)))

    def test_largeInBatches(self) -> None:
        """
        Past its first batch an answer goes to a thread a batch at a time,
        never two at once, in order; what is left at the end is followed
        once the last batch is back.
        """
        data = stored_zip(20_000)
        threads = Threads()
        check = AnswerCheck(threads, batch=4_000, behind=20_000)
        for piece in chunks(data, 1_000)[:12]:
            check.feed(piece)
        self.assertEqual(len(threads.calls), 1)
        for piece in chunks(data, 1_000)[12:]:
            check.feed(piece)
        self.assertEqual(len(threads.calls), 1)
        finished = check.finish()
        self.assertNoResult(finished)
        threads.run_next()
        self.assertNoResult(finished)
        self.assertEqual(len(threads.calls), 1)
        threads.run_next()
        self.assertEqual(threads.calls, [])
        judged = self.successResultOf(finished)
        self.assertEqual(
            judged,
            Judged(hashlib.sha256(data).hexdigest(), verdicts.Verdict(verdicts.DATA, members=("data.csv",))),
        )

    def test_fallenBehind(self) -> None:
        """
        An answer whose bytes wait for the thread past C{behind} stops being
        followed: its file is judged whole instead, as L{judge_file} does.
        """
        data = stored_zip(20_000)
        threads = Threads()
        check = AnswerCheck(threads, batch=2_000, behind=6_000)
        for piece in chunks(data, 1_000):
            check.feed(piece)
        finished = check.finish()
        threads.run_next()
        self.assertIsNone(self.successResultOf(finished))
        self.assertEqual(threads.calls, [])
        path = Path(self.mktemp())
        path.write_bytes(data)
        self.assertEqual(
            judge_file(path),
            Judged(hashlib.sha256(data).hexdigest(), verdicts.Verdict(verdicts.DATA, members=("data.csv",))),
        )

    def test_behindCountsTheRunningBatch(self) -> None:
        """
        The bytes held for the thread count the batch it follows as well as
        those waiting: past C{behind} in all, the answer is dropped.
        """
        threads = Threads()
        check = AnswerCheck(threads, batch=100, behind=250)
        for ignored in range(3):
            check.feed(b"x" * 100)
        self.assertEqual(len(threads.calls), 1)
        check.feed(b"x" * 100)
        threads.run_next()
        self.assertEqual(threads.calls, [])
        self.assertIsNone(self.successResultOf(check.finish()))

    def test_abandoned(self) -> None:
        """
        An abandoned check (its download failed) hands nothing more over,
        even once its running batch is back, and keeps nothing.
        """
        threads = Threads()
        check = AnswerCheck(threads, batch=100, behind=10_000)
        for ignored in range(4):
            check.feed(b"x" * 100)
        self.assertEqual(len(threads.calls), 1)
        check.abandon()
        check.feed(b"x" * 100)
        threads.run_next()
        self.assertEqual(threads.calls, [])
        self.assertIsNone(self.successResultOf(check.finish()))

    def test_threadFailed(self) -> None:
        """
        A batch that fails in its thread leaves the file to be judged whole.
        """
        check = AnswerCheck(lambda f, *args: fail(OSError("no")), batch=10, behind=100)
        for piece in chunks(stored_zip(50), 10):
            check.feed(piece)
        self.assertIsNone(self.successResultOf(check.finish()))

    def test_notZip(self) -> None:
        """
        An answer that is not a zip is judged as the stream judges it,
        whichever thread followed it.
        """
        data = b"<html>" + b"x" * 10_000
        threads = Threads()
        check = AnswerCheck(threads, batch=3_000)
        for piece in chunks(data, 1_000):
            check.feed(piece)
        finished = check.finish()
        while threads.calls:
            threads.run_next()
        judged = self.successResultOf(finished)
        assert judged is not None
        self.assertEqual(judged.sha256, hashlib.sha256(data).hexdigest())
        inline = AnswerCheck(Threads(), batch=len(data))
        inline.feed(data)
        self.assertEqual(judged, self.successResultOf(inline.finish()))


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """
    Answers of every kind a check meets: zips stored or deflated, of one
    member or several, OASIS error documents, cut short, HTML, noise, and
    bombs of members each under the ratio's floor (whose sum may pass it).
    """
    kinds = ["stored", "deflated", "multi", "error", "truncated", "html", "noise", "bombs"]
    kind = draw(st.sampled_from(kinds))
    size = draw(st.integers(0, 30_000))
    noise = draw(st.randoms(use_true_random=False)).randbytes
    buffer = io.BytesIO()
    if kind == "html":
        return b"<html>" + b"y" * size
    if kind == "noise":
        return noise(size)
    method = zipfile.ZIP_STORED if kind in ("stored", "truncated") else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        if kind == "multi":
            for index in range(draw(st.integers(1, 4))):
                archive.writestr(f"m{index}.csv", noise(size // 4))
        elif kind == "bombs":
            for index in range(draw(st.integers(1, 8))):
                archive.writestr(f"z{index}.csv", bytes(draw(st.integers(1 << 17, 1 << 19))))
        elif kind == "error":
            code = draw(st.sampled_from([1000, 1015, 1001, 9999]))
            archive.writestr("e.xml", ERROR % code)
        else:
            archive.writestr(
                "a.csv", noise(size) if method == zipfile.ZIP_STORED else b"1,2,3\n" * (size // 6)
            )
    data = buffer.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data)))]
    return data


ERROR = (
    b'<?xml version="1.0"?><OASISReport xmlns="http://www.caiso.com/soa/OASISReport_v1.xsd">'
    b"<MessagePayload><RTO><ERROR><ERR_CODE>%d</ERR_CODE><ERR_DESC>x</ERR_DESC></ERROR></RTO>"
    b"</MessagePayload></OASISReport>"
)


class AnswerCheckPropertyTests(SynchronousTestCase):
    """
    Whatever the answer, its chunks, its batches and when the thread runs,
    L{AnswerCheck} (with L{judge_file} when it drops) gives the whole file's
    hash and the verdict L{verdicts.classify} gives the file.
    """

    @settings(max_examples=150, deadline=None)
    @given(
        data=answers(),
        cuts=st.lists(st.integers(1, 5000), min_size=1, max_size=40),
        batch=st.integers(1, 8000),
        behind=st.integers(1, 20000),
        schedule=st.lists(st.booleans(), max_size=200),
    )
    def test_asTheWholeFile(
        self, data: bytes, cuts: list[int], batch: int, behind: int, schedule: list[bool]
    ) -> None:
        """
        See the class docstring.
        """
        threads = Threads()
        check = AnswerCheck(threads, batch=batch, behind=behind)
        position, turns = 0, iter(schedule)
        for cut in itertools.cycle(cuts):
            if position >= len(data):
                break
            check.feed(data[position : position + cut])
            position += cut
            turn = next(turns, False)
            if turn and threads.calls:
                threads.run_next()
        finished = check.finish()
        while threads.calls:
            threads.run_next()
        judged = self.successResultOf(finished)
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "answer"
            path.write_bytes(data)
            if judged is None:
                judged = judge_file(path)
            expected = verdicts.classify(path)
            verdict = judged.verdict or expected
        self.assertEqual(judged.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual((verdict.kind, verdict.description), (expected.kind, expected.description))
