"""
Tests for L{harbour.services.publications.LogReader}: the publications log
is parsed in a thread, under the decompression caps of every answer.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.oasis.catalogue import check_request, load_catalogue, warnings
from harbour.oasis.client import OasisClient
from harbour.oasis.publications import LogUnreadable, parse_log, parse_schedule
from harbour.services.publications import MAX_ANSWER, LogReader


class AnsweringClient:
    """
    Answers every C{get} with the same bytes, and records the URLs.
    """

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.urls: list[str] = []

    def get(self, url: str, limit: int, limit_name: str) -> Deferred[bytes]:
        """
        Answer C{url} at once, checking the limit asked for.
        """
        assert limit == MAX_ANSWER, limit
        self.urls.append(url)
        return succeed(self.answer)


def reader(answer: bytes, **settings: Any) -> LogReader:
    """
    @return: A L{LogReader} whose every request is answered with C{answer}.
    """
    client = cast(OasisClient, AnsweringClient(answer))
    return LogReader(client, "http://oasis.test/oasisapi", lambda d: d, **settings)


def bomb() -> bytes:
    """
    @return: A zip whose one member, 20 MB of zeros, deflates about 1,000
        times.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ATL_PUB.csv", bytes(20 << 20))
    return out.getvalue()


class ParsedInThreadTests(SynchronousTestCase):
    """
    Answers go to their parser through C{in_thread}.
    """

    def test_default(self) -> None:
        """
        By default answers are parsed with L{deferToThread}.
        """
        self.assertIs(reader(b"").in_thread, deferToThread)

    def test_parsers(self) -> None:
        """
        The log goes to L{parse_log}, the schedule to L{parse_schedule},
        each through C{in_thread}.
        """
        calls: list[tuple[Callable[[bytes], Any], bytes]] = []

        def in_thread(parse: Callable[[bytes], Any], answer: bytes) -> Deferred[Any]:
            calls.append((parse, answer))
            return succeed([])

        log = reader(b"answer", in_thread=in_thread)
        self.assertEqual(self.successResultOf(log.log(0, 86400)), [])
        self.assertEqual(self.successResultOf(log.schedule(86400)), [])
        self.assertEqual(calls, [(parse_log, b"answer"), (parse_schedule, b"answer")])


class RequestTests(SynchronousTestCase):
    """
    The log and the schedule are asked for as the spec's examples ask.
    """

    def test_asTheSpecAsks(self) -> None:
        """
        Each request is one the spec allows and carries every parameter
        its examples send (C{oasis_section=ALL} for the schedule too),
        which OASIS may refuse it without.  (Its C{market_run_id=ALL}, of
        which the spec's examples show only C{DAM}, is another matter.)
        """
        log = reader(b"", in_thread=lambda parse, answer: succeed([]))
        log.log(0, 86400)
        log.schedule(86400)
        client = cast(AnsweringClient, log.client)
        for url in client.urls:
            params = dict(parse_qsl(urlsplit(url).query))
            entry = load_catalogue().entry(queryname=params["queryname"])
            assert entry is not None
            window = {"queryname", "startdatetime", "enddatetime"}
            given = {name: value for name, value in params.items() if name not in window}
            left_out = [warning for warning in warnings(entry, given) if "every example" in warning]
            self.assertEqual((check_request(entry, None, given), left_out), ([], []), url)
        schedule = dict(parse_qsl(urlsplit(client.urls[1]).query))
        self.assertEqual(
            (schedule["queryname"], schedule["oasis_section"], schedule["publication_type"]),
            ("ATL_PUB_SCHED", "ALL", "ALL"),
        )


class BombTests(TestCase):
    """
    A zip bomb in place of the log is refused, in a thread.
    """

    async def test_bomb(self) -> None:
        """
        The read fails with L{LogUnreadable}, saying the member inflates
        beyond the caps, and the parsing ran off the reactor's thread.
        """
        threads: list[threading.Thread] = []

        def parse(answer: bytes) -> object:
            threads.append(threading.current_thread())
            return parse_log(answer)

        def in_thread(parser: Callable[[bytes], Any], answer: bytes) -> Deferred[Any]:
            self.assertIs(parser, parse_log)
            return deferToThread(parse, answer)

        with self.assertRaises(LogUnreadable) as caught:
            await reader(bomb(), in_thread=in_thread).log(0, 86400)
        self.assertIn("member ATL_PUB.csv inflates beyond", str(caught.exception))
        self.assertNotEqual(threads, [threading.main_thread()])
        self.assertEqual(len(threads), 1)

    async def test_bombByDefault(self) -> None:
        """
        With the default C{in_thread} a bomb is refused just the same.
        """
        with self.assertRaises(LogUnreadable):
            await reader(bomb()).log(0, 86400)
