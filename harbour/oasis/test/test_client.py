"""
Tests for L{harbour.oasis.client}: how the one client to OASIS meets
OASIS's throttle, as recorded (HTTP 429, an HTML page, no C{Retry-After}),
over L{treq.testing.StubTreq} on a L{Clock} and over real HTTP on
127.0.0.1; and that a download throttled so waits as long as it was asked.
"""

from __future__ import annotations

import datetime
import gc
import random
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import attr
from treq.testing import StubTreq
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred, succeed
from twisted.internet.error import ConnectingCancelledError, ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web._newclient import HTTP11ClientProtocol
from twisted.web._newclient import Request as ClientRequest
from twisted.web.client import (
    URI,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import _DataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IAgentEndpointFactory, IBodyProducer, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from harbour.bus import Bus
from harbour.config.schema import DownloadTopic, ManifestTopic, ReportTopic, WorkTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import ILimiter
from harbour.oasis.classify import THROTTLE_PAUSE_MOST
from harbour.oasis.client import (
    CROSSED_WITHIN,
    KEPT_ENDPOINTS,
    MAX_HEAD_BYTES,
    READ_SIZE,
    UNHELD_FOR,
    AttemptFailed,
    DirectClient,
    HeadApart,
    InsecureRedirect,
    KeptAliveClosed,
    OasisClient,
    PermanentFailure,
    QuietPool,
    ReusedEndpoints,
    Transfer,
    cancelled,
    closed_before_answer,
    described,
)
from harbour.oasis.requests import report_urls
from harbour.services.activity import DownloadActivity
from harbour.services.attempt import Attempts
from harbour.services.commit import GroupCommit
from harbour.store.memory import MemoryTaskStore
from harbour.store.politeness import MemoryLimiter
from harbour.store.tasks import PENDING, Task
from harbour.test.helpers import capture_log

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
#: The page OASIS sends with its 429, as recorded.
PAGE = (SAMPLES / "http_429_acceptable_use_policy.html").read_bytes()
URL = "http://oasis.test/oasisapi/SingleZip?queryname=PRC_LMP"
#: A present-day POSIX time for the clocks (2025-03-10 13:00 in California).
NOW = datetime.datetime(2025, 3, 10, 20, 0, tzinfo=datetime.UTC).timestamp()


@attr.s(auto_attribs=True)
class Answer:
    """
    One answer of L{Scripted}.

    @ivar headers: Sent as given; none is added.
    @ivar finish: Whether the body ends; if not, it is left open.
    """

    code: int
    body: bytes
    headers: dict[bytes, bytes] = attr.ib(factory=dict)
    finish: bool = True


def throttled(page: bytes = PAGE, retry_after: bytes | None = None) -> Answer:
    """
    @return: OASIS's throttle as recorded: 429, C{text/html}, the page,
        and (unless given) no C{Retry-After}.
    """
    headers = {b"content-type": b"text/html"}
    if retry_after is not None:
        headers[b"retry-after"] = retry_after
    return Answer(429, page, headers)


class Scripted(Resource):
    """
    Answers each request with the next of its answers, then with a 200.

    @ivar times: When each request came, by the clock given.
    """

    isLeaf = True

    def __init__(self, clock: Clock | None, *answers: Answer) -> None:
        super().__init__()
        self.clock = clock
        self.answers = list(answers)
        self.times: list[float] = []

    def render_GET(self, request: Request) -> bytes | int:
        """
        Send the next answer.
        """
        self.times.append(self.clock.seconds() if self.clock is not None else 0.0)
        answer = self.answers.pop(0) if self.answers else Answer(200, b"PK data")
        request.setResponseCode(answer.code)
        for name, value in answer.headers.items():
            request.setHeader(name, value)
        if answer.finish:
            return answer.body
        request.write(answer.body)
        return NOT_DONE_YET


class Unanswered(Resource):
    """
    Leaves each request unanswered until told what to answer.

    @ivar times: When each request came, by the clock given.
    """

    isLeaf = True

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[float] = []
        self._waiting: list[Request] = []

    def render_GET(self, request: Request) -> int:
        """
        Keep the request for L{answer}.
        """
        self.times.append(self.clock.seconds())
        self._waiting.append(request)
        return NOT_DONE_YET

    def answer(self, answer: Answer) -> None:
        """
        Answer every request waiting with C{answer}.
        """
        waiting, self._waiting = self._waiting, []
        for request in waiting:
            request.setResponseCode(answer.code)
            for name, value in answer.headers.items():
                request.setHeader(name, value)
            request.write(answer.body)
            request.finish()


class ThrottleTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} turns OASIS's throttle into an L{AttemptFailed}
    carrying the wait it asks for, and holds the host's politeness slot back
    by as much.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)

    def client(self, resource: Resource, interval: float = 0.0) -> tuple[OasisClient, StubTreq]:
        """
        @return: A client of C{resource} over L{StubTreq} on C{self.clock},
            spacing request starts by C{interval}, and the stub.
        """
        stub = StubTreq(resource)
        settings = DownloadTopic(min_request_interval=interval, idle_timeout=30)
        return OasisClient(self.clock, MemoryLimiter(self.clock), settings, http=stub), stub

    def fetch(self, client: OasisClient, stub: StubTreq, url: str = URL) -> tuple[Transfer, Deferred[bytes]]:
        """
        Start a fetch of C{url} and serve what the stub has.

        @return: Its transfer, and a L{Deferred} of its body.
        """
        transfer = Transfer(url)
        chunks: list[bytes] = []
        d = client.fetch(transfer, chunks.append)
        stub.flush()
        return transfer, d.addCallback(lambda size: b"".join(chunks))

    def refusal(self, d: Deferred[Any]) -> AttemptFailed:
        """
        @return: The L{AttemptFailed} C{d} failed with.
        """
        failure = self.failureResultOf(d, AttemptFailed)
        assert isinstance(failure.value, AttemptFailed)
        return failure.value

    def reserved(self, interval: float) -> list[tuple[str, float]]:
        """
        Fetch L{URL} under a rule of C{interval}.

        @return: The slots the limiter was asked for.
        """
        client, stub = self.client(Scripted(self.clock, Answer(200, b"PK whole")), interval)
        reserve = client.limiter.reserve
        reserved: list[tuple[str, float]] = []

        def spied(host: str, interval: float) -> Deferred[float]:
            reserved.append((host, interval))
            return reserve(host, interval)

        self.patch(client.limiter, "reserve", spied)
        transfer, d = self.fetch(client, stub)
        self.assertEqual(self.successResultOf(d), b"PK whole")
        return reserved

    def test_noRuleNoSlot(self) -> None:
        """
        Where there is no rule (an interval of 0) the limiter is not asked
        for a slot; under a rule it is asked once per request.
        """
        self.assertEqual(self.reserved(0.0), [])
        self.assertEqual(self.reserved(5.0), [("oasis.test:80", 5.0)])

    def test_oneSlotPerServer(self) -> None:
        """
        Every spelling of one server (its name in any case, its default
        port written out or not) shares its politeness slots; another port
        is another server.
        """
        client, stub = self.client(Scripted(self.clock), interval=1.0)
        spellings = [
            "http://oasis.test/oasisapi/SingleZip?a=1",
            "http://OASIS.Test:80/oasisapi/SingleZip?a=2",
            "http://oasis.test:8080/oasisapi/SingleZip?a=3",
        ]
        transfers = [self.fetch(client, stub, url)[0] for url in spellings]
        self.clock.advance(1)
        stub.flush()
        self.assertEqual([t.started for t in transfers], [NOW, NOW + 1, NOW])

    def test_answerNotKept(self) -> None:
        """
        An answer whose bytes cannot be kept (the file they go to fails)
        fails the fetch, however it ends: its bytes are not whole.
        """
        client, stub = self.client(Scripted(self.clock, Answer(200, b"PK whole")))

        def full(data: bytes) -> None:
            raise OSError(28, "No space left on device")

        d = client.fetch(Transfer(URL), full)
        stub.flush()
        failure = self.failureResultOf(d, AttemptFailed)
        self.assertEqual(str(failure.value), "cannot keep the answer: [Errno 28] No space left on device")

    def test_recordedThrottle(self) -> None:
        """
        The recorded answer (429, the HTML page, no C{Retry-After}) fails
        the attempt with the 5 s its page asks for, saying so.
        """
        client, stub = self.client(Scripted(self.clock, throttled()))
        error = self.refusal(self.fetch(client, stub)[1])
        self.assertEqual(error.retry_after, 5.0)
        self.assertEqual(str(error), "HTTP 429: throttled, retry after 5 s")

    def test_pageNamesTheWait(self) -> None:
        """
        The wait is read from the page: a page asking for 30 s gets 30 s.
        """
        page = PAGE.replace(b"after 5 seconds", b"after 30 seconds")
        client, stub = self.client(Scripted(self.clock, throttled(page)))
        self.assertEqual(self.refusal(self.fetch(client, stub)[1]).retry_after, 30.0)

    def test_atLeastFiveSeconds(self) -> None:
        """
        A 429 whose page names no wait, or less than OASIS's 5 s, waits 5 s.
        """
        for page in (b"<html><body>Too many requests</body></html>", b"", PAGE.replace(b"5 sec", b"1 sec")):
            client, stub = self.client(Scripted(self.clock, throttled(page)))
            self.assertEqual(self.refusal(self.fetch(client, stub)[1]).retry_after, 5.0, page)

    def test_retryAfterHeader(self) -> None:
        """
        A 429 with C{Retry-After} waits what the header says.
        """
        client, stub = self.client(Scripted(self.clock, throttled(retry_after=b"12")))
        self.assertEqual(self.refusal(self.fetch(client, stub)[1]).retry_after, 12.0)

    def test_nextSlotHeldBack(self) -> None:
        """
        After the throttle, the next request to the host (of any task or
        worker sharing the limiter) starts only once the 5 s are over,
        although its politeness slot came a second after the throttled one.
        """
        resource = Scripted(self.clock, throttled())
        client, stub = self.client(resource, interval=1.0)
        first, d = self.fetch(client, stub)
        self.refusal(d)
        second, d = self.fetch(client, stub)
        self.clock.advance(4.9)
        stub.flush()
        self.assertEqual((second.started, resource.times), (None, [NOW]))
        self.clock.advance(60)
        stub.flush()
        self.assertEqual(self.successResultOf(d), b"PK data")
        assert second.started is not None
        self.assertEqual(first.started, NOW)
        self.assertGreaterEqual(second.started, NOW + 5)
        self.assertEqual(resource.times, [NOW, second.started])

    def test_heldWithoutRule(self) -> None:
        """
        Where there is no rule (an interval of 0), the throttle still holds
        the host back: the next request starts once its 5 s are over, not
        at once to be throttled in turn.
        """
        resource = Scripted(self.clock, throttled())
        client, stub = self.client(resource)
        self.refusal(self.fetch(client, stub)[1])
        second, d = self.fetch(client, stub)
        self.clock.advance(4.9)
        stub.flush()
        self.assertEqual((second.started, resource.times), (None, [NOW]))
        self.clock.advance(0.1)
        stub.flush()
        self.assertEqual(self.successResultOf(d), b"PK data")
        self.assertEqual(resource.times, [NOW, NOW + 5])

    def test_otherWorkersHoldWithoutRule(self) -> None:
        """
        Where there is no rule, the limiter's word that a host is not held
        is taken for L{UNHELD_FOR} seconds, not asked before every request:
        a hold another worker makes meanwhile is waited for once they are
        over.
        """
        resource = Scripted(self.clock)
        client, stub = self.client(resource)
        confirm = client.limiter.confirm
        asked: list[float] = []

        def spied(host: str, interval: float) -> Deferred[float]:
            asked.append(self.clock.seconds() - NOW)
            return confirm(host, interval)

        self.patch(client.limiter, "confirm", spied)
        self.successResultOf(self.fetch(client, stub)[1])
        self.successResultOf(client.limiter.hold("oasis.test:80", 30.0))
        self.clock.advance(UNHELD_FOR / 2)
        self.successResultOf(self.fetch(client, stub)[1])
        self.clock.advance(UNHELD_FOR / 2)
        transfer, d = self.fetch(client, stub)
        self.assertNoResult(d)
        self.clock.advance(30 - UNHELD_FOR)
        stub.flush()
        self.successResultOf(d)
        self.assertEqual(asked, [0.0, UNHELD_FOR, 30.0])
        self.assertEqual(resource.times, [NOW, NOW + UNHELD_FOR / 2, NOW + 30])

    def test_holdOutlivesLookup(self) -> None:
        """
        Where there is no rule, a lookup the limiter answers "not held"
        after this client's own hold was recorded is not taken past it:
        the next request asks again, and waits for the hold.
        """
        resource = Scripted(self.clock, throttled(retry_after=b"30"))
        client, stub = self.client(resource)
        limiter = client.limiter
        confirm = limiter.confirm
        lookups: list[Deferred[float]] = []

        def answered_later(host: str, interval: float) -> Deferred[float]:
            if len(lookups) == 2:
                return confirm(host, interval)
            lookups.append(Deferred())
            return lookups[-1]

        self.patch(limiter, "confirm", answered_later)
        first = client.fetch(Transfer(URL), lambda data: None)
        late = client.fetch(Transfer(URL), lambda data: None)
        lookups[0].callback(0.0)
        stub.flush()
        self.refusal(first)
        # Answered after the hold was recorded: a word from before it.
        lookups[1].callback(0.0)
        stub.flush()
        self.successResultOf(late)
        transfer, d = self.fetch(client, stub)
        self.assertNoResult(d)
        self.clock.advance(30)
        stub.flush()
        self.successResultOf(d)
        self.assertEqual(resource.times, [NOW, NOW, NOW + 30])

    def test_throttleAfterRedirectHoldsItsHost(self) -> None:
        """
        A 429 from the host a redirect led to holds that host back, not the
        one that redirected: the redirecting host's next request starts on
        its usual slot, the throttling host's only once its wait is over.
        """
        elsewhere = "http://mirror.test/oasisapi/SingleZip?queryname=PRC_LMP"
        moved = Answer(302, b"", {b"location": elsewhere.encode()})
        resource = Scripted(self.clock, moved, throttled(retry_after=b"30"))
        client, stub = self.client(resource, interval=1.0)
        self.assertEqual(self.refusal(self.fetch(client, stub)[1]).retry_after, 30.0)
        here, d = self.fetch(client, stub)
        there, d2 = self.fetch(client, stub, elsewhere)
        self.clock.advance(1)
        stub.flush()
        self.successResultOf(d)
        self.assertEqual((here.started, there.started), (NOW + 1, None))
        self.clock.advance(29)
        stub.flush()
        self.successResultOf(d2)
        self.assertEqual(there.started, NOW + 30)

    def test_slotsHandedOutHeldBack(self) -> None:
        """
        Requests whose slots were reserved before the throttle came (other
        workers, waiting for them) do not start until its 5 s are over
        either, and then one interval apart, not all at once.
        """
        resource = Unanswered(self.clock)
        client, stub = self.client(resource, interval=1.0)
        first = client.fetch(Transfer(URL), lambda data: None)
        waiting = [client.fetch(Transfer(URL), lambda data: None) for i in range(2)]
        stub.flush()
        resource.answer(throttled())
        stub.flush()
        self.refusal(first)
        for ignored in range(10):
            self.clock.advance(1.0)
            stub.flush()
            resource.answer(Answer(200, b"PK data"))
            stub.flush()
        for d in waiting:
            self.successResultOf(d)
        self.assertEqual([t - NOW for t in resource.times], [0.0, 5.0, 6.0])

    def test_otherRefusalsHoldNothing(self) -> None:
        """
        Another status keeps its C{Retry-After} for its own task, and the
        next request starts on its usual slot.
        """
        resource = Scripted(self.clock, Answer(503, b"Service Unavailable", {b"retry-after": b"7"}))
        client, stub = self.client(resource, interval=1.0)
        error = self.refusal(self.fetch(client, stub)[1])
        self.assertEqual((str(error), error.retry_after), ("HTTP 503", 7.0))
        second, d = self.fetch(client, stub)
        self.clock.advance(1)
        stub.flush()
        self.successResultOf(d)
        self.assertEqual(second.started, NOW + 1)

    def test_retryAfterHeldAtMost(self) -> None:
        """
        A C{Retry-After} of days keeps its own task waiting a day at most,
        and every other request to the host at most as long as a page is
        believed for (L{THROTTLE_PAUSE_MOST}): a server's word does not
        hold every worker off OASIS for a day.
        """
        resource = Scripted(self.clock, throttled(retry_after=b"99999999"))
        client, stub = self.client(resource, interval=1.0)
        self.assertEqual(self.refusal(self.fetch(client, stub)[1]).retry_after, 86_400.0)
        second, d = self.fetch(client, stub)
        self.clock.advance(THROTTLE_PAUSE_MOST + 1)
        stub.flush()
        self.successResultOf(d)
        assert second.started is not None
        self.assertLessEqual(second.started, NOW + THROTTLE_PAUSE_MOST + 1)

    def test_pageThatNeverEnds(self) -> None:
        """
        A throttle page that stops mid-way is read for at most
        C{idle_timeout}; what came by then says the wait.
        """
        resource = Scripted(self.clock, attr.evolve(throttled(), finish=False))
        client, stub = self.client(resource)
        transfer, d = self.fetch(client, stub)
        self.assertNoResult(d)
        self.clock.advance(30)
        stub.flush()
        self.assertEqual(self.refusal(d).retry_after, 5.0)


class RealHTTPTests(TestCase):
    """
    The throttle over real HTTP on 127.0.0.1.
    """

    def serve(self, resource: Resource) -> str:
        """
        Serve C{resource} on a free port of 127.0.0.1 until the test ends.

        @return: Its URL.
        """
        from twisted.internet import reactor

        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        return f"http://127.0.0.1:{address.port}/oasisapi/SingleZip?queryname=PRC_LMP"

    def client(self, idle_timeout: float = 60.0) -> OasisClient:
        """
        @param idle_timeout: How long it waits on a silent server.
        @return: A client with pooled connections, closed when the test ends.
        """
        from twisted.internet import reactor

        settings = DownloadTopic(min_request_interval=0, idle_timeout=idle_timeout)
        client = OasisClient(reactor, MemoryLimiter(reactor), settings)
        self.addCleanup(client.close)
        return client

    async def test_recordedAnswer(self) -> None:
        """
        The recorded answer, served by C{twisted.web}, gives 5 s.
        """
        url = self.serve(Scripted(None, throttled()))
        with self.assertRaises(AttemptFailed) as caught:
            await self.client().get(url, 1 << 20, "the cap")
        self.assertEqual(caught.exception.retry_after, 5.0)

    async def test_longPageNotReadThrough(self) -> None:
        """
        A page that goes on and on is read only as far as its start: the
        attempt ends with the wait the start names, without waiting for an
        end that never comes.
        """
        endless = throttled(PAGE + b" " * (1 << 20))
        resource = Scripted(None, attr.evolve(endless, finish=False))
        url = self.serve(resource)
        # No deadline to end it in the test's time: only the cut can.
        with self.assertRaises(AttemptFailed) as caught:
            await self.client(idle_timeout=3600).get(url, 1 << 20, "the cap")
        self.assertEqual(caught.exception.retry_after, 5.0)

    test_longPageNotReadThrough.timeout = 10  # type: ignore[attr-defined]

    async def test_refusedBodyNotRead(self) -> None:
        """
        The body of another refusal (a 503) is not read: its connection is
        closed as the attempt fails, not left reading a body that never
        ends (a server's stream, at the reactor's cost, for ever).
        """
        resource = Scripted(None, Answer(503, b"busy " * 1000, finish=False))
        served: list[Deferred[None]] = []
        render = resource.render_GET

        def watched(request: Request) -> bytes | int:
            served.append(request.notifyFinish())
            return render(request)

        self.patch(resource, "render_GET", watched)
        url = self.serve(resource)
        with self.assertRaises(AttemptFailed) as caught:
            await self.client(idle_timeout=3600).get(url, 1 << 20, "the cap")
        self.assertEqual(str(caught.exception), "HTTP 503")
        [finished] = served
        with self.assertRaises(ConnectionDone):
            await finished

    test_refusedBodyNotRead.timeout = 10  # type: ignore[attr-defined]

    async def test_bodyCutShortSaidPlainly(self) -> None:
        """
        A body that ends short of its C{Content-Length} as the server
        closes the connection fails the attempt in plain words, not in the
        repr of Twisted's list of failures.
        """
        factory = Factory.forProtocol(lambda: CutShort())
        from twisted.internet import reactor

        # Twisted types listenTCP's factory too narrowly for a Factory.
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        with self.assertRaises(AttemptFailed) as caught:
            await self.client().get(f"http://127.0.0.1:{address.port}/", 1 << 20, "the cap")
        self.assertEqual(
            str(caught.exception),
            "connection lost mid-body: Connection was closed cleanly; fewer bytes than its Content-Length",
        )

    test_bodyCutShortSaidPlainly.timeout = 10  # type: ignore[attr-defined]

    async def test_headTooLongSaidPlainly(self) -> None:
        """
        An answer whose head goes on past L{MAX_HEAD_BYTES} fails the
        attempt saying so, not as a connection aborted for no reason.
        """
        factory = Factory.forProtocol(lambda: EndlessHead())
        from twisted.internet import reactor

        # Twisted types listenTCP's factory too narrowly for a Factory.
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        capture_log(self)
        with self.assertRaises(AttemptFailed) as caught:
            await self.client().get(f"http://127.0.0.1:{address.port}/", 1 << 20, "the cap")
        self.assertEqual(
            str(caught.exception), "request failed: the answer's head is longer than 65,536 bytes"
        )

    test_headTooLongSaidPlainly.timeout = 10  # type: ignore[attr-defined]

    async def test_unfollowableRedirectsSaidPlainly(self) -> None:
        """
        A redirect to a scheme that is neither http nor https, or without a
        C{Location}, fails the attempt saying so.
        """
        resource = Scripted(
            None,
            Answer(302, b"", {b"location": b"ftp://oasis.test/a"}),
            Answer(301, b"", {b"location": b"file:///etc/passwd"}),
            Answer(302, b""),
        )
        url = self.serve(resource)
        client = self.client()
        errors = []
        for ignored in range(3):
            with self.assertRaises(AttemptFailed) as caught:
                await client.get(url, 1 << 20, "the cap")
            errors.append(str(caught.exception))
        self.assertEqual(
            errors,
            [
                "request failed: HTTP 302: redirected to ftp://oasis.test/a, which is neither http nor https",
                "request failed: HTTP 301: redirected to file:///etc/passwd, which is neither http nor https",
                "request failed: HTTP 302 without a Location to follow",
            ],
        )

    test_unfollowableRedirectsSaidPlainly.timeout = 10  # type: ignore[attr-defined]

    async def test_redirectLoopSaidPlainly(self) -> None:
        """
        A redirect loop fails the attempt saying where it went round.
        """
        url = self.serve(Loop())
        with self.assertRaises(AttemptFailed) as caught:
            await self.client().get(url, 1 << 20, "the cap")
        self.assertEqual(
            str(caught.exception),
            f"request failed: HTTP 302: more than 20 redirects in a row, the last to {url}",
        )

    test_redirectLoopSaidPlainly.timeout = 10  # type: ignore[attr-defined]


class EndlessHead(Protocol):
    """
    Answers a request with a head whose lines never end.
    """

    def dataReceived(self, data: bytes) -> None:
        """
        Answer, once the request's head is whole.
        """
        if b"\r\n\r\n" in data:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * (MAX_HEAD_BYTES // 4))


class HeldRedirect(Protocol):
    """
    Answers C{/moved} with a 302 to C{/b} whose announced body never
    comes, its connection held open; C{/b} with a small answer.

    @ivar closed: Fires once the connection of a 302 is closed.
    """

    def __init__(self, closed: list[Deferred[None]]) -> None:
        self.closed = closed
        self.ended: Deferred[None] | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Answer, once the request's head is whole.
        """
        if b"\r\n\r\n" not in data:
            return
        assert self.transport is not None
        if data.startswith(b"GET /moved "):
            self.ended = Deferred()
            self.closed.append(self.ended)
            self.transport.write(b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 15\r\n\r\n")
        else:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nPK")

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Say the 302's connection is closed.
        """
        if self.ended is not None:
            self.ended.callback(None)


class CutShort(Protocol):
    """
    Answers a request with a body of 10 bytes where its head announced
    100, and closes the connection.
    """

    def dataReceived(self, data: bytes) -> None:
        """
        Answer, once the request's head is whole.
        """
        if b"\r\n\r\n" in data:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            self.transport.loseConnection()


class Loop(Resource):
    """
    Redirects every request to itself.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        """
        Send a 302 to the same URL.
        """
        request.redirect(request.uri)
        return b""


class Moved(Resource):
    """
    Redirects every request to C{location}.
    """

    isLeaf = True

    def __init__(self, location: bytes = b"/oasisapi/SingleZip?queryname=PRC_LMP") -> None:
        super().__init__()
        self.location = location

    def render_GET(self, request: Request) -> bytes:
        """
        Send a 302 to C{location}.
        """
        request.redirect(self.location)
        return b""


class DirectClientTests(TestCase):
    """
    Tests for L{DirectClient}, the default client's requests.
    """

    def moved(self, location: bytes = b"/oasisapi/SingleZip?queryname=PRC_LMP") -> str:
        """
        Serve, on 127.0.0.1 until the test ends, C{/moved} redirecting to
        C{location}, by default an answer it serves.

        @return: The URL of C{/moved}.
        """
        from twisted.internet import reactor

        root = Resource()
        root.putChild(b"moved", Moved(location))
        api = Resource()
        api.putChild(b"SingleZip", Scripted(None, Answer(200, b"PK moved")))
        root.putChild(b"oasisapi", api)
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        return f"http://127.0.0.1:{address.port}/moved"

    async def test_followsRedirects(self) -> None:
        """
        A redirect is followed, as treq follows it, to the answer.
        """
        from twisted.internet import reactor

        url = self.moved()
        client = OasisClient(reactor, MemoryLimiter(reactor), DownloadTopic(min_request_interval=0))
        self.addCleanup(client.close)
        self.assertEqual(await client.get(url, 1 << 20, "the cap"), b"PK moved")

    async def test_redirectTakesASlot(self) -> None:
        """
        A redirect followed is one more request to its host: it takes a
        politeness slot of its own, as the first request did.
        """
        from twisted.internet import reactor

        url = self.moved()
        reservations: list[tuple[str, float]] = []
        limiter = MemoryLimiter(reactor)

        def reserve(host: str, interval: float) -> Deferred[float]:
            reservations.append((host, interval))
            return limiter.reserve(host, interval)

        limiter_seen = SimpleNamespace(reserve=reserve, confirm=limiter.confirm)
        client = OasisClient(reactor, cast(Any, limiter_seen), DownloadTopic(min_request_interval=0.01))
        self.addCleanup(client.close)
        self.assertEqual(await client.get(url, 1 << 20, "the cap"), b"PK moved")
        self.assertEqual(reservations, [(urlsplit(url).netloc, 0.01)] * 2)

    async def test_redirectBodyDropped(self) -> None:
        """
        A redirect whose body is still to come is followed, and its
        connection closed, not left open, unread, until the cycle
        collector frees it.
        """
        from twisted.internet import reactor

        closed: list[Deferred[None]] = []
        factory = Factory.forProtocol(lambda: HeldRedirect(closed))
        # Twisted types listenTCP's factory too narrowly for a Factory.
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        client = OasisClient(reactor, MemoryLimiter(reactor), DownloadTopic(min_request_interval=0))
        self.addCleanup(client.close)
        self.assertEqual(
            await client.get(f"http://127.0.0.1:{address.port}/moved", 1 << 20, "the cap"), b"PK"
        )
        [ended] = closed
        await ended

    test_redirectBodyDropped.timeout = 10  # type: ignore[attr-defined]

    async def test_throttleAfterRedirectHoldsItsHost(self) -> None:
        """
        Over the default client's connections, a 429 from the host a
        redirect led to (another port here) holds that host back, not the
        one that redirected.
        """
        from twisted.internet import reactor

        # No page: its connection is then whole, and back in the pool for
        # the test's end to close, as the throttle's answer is taken.
        throttling = Site(Scripted(None, throttled(b"", retry_after=b"30")))
        # Twisted types listenTCP's factory too narrowly for a Site.
        port = reactor.listenTCP(0, throttling, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        there = f"127.0.0.1:{address.port}"
        url = self.moved(f"http://{there}/oasisapi/SingleZip?queryname=PRC_LMP".encode())
        limiter = MemoryLimiter(reactor)
        client = OasisClient(reactor, limiter, DownloadTopic(min_request_interval=0.01))
        self.addCleanup(client.close)
        with self.assertRaises(AttemptFailed):
            await client.get(url, 1 << 20, "the cap")
        self.assertEqual(list(limiter._holds), [there])
        self.assertNotEqual(urlsplit(url).netloc, there)


@implementer(IAgentEndpointFactory)
class CountedEndpoints:
    """
    Makes a new (fake) endpoint for every URI, and counts them.
    """

    def __init__(self) -> None:
        self.made: list[bytes] = []

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        """
        @return: A new object standing for an endpoint to C{uri}.
        """
        self.made.append(uri.toBytes())
        return cast(IStreamClientEndpoint, object())


class ReusedEndpointsTests(SynchronousTestCase):
    """
    Tests for L{ReusedEndpoints}.
    """

    def test_one_per_host(self) -> None:
        """
        Requests to one scheme, host and port share one endpoint, whatever
        their paths; another scheme, host or port gets its own.
        """
        made = CountedEndpoints()
        endpoints = ReusedEndpoints(made)
        first = endpoints.endpointForURI(URI.fromBytes(b"http://oasis.example:80/a?x=1"))
        self.assertIs(endpoints.endpointForURI(URI.fromBytes(b"http://oasis.example/b")), first)
        others = [
            endpoints.endpointForURI(URI.fromBytes(url))
            for url in (b"https://oasis.example/a", b"http://mirror.example/a", b"http://oasis.example:81/a")
        ]
        self.assertEqual(len({id(e) for e in [first, *others]}), 4)
        self.assertEqual(len(made.made), 4)

    def test_bounded(self) -> None:
        """
        No more than L{KEPT_ENDPOINTS} are kept: past them, every endpoint
        is made anew.
        """
        made = CountedEndpoints()
        endpoints = ReusedEndpoints(made)
        for port in range(KEPT_ENDPOINTS + 1):
            endpoints.endpointForURI(URI.fromBytes(b"http://h:%d/" % (1000 + port)))
        endpoints.endpointForURI(URI.fromBytes(b"http://h:1000/"))
        self.assertEqual(len(made.made), KEPT_ENDPOINTS + 2)


class Collected(Protocol):
    """
    Keeps a body, and why it ended.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}.
        """
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        Keep C{reason}.
        """
        self.reason = reason


#: Answers read in one or more pieces: a head with its body, a head cut
#: across reads, one cut within its blank line with its whole body after
#: it (the answer ends while the head is parsed), a chunked body, an
#: empty answer with bytes after it, a malformed head.
READS = [
    [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-A: 1\r\n\r\n0123456789"],
    [b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 4\r\n\r", b"\n01", b"23"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r", b"\nab\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", b"cd\r\n0\r\n\r\n"],
    [b"HTTP/1.1 204 No Content\r\n\r\nstray bytes"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\nbody"],
]


def get() -> ClientRequest:
    """
    @return: A GET that leaves its connection open for the next.
    """
    return ClientRequest(b"GET", b"/", Headers({b"host": [b"oasis.example"]}), None, persistent=True)


def exchange(protocol: HTTP11ClientProtocol, reads: list[bytes]) -> tuple[object, ...]:
    """
    Send a GET over C{protocol} and give it C{reads}.

    @return: What came of it: the status and headers (or the failure's
        type, or L{None} if there was no answer yet), the body, why the body ended, the connection's state,
        whether it is being closed, and whether it reads (paused or not).
    """
    transport = StringTransport()
    protocol.makeConnection(transport)
    answered = protocol.request(get())
    for data in reads:
        protocol.dataReceived(data)
    body = Collected()
    head: object
    if not answered.called:
        head = None  # the connection was dropped while the head was read
    elif isinstance(answered.result, Failure):
        head = answered.result.type
        answered.addErrback(lambda failure: None)
    else:
        response = cast(IResponse, answered.result)
        head = (response.code, sorted(response.headers.getAllRawHeaders()))
        response.deliverBody(body)
    reason = None if body.reason is None else body.reason.type
    state = transport.producerState
    return head, b"".join(body.chunks), reason, protocol.state, transport.disconnecting, state


class CountingTransport(StringTransport):
    """
    A transport that counts the pauses it is asked for.
    """

    pauses = 0

    def pauseProducing(self) -> None:
        """
        Count a pause, and pause.
        """
        self.pauses += 1
        super().pauseProducing()


class HeadApartTests(SynchronousTestCase):
    """
    Tests for L{HeadApart}.
    """

    def test_read_size(self) -> None:
        """
        A connection that reads its socket itself reads up to L{READ_SIZE}
        bytes at a time; another transport (TLS, a test's) is left as it is.
        """
        socket = FileDescriptor()
        HeadApart().makeConnection(socket)
        self.assertEqual(socket.bufferSize, READ_SIZE)
        other = StringTransport()
        HeadApart().makeConnection(other)
        self.assertFalse(hasattr(other, "bufferSize"))

    def test_head_too_long(self) -> None:
        """
        An answer whose head goes on past L{MAX_HEAD_BYTES} (Twisted bounds
        each of its lines, not their number) ends its connection at once,
        however it is cut into reads, and says so.
        """
        messages = capture_log(self)
        for read in (1 << 10, 1 << 14):
            protocol = HeadApart()
            transport = StringTransport()
            protocol.makeConnection(transport)
            answered = protocol.request(get())
            head = b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * (MAX_HEAD_BYTES // 8)
            for start in range(0, len(head), read):
                protocol.dataReceived(head[start : start + read])
                if transport.disconnecting:
                    break
            self.assertTrue(transport.disconnecting)
            self.assertLessEqual(start, MAX_HEAD_BYTES)
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(
                described(self.failureResultOf(answered).value),
                "the answer's head is longer than 65,536 bytes",
            )
        self.assertIn(
            "IPv4Address(type='TCP', host='192.168.1.1', port=54321) sent an answer whose head is longer"
            " than 65,536 bytes: connection dropped",
            messages,
        )
        self.assertEqual(
            exchange(HeadApart(), [b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n"])[4], False
        )

    def test_head_cut_anywhere(self) -> None:
        """
        A head cut into two reads at any point, its blank line included,
        with a body longer than L{MAX_HEAD_BYTES} read after it, is
        counted only up to its blank line: the whole body arrives, and the
        connection is kept, as over Twisted's own connection.  So is a head
        whose lines end in LF alone, as Twisted's parser takes them.
        """
        body = b"x" * MAX_HEAD_BYTES
        for line_end in (b"\r\n", b"\n"):
            head = line_end.join([b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), b"", b""])
            answer = head + body
            for cut in range(1, len(head) + 1):
                reads = [answer[:cut], answer[cut:]]
                ended = exchange(HeadApart(), reads)
                self.assertEqual(ended, exchange(HTTP11ClientProtocol(), reads), (line_end, cut))
                self.assertEqual((ended[1], ended[4]), (body, False), (line_end, cut))

    def test_head_alone(self) -> None:
        """
        The parser is given an answer's head alone, then the body bytes
        read with it.
        """
        protocol = HeadApart()
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.request(get())
        given: list[bytes] = []
        parser = protocol._parser
        assert parser is not None
        parse = parser.dataReceived

        def spied(data: bytes) -> None:
            given.append(data)
            parse(data)

        self.patch(parser, "dataReceived", spied)
        protocol.dataReceived(READS[0][0])
        self.assertEqual(given, [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-A: 1\r\n\r\n", b"0123456789"])

    def test_in_order(self) -> None:
        """
        Bytes read while a head is parsed (a read that the head's parsing
        caused) reach the parser after those read with the head.
        """
        protocol = HeadApart()
        protocol.makeConnection(StringTransport())
        answered = protocol.request(get())
        body = Collected()
        answered.addCallback(lambda response: response.deliverBody(body))
        answered.addCallback(lambda ignored: protocol.dataReceived(b"89"))
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234567")
        self.assertEqual(b"".join(body.chunks), b"0123456789")

    def test_no_pause_when_asked_at_once(self) -> None:
        """
        An owner who asks for the body as soon as the head is parsed costs
        the connection no pause (Twisted's own connection pauses and
        resumes).
        """

        def deliver(response: IResponse, body: Collected) -> None:
            response.deliverBody(body)

        for protocol, pauses in ((HeadApart(), 0), (HTTP11ClientProtocol(), 1)):
            transport = CountingTransport()
            protocol.makeConnection(transport)
            body = Collected()
            protocol.request(get()).addCallback(deliver, body)
            protocol.dataReceived(READS[0][0])
            self.assertEqual((transport.pauses, b"".join(body.chunks)), (pauses, b"0123456789"))
            self.assertEqual(transport.producerState, "producing")

    def test_paused_until_asked(self) -> None:
        """
        An owner who asks for the body later finds the connection paused
        until then, as Twisted's own connection leaves it.
        """
        protocol = HeadApart()
        transport = CountingTransport()
        protocol.makeConnection(transport)
        answered = protocol.request(get())
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        self.assertEqual(transport.producerState, "paused")
        body = Collected()
        self.successResultOf(answered).deliverBody(body)
        self.assertEqual(transport.producerState, "producing")
        protocol.dataReceived(b"56789")
        self.assertEqual(b"".join(body.chunks), b"0123456789")

    def test_stopped_while_head_parsed(self) -> None:
        """
        An owner who stops the connection as soon as the head is parsed
        stops it, and no pause is made after.
        """

        def stop(response: IResponse) -> None:
            response.deliverBody(Collected())
            transport.stopProducing()

        protocol = HeadApart()
        transport = CountingTransport()
        protocol.makeConnection(transport)
        protocol.request(get()).addCallback(stop)
        protocol.dataReceived(READS[0][0])
        self.assertEqual((transport.pauses, transport.producerState), (0, "stopped"))

    def test_as_twisted(self) -> None:
        """
        Every answer ends as it does over Twisted's own connection: the
        same head, body and end, and the connection left alike.
        """
        for reads in READS:
            self.assertEqual(exchange(HeadApart(), reads), exchange(HTTP11ClientProtocol(), reads), reads)


class DirectClientTimingTests(SynchronousTestCase):
    """
    Tests for L{DirectClient} with a test's agent and clock.
    """

    def test_timeout(self) -> None:
        """
        No answer within C{timeout} seconds cancels the request.
        """
        clock = Clock()
        agent = Waiting()
        d = DirectClient(clock, agent).get(URL, timeout=5)
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.assertTrue(cancelled(self.failureResultOf(d, ResponseNeverReceived).value))
        self.assertEqual(agent.urls, [URL.encode()])

    def test_answerStopsTheTimer(self) -> None:
        """
        An answer in time leaves no timer behind.
        """
        clock = Clock()
        agent = Waiting()
        d = DirectClient(clock, agent).get(URL, timeout=5)
        answer = SimpleNamespace(code=200)
        agent.pending[0].callback(answer)
        self.assertIs(self.successResultOf(d), answer)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_unicodeURL(self) -> None:
        """
        A URL that is not ASCII is sent encoded, as treq sends it.
        """
        agent = Waiting()
        DirectClient(Clock(), agent).get("http://oasis.test/oasisapi/SingleZip?node=\u00e9")
        self.assertEqual(agent.urls, [b"http://oasis.test/oasisapi/SingleZip?node=%C3%A9"])


class RedirectTests(SynchronousTestCase):
    """
    L{DirectClient} never follows a redirect from https to plain http.
    """

    def redirected(self, start: str, location: bytes) -> tuple[Waiting, Deferred[Any]]:
        """
        Get C{start}, answered by a redirect to C{location}.

        @return: The agent and the L{Deferred} of the answer.
        """
        agent = Waiting()
        d = DirectClient(Clock(), agent).get(start)
        moved = moved_to(location)
        agent.pending[0].callback(moved)
        return agent, d

    def test_httpsToHttpRefused(self) -> None:
        """
        A redirect from https to http fails the request with
        L{InsecureRedirect}, a L{PermanentFailure}, and is not sent.
        """
        agent, d = self.redirected("https://oasis.test/a", b"http://oasis.test/b")
        failure = self.failureResultOf(d, InsecureRedirect)
        self.assertIsInstance(failure.value, PermanentFailure)
        self.assertEqual(str(failure.value), "refused a redirect from https to http://oasis.test/b")
        self.assertEqual(agent.urls, [b"https://oasis.test/a"])

    def test_httpsToHttpsFollowed(self) -> None:
        """
        A redirect from https to https is followed.
        """
        agent, d = self.redirected("https://oasis.test/a", b"https://mirror.test/b")
        self.assertEqual(agent.urls, [b"https://oasis.test/a", b"https://mirror.test/b"])
        self.assertNoResult(d)

    def test_httpToHttpFollowed(self) -> None:
        """
        A request made over plain http follows redirects as before.
        """
        agent, d = self.redirected("http://oasis.test/a", b"http://oasis.test/b")
        self.assertEqual(agent.urls, [b"http://oasis.test/a", b"http://oasis.test/b"])

    def test_redirectBodyDropped(self) -> None:
        """
        The body of a redirect followed is not waited for: its connection
        is stopped once the read that brought the head is handled.  A body
        that ends within that read is read to its end, and its connection
        kept.
        """
        clock = Clock()
        agent = Waiting()
        DirectClient(clock, agent).get("http://oasis.test/a")
        moved = moved_to(b"http://oasis.test/b")
        agent.pending[0].callback(moved)
        self.assertEqual(moved.transport.producerState, "producing")
        clock.advance(0)
        self.assertEqual(moved.transport.producerState, "stopped")
        self.assertEqual(agent.urls, [b"http://oasis.test/a", b"http://oasis.test/b"])
        DirectClient(clock, agent).get("http://oasis.test/a")
        whole = moved_to(b"http://oasis.test/b")
        agent.pending[2].callback(whole)
        whole.send(b"<html>Moved</html>")
        whole.end()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(whole.transport.producerState, "producing")

    def test_redirectWaitsItsTurn(self) -> None:
        """
        Given C{before_redirect}, a redirect is sent only once the
        L{Deferred} it returns for the redirect's URI fires; the first
        request does not wait.
        """
        agent = Waiting()
        asked: list[bytes] = []
        turn: Deferred[None] = Deferred()

        def before(uri: bytes) -> Deferred[None]:
            asked.append(uri)
            return turn

        d = DirectClient(Clock(), agent).get("http://oasis.test/a", before_redirect=before)
        self.assertEqual(agent.urls, [b"http://oasis.test/a"])
        moved = moved_to(b"http://mirror.test/b")
        agent.pending[0].callback(moved)
        self.assertEqual((asked, agent.urls), ([b"http://mirror.test/b"], [b"http://oasis.test/a"]))
        turn.callback(None)
        self.assertEqual(agent.urls, [b"http://oasis.test/a", b"http://mirror.test/b"])
        self.assertNoResult(d)

    def test_redirectSlotWaitNotTimed(self) -> None:
        """
        The wait of a redirect for its slot is not counted against the
        deadline for the answer's headers: a busy host delays the redirect,
        it does not fail it; the deadline starts again once it is sent.
        """
        agent = Waiting()
        clock = Clock()
        limiter = MemoryLimiter(clock)
        for ignored in range(20):
            limiter.reserve("mirror.test:80", 5.0)
        settings = DownloadTopic(min_request_interval=5.0, idle_timeout=60)
        client = OasisClient(clock, limiter, settings, http=DirectClient(clock, agent))
        d = client.fetch(Transfer("http://oasis.test/a"), lambda data: None)
        moved = moved_to(b"http://mirror.test/b")
        agent.pending[0].callback(moved)
        clock.advance(99)
        self.assertNoResult(d)
        clock.advance(1)
        self.assertEqual(agent.urls, [b"http://oasis.test/a", b"http://mirror.test/b"])
        clock.advance(60)
        self.assertEqual(str(self.failureResultOf(d, AttemptFailed).value), "no answer within 60 s")

    def test_fetchFailsForGood(self) -> None:
        """
        A fetch refused so fails with the L{PermanentFailure}, not an
        L{AttemptFailed} to retry.
        """
        agent = Waiting()
        clock = Clock()
        http = DirectClient(clock, agent)
        client = OasisClient(clock, MemoryLimiter(clock), DownloadTopic(idle_timeout=30), http=http)
        d = client.fetch(Transfer("https://oasis.test/a"), lambda data: None)
        moved = moved_to(b"http://oasis.test/b")
        agent.pending[0].callback(moved)
        self.failureResultOf(d, InsecureRedirect)


class HeaderTimeoutTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} says when an answer's headers never came.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Waiting()
        settings = DownloadTopic(idle_timeout=30)
        http = DirectClient(self.clock, self.agent)
        self.client = OasisClient(self.clock, MemoryLimiter(self.clock), settings, http=http)

    def test_noAnswerInTime(self) -> None:
        """
        No headers within C{idle_timeout} fail the attempt, worth retrying,
        with an error that says so (not a bare cancellation).
        """
        d = self.client.fetch(Transfer(URL), lambda data: None)
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        failure = self.failureResultOf(d, AttemptFailed)
        self.assertEqual(str(failure.value), "no answer within 30 s")

    def test_stopStillCancels(self) -> None:
        """
        A fetch cancelled (harbour stopping) fails with L{CancelledError},
        and leaves no timer behind.
        """
        d = self.client.fetch(Transfer(URL), lambda data: None)
        self.assertNoResult(d)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DescribedTests(SynchronousTestCase):
    """
    L{described} words an error for C{last_error}.
    """

    def test_wrapped(self) -> None:
        """
        Twisted's wrappers are told by the words of the failures they
        wrap, each once, however deep; an error without words by what it
        means.
        """
        lost = ResponseFailed([Failure(ConnectionDone()), Failure(_DataLoss())])
        self.assertEqual(
            described(lost), "Connection was closed cleanly; fewer bytes than its Content-Length"
        )
        twice = ResponseNeverReceived([Failure(lost), Failure(ConnectionDone())])
        self.assertEqual(
            described(twice), "Connection was closed cleanly; fewer bytes than its Content-Length"
        )
        self.assertEqual(described(ResponseFailed([])), "ResponseFailed")

    def test_plain(self) -> None:
        """
        Any other error is told by its own words, or its name if it has
        none.
        """
        self.assertEqual(described(ValueError("bad value.")), "bad value")
        self.assertEqual(described(CancelledError()), "CancelledError")

    def test_bodyLost(self) -> None:
        """
        A body lost mid-way fails its fetch in those words.
        """
        clock = Clock()
        agent = Waiting()
        client = OasisClient(clock, MemoryLimiter(clock), DownloadTopic(), http=DirectClient(clock, agent))
        fetched = client.fetch(Transfer(URL), lambda data: None)
        answer = PieceByPiece()
        agent.pending[0].callback(answer)
        answer.send(b"abc")
        assert answer.body is not None
        answer.body.connectionLost(Failure(ResponseFailed([Failure(ConnectionLost()), Failure(_DataLoss())])))
        self.assertEqual(
            str(self.failureResultOf(fetched, AttemptFailed).value),
            "connection lost mid-body: Connection to the other side was lost in a non-clean fashion;"
            " fewer bytes than its Content-Length",
        )


class CancelledTests(SynchronousTestCase):
    """
    L{cancelled} knows a cancelled request however Twisted reports it.
    """

    def test_cancelled(self) -> None:
        """
        A bare L{CancelledError}, a cancelled connect, and a
        L{CancelledError} among the reasons of Twisted's wrappers (nested
        too) are a cancellation.
        """
        reason = Failure(CancelledError())
        for error in [
            CancelledError(),
            ConnectingCancelledError(IPv4Address("TCP", "127.0.0.1", 80)),
            ResponseNeverReceived([reason]),
            RequestTransmissionFailed([reason]),
            ResponseFailed([Failure(ConnectionDone()), Failure(ResponseNeverReceived([reason]))]),
        ]:
            self.assertTrue(cancelled(error), error)

    def test_notCancelled(self) -> None:
        """
        Any other failure, wrapped or not, is no cancellation.
        """
        for error in [
            ConnectionLost(),
            ResponseNeverReceived([Failure(ConnectionDone())]),
            ResponseFailed([]),
            ValueError("cancelled"),
        ]:
            self.assertFalse(cancelled(error), error)


@attr.s(eq=False)
class PieceByPiece:
    """
    A 200 answer whose body the test gives, piece by piece.
    """

    code: int = 200
    length: int | str = UNKNOWN_LENGTH
    headers: Headers = attr.ib(factory=Headers)
    body: Protocol | None = None
    transport: StringTransport = attr.ib(factory=StringTransport)

    def deliverBody(self, protocol: Protocol) -> None:
        """
        Keep C{protocol}, to give it the body.
        """
        self.body = protocol
        protocol.makeConnection(self.transport)
        stop = self.transport.stopProducing

        def stopProducing() -> None:
            # As Twisted's connections do: the body is lost with them.
            stop()
            protocol.connectionLost(Failure(ConnectionLost()))

        self.transport.stopProducing = stopProducing  # type: ignore[method-assign]

    def send(self, data: bytes) -> None:
        """
        Give the body C{data}.
        """
        assert self.body is not None
        self.body.dataReceived(data)

    def end(self) -> None:
        """
        End the body, whole.
        """
        assert self.body is not None
        self.body.connectionLost(Failure(ResponseDone()))


def moved_to(location: bytes) -> PieceByPiece:
    """
    @return: A 302 answer to C{location}, whose body the test gives.
    """
    answer = PieceByPiece(Headers({b"location": [location]}))
    answer.code = 302
    return answer


class BodyTimeoutTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} ends a body that falls silent, or that takes too
    long in all.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Waiting()
        http = DirectClient(self.clock, self.agent)
        self.client = OasisClient(
            self.clock, MemoryLimiter(self.clock), DownloadTopic(idle_timeout=30), 100.0, http=http
        )
        self.received: list[bytes] = []
        self.fetched = self.client.fetch(Transfer(URL), self.received.append)
        self.answer = PieceByPiece()
        self.agent.pending[0].callback(self.answer)

    def test_silence(self) -> None:
        """
        A body silent for C{idle_timeout} seconds fails the attempt, worth
        retrying; every byte that arrives starts the silence again.
        """
        self.clock.advance(20)
        self.answer.send(b"a")
        self.clock.advance(20)
        self.answer.send(b"b")
        self.clock.advance(29.9)
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        failure = self.failureResultOf(self.fetched, AttemptFailed)
        self.assertEqual(str(failure.value), "no data for 30 s")
        self.assertEqual(self.received, [b"a", b"b"])
        self.assertEqual(self.answer.transport.producerState, "stopped")

    def test_tooLong(self) -> None:
        """
        A body never silent for long, but not whole within the longest a
        request may take, fails the attempt and says so.
        """
        for ignored in range(9):
            self.clock.advance(10)
            self.answer.send(b"x")
        self.clock.advance(9.9)
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        failure = self.failureResultOf(self.fetched, AttemptFailed)
        self.assertEqual(str(failure.value), "request took longer than 100 s")

    def test_wholeBodyFreedAtOnce(self) -> None:
        """
        A body once whole is in no reference cycle: it, and what its bytes
        went to (the answer's file, its check), are freed as soon as
        nothing refers to them, not by the cycle collector some files
        later.
        """
        gc.disable()
        self.addCleanup(gc.enable)
        self.answer.send(b"abc")
        self.answer.end()
        self.successResultOf(self.fetched)
        body = weakref.ref(self.answer.body)
        # What is left of the test's own answer and connection.
        del self.answer.transport.stopProducing
        del self.answer
        self.assertIsNone(body())

    def test_wholeLeavesNoTimer(self) -> None:
        """
        A body whole in time ends the fetch with its size, and leaves no
        timer behind.
        """
        self.answer.send(b"abc")
        self.clock.advance(29)
        self.answer.end()
        self.assertEqual(self.successResultOf(self.fetched), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class AnswerHeadTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} refuses, from its head alone, an answer it could
    not keep.
    """

    def fetched(self, answer: PieceByPiece) -> Deferred[int]:
        """
        @return: The fetch of L{URL}, answered with C{answer}.
        """
        clock = Clock()
        agent = Waiting()
        settings = DownloadTopic(idle_timeout=30, max_bytes=1000)
        client = OasisClient(clock, MemoryLimiter(clock), settings, http=DirectClient(clock, agent))
        d = client.fetch(Transfer(URL), lambda data: None)
        agent.pending[0].callback(answer)
        return d

    def test_contentLengthOverCap(self) -> None:
        """
        An answer whose C{Content-Length} is over the cap fails for good at
        once, saying so; its body is not read.
        """
        answer = PieceByPiece()
        answer.length = 1001
        failure = self.failureResultOf(self.fetched(answer), PermanentFailure)
        self.assertEqual(
            str(failure.value),
            "answer of 1,001 bytes (its Content-Length) larger than max_bytes (1,000 bytes)",
        )
        self.assertEqual(answer.transport.producerState, "stopped")
        answer = PieceByPiece()
        answer.length = 1000
        d = self.fetched(answer)
        answer.end()
        self.assertEqual(self.successResultOf(d), 0)

    def test_contentEncodingNamed(self) -> None:
        """
        An answer sent with a C{Content-Encoding} (harbour asks for none)
        fails the attempt naming it; its body is not read.  C{identity}
        is no coding.
        """
        answer = PieceByPiece(Headers({b"content-encoding": [b"gzip"]}))
        failure = self.failureResultOf(self.fetched(answer), AttemptFailed)
        self.assertEqual(
            str(failure.value), "answer sent gzip-encoded (Content-Encoding: gzip), which was not asked for"
        )
        self.assertEqual(answer.transport.producerState, "stopped")
        answer = PieceByPiece(Headers({b"content-encoding": [b"Identity"]}))
        d = self.fetched(answer)
        answer.send(b"PK")
        answer.end()
        self.assertEqual(self.successResultOf(d), 2)


class PacedBodyTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} under C{max_bytes_per_second} pauses the body,
    and its own pauses are no silence of the server's.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Waiting()
        http = DirectClient(self.clock, self.agent)
        settings = DownloadTopic(idle_timeout=30, max_bytes_per_second=10)
        self.client = OasisClient(self.clock, MemoryLimiter(self.clock), settings, http=http)
        self.fetched = self.client.fetch(Transfer(URL), lambda data: None)
        self.answer = PieceByPiece()
        self.agent.pending[0].callback(self.answer)

    def test_pauseLongerThanIdle(self) -> None:
        """
        A read that puts the body 100 s ahead of its cap pauses it for
        100 s, more than C{idle_timeout}, without ending it; the silence
        counts from the pause's end.
        """
        self.answer.send(b"x" * 1000)
        self.assertEqual(self.answer.transport.producerState, "paused")
        self.clock.advance(99.9)
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        self.assertEqual(self.answer.transport.producerState, "producing")
        self.clock.advance(29.9)
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        failure = self.failureResultOf(self.fetched, AttemptFailed)
        self.assertEqual(str(failure.value), "no data for 30 s")

    def test_endWhilePaused(self) -> None:
        """
        A body that ends while paused leaves no call to resume it behind.
        """
        self.answer.send(b"x" * 1000)
        self.answer.end()
        self.assertEqual(self.successResultOf(self.fetched), 1000)
        self.assertEqual(self.clock.getDelayedCalls(), [])


@implementer(IAgent)
class Waiting:
    """
    An agent whose requests wait until the test answers them.  A request
    cancelled fails as Twisted's agent fails one sent and waiting for its
    answer: with a L{ResponseNeverReceived} whose reason is the
    L{CancelledError}, not with the bare L{CancelledError}.
    """

    def __init__(self) -> None:
        self.urls: list[bytes] = []
        self.pending: list[Deferred[Any]] = []

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[Any]:
        """
        Record C{uri}; answer when the test says so.
        """
        self.urls.append(uri)
        d: Deferred[Any] = Deferred(lambda d: d.errback(ResponseNeverReceived([Failure(CancelledError())])))
        self.pending.append(d)
        return d


@attr.s(auto_attribs=True, eq=False)
class Context:
    """
    What L{Attempts} needs of a download service.
    """

    directory: Path
    settings: DownloadTopic
    work: WorkTopic
    owner: str = "tester"
    rng: random.Random = attr.ib(factory=lambda: random.Random(1))
    running: int = 1

    def beat(self) -> None:
        """
        No hub to tell.
        """

    def storage(self, directory: Path) -> Deferred[str]:
        """
        No storage known.
        """
        return succeed("")


def synchronously(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """
    Run C{f} at once, in place of a thread.
    """
    return maybeDeferred(f, *args, **kwargs)


def stubbed_attempts(
    directory: Path,
    clock: Clock,
    store: MemoryTaskStore,
    settings: DownloadTopic,
    work: WorkTopic,
    http: StubTreq,
) -> Attempts:
    """
    @return: Attempts into C{directory} whose one HTTP client asks C{http},
        as a download service with C{settings} and C{work} would make them,
        their file work done at once.
    """
    return Attempts(
        Context(directory, settings, work),
        clock,
        store,
        OasisClient(clock, MemoryLimiter(clock), settings, http=http),
        Bus(),
        DownloadActivity(clock),
        synchronously,
        GroupCommit(synchronously),
    )


class DownloadRetryTests(TestCase):
    """
    A download throttled by OASIS is retried no sooner than the throttle
    asked, however short its backoff.
    """

    async def test_retryWaitsForThrottle(self) -> None:
        """
        With a backoff of a fraction of a second, the task throttled by the
        recorded answer is not claimable for 5 s, and is once they are over.
        """
        clock = Clock()
        clock.advance(NOW)
        stub = StubTreq(Scripted(clock, throttled()))
        settings = DownloadTopic(min_request_interval=0)
        work = WorkTopic(retry_base=0.02, retry_cap=0.1)
        store = MemoryTaskStore(clock)
        manifest = ManifestTopic(base_url="http://oasis.test/oasisapi", start="2025-03-09", end="2025-03-09")
        report = ReportTopic(name="load", queryname="SLD_FCST", kind="single_zip", market_run_id="DAM")
        await store.create(report_urls(manifest, [report], datetime.date(2025, 3, 10)))
        task = await store.claim("tester", 300)
        assert task is not None
        attempts = stubbed_attempts(Path(self.mktemp()), clock, store, settings, work, stub)
        done = attempts.run(task)
        stub.flush()
        await done
        again: Task | None = await store.get(task.id)
        assert again is not None
        self.assertEqual(
            (again.state, again.not_before, again.last_error),
            (PENDING, NOW + 5, "HTTP 429: throttled, retry after 5 s"),
        )
        clock.advance(4.9)
        self.assertIsNone(await store.claim("tester", 300))
        clock.advance(0.1)
        claimed = await store.claim("tester", 300)
        self.assertEqual(claimed.id if claimed else None, task.id)


@implementer(IStreamClientEndpoint)
@attr.s(eq=False)
class Connects:
    """
    An endpoint whose connections are made at once, each over a
    L{StringTransport}.

    @ivar made: The connections made, in order.
    """

    made: list[HTTP11ClientProtocol] = attr.ib(factory=list)

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect a protocol of C{protocolFactory}.
        """
        protocol = protocolFactory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        assert isinstance(protocol, HTTP11ClientProtocol)
        protocol.makeConnection(StringTransport())
        self.made.append(protocol)
        return succeed(cast(IProtocol, protocol))


#: A whole answer that leaves its connection open for the next.
KEPT_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nPK"


class KeptAliveClosedTests(SynchronousTestCase):
    """
    The default pool's connections kept alive fail a request with
    L{KeptAliveClosed} when the server closed them before answering, with
    a way to send it again on a new connection; and in no other case.
    """

    def setUp(self) -> None:
        self.pool = QuietPool(Clock())
        self.endpoint = Connects()

    def kept(self) -> Any:
        """
        @return: A new connection (to a place of its own) that answered
            one request and went back to the pool, as the pool hands it
            out again.
        """
        key = len(self.endpoint.made)
        connection = self.successResultOf(self.pool.getConnection(key, self.endpoint))
        self.assertIs(connection, self.endpoint.made[-1])
        answered = connection.request(get())
        connection.dataReceived(KEPT_ANSWER)
        self.successResultOf(answered).deliverBody(Collected())
        again: Any = self.successResultOf(self.pool.getConnection(key, self.endpoint))
        self.assertIsNot(again, connection)
        self.assertIs(again.connection, connection)
        return again

    def test_closedBeforeAnswering(self) -> None:
        """
        A request on a kept-alive connection that the server closes before
        a byte of an answer, cleanly or not, fails with L{KeptAliveClosed},
        in words that say so; its C{resend} sends it on a new connection.
        (Without it, Twisted's L{ResponseNeverReceived} failed the attempt:
        "request failed: Connection was closed cleanly".)
        """
        for reason in (ConnectionDone(), ConnectionLost()):
            answered = self.kept().request(get())
            self.endpoint.made[-1].connectionLost(Failure(reason))
            closed = self.failureResultOf(answered, KeptAliveClosed).value
            self.assertIsInstance(closed, ResponseNeverReceived)
            self.assertEqual(described(closed), "the server closed a kept-alive connection before answering")
            resent = closed.resend()
            new = self.endpoint.made[-1]
            transport = new.transport
            assert isinstance(transport, StringTransport)
            self.assertTrue(transport.value().startswith(b"GET / HTTP/1.1\r\n"))
            new.dataReceived(KEPT_ANSWER)
            self.assertEqual(self.successResultOf(resent).code, 200)
        self.assertEqual(len(self.endpoint.made), 4)

    def test_closedLater(self) -> None:
        """
        A kept-alive connection closed before answering, but more than
        L{CROSSED_WITHIN} after the request went, fails its request as
        Twisted says: the server had time to read it and dropped it, and
        sending it again at once would ask twice.
        """
        answered = self.kept().request(get())
        self.pool._reactor.advance(CROSSED_WITHIN + 0.1)
        self.endpoint.made[-1].connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(answered, ResponseNeverReceived)
        self.assertNotIsInstance(failure.value, KeptAliveClosed)

    def test_newConnectionClosed(self) -> None:
        """
        A new connection that the server closes before answering fails its
        request as Twisted says: the server did take it.
        """
        connection = self.successResultOf(self.pool.getConnection("key", self.endpoint))
        answered = connection.request(get())
        connection.connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(answered, ResponseNeverReceived)
        self.assertNotIsInstance(failure.value, KeptAliveClosed)

    def test_partlyAnswered(self) -> None:
        """
        A kept-alive connection closed once part of an answer came fails
        its request as Twisted says: the server took it.
        """
        answered = self.kept().request(get())
        connection = self.endpoint.made[-1]
        connection.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Le")
        connection.connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(answered, ResponseFailed)
        self.assertNotIsInstance(failure.value, ResponseNeverReceived)

    def test_cancelledOrAborted(self) -> None:
        """
        A request on a kept-alive connection that harbour cancels, or whose
        connection it aborts, is not taken for one the server closed.
        """
        answered = self.kept().request(get())
        answered.cancel()
        failure = self.failureResultOf(answered, ResponseNeverReceived)
        self.assertNotIsInstance(failure.value, KeptAliveClosed)
        answered = self.kept().request(get())
        self.endpoint.made[-1].connectionLost(Failure(ConnectionAborted()))
        failure = self.failureResultOf(answered, ResponseNeverReceived)
        self.assertNotIsInstance(failure.value, KeptAliveClosed)
        self.assertFalse(closed_before_answer(ResponseNeverReceived([Failure(CancelledError())])))


def kept_alive_closed(resent: list[Deferred[Any]]) -> KeptAliveClosed:
    """
    @return: A L{KeptAliveClosed} whose C{resend} notes a L{Deferred} in
        C{resent} for the test to answer.
    """

    def resend() -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        resent.append(d)
        return d

    return KeptAliveClosed([Failure(ConnectionDone())], resend)


class ResentTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} sends a request whose kept-alive connection the
    server closed before answering again, once its politeness slot comes.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Waiting()
        self.limiter = MemoryLimiter(self.clock)
        settings = DownloadTopic(min_request_interval=5.0, idle_timeout=3)
        http = DirectClient(self.clock, self.agent)
        self.client = OasisClient(self.clock, self.limiter, settings, http=http)
        self.received: list[bytes] = []
        self.fetched = self.client.fetch(Transfer(URL), self.received.append)
        self.resent: list[Deferred[Any]] = []
        self.agent.pending[0].errback(kept_alive_closed(self.resent))

    def test_sentAgainOnItsSlot(self) -> None:
        """
        The request is sent again on the next politeness slot, not before;
        the wait is no silence of the server's, and the answer is the
        fetch's.
        """
        self.clock.advance(4.9)
        self.assertEqual(self.resent, [])
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        self.assertEqual(len(self.resent), 1)
        answer = PieceByPiece()
        self.resent[0].callback(answer)
        answer.send(b"PK")
        answer.end()
        self.assertEqual(self.successResultOf(self.fetched), 2)
        self.assertEqual(self.received, [b"PK"])
        self.assertEqual(self.agent.urls, [URL.encode()])

    def test_deadlineAfterResend(self) -> None:
        """
        The deadline for the answer's head starts again once the request
        is sent again; its failure says the request was sent again, and
        why.
        """
        self.clock.advance(5)
        self.clock.advance(2.9)
        self.assertNoResult(self.fetched)
        self.clock.advance(0.1)
        self.assertEqual(
            str(self.failureResultOf(self.fetched, AttemptFailed).value),
            "no answer within 3 s (sent again: the server closed a kept-alive connection before answering)",
        )

    def test_stopWhileWaiting(self) -> None:
        """
        A fetch cancelled while it waits to send again (harbour stopping)
        fails with L{CancelledError}, sends nothing, and leaves no timer.
        """
        self.fetched.cancel()
        self.failureResultOf(self.fetched, CancelledError)
        self.clock.advance(10)
        self.assertEqual(self.resent, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_notWithoutSlot(self) -> None:
        """
        Without a way to wait for a slot, a L{DirectClient} does not send
        the request again: it fails with the L{KeptAliveClosed}.
        """
        agent = Waiting()
        d = DirectClient(self.clock, agent).get(URL)
        agent.pending[0].errback(kept_alive_closed(self.resent))
        self.failureResultOf(d, KeptAliveClosed)
        self.assertEqual(self.resent, [])


@implementer(ILimiter)
@attr.s(eq=False)
class FirstSlotOnly:
    """
    A politeness store that reserves a fetch's first slot, then fails
    every further call with L{StoreUnavailable}: Redis gone away while a
    redirect or a request sent again waits for its slot.

    @ivar limiter: Reserves the first slot.
    """

    limiter: MemoryLimiter = attr.ib()
    _calls: int = attr.ib(default=0, init=False)

    def _once(self, reserve: Callable[[], Deferred[float]]) -> Deferred[float]:
        self._calls += 1
        if self._calls > 1:
            return fail(StoreUnavailable("Redis is away"))
        return reserve()

    def reserve(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.reserve}.
        """
        return self._once(lambda: self.limiter.reserve(host, interval))

    def confirm(self, host: str, interval: float) -> Deferred[float]:
        """
        See L{ILimiter.confirm}.
        """
        return self._once(lambda: self.limiter.confirm(host, interval))

    def hold(self, host: str, seconds: float) -> Deferred[None]:
        """
        See L{ILimiter.hold}.
        """
        return self.limiter.hold(host, seconds)


class LaterSlotUnavailableTests(SynchronousTestCase):
    """
    L{OasisClient.fetch} fails with L{StoreUnavailable}, which uses no
    attempt, when Redis fails while a redirect or a request sent again
    waits for its politeness slot, as it does when Redis fails before the
    first request's slot.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Waiting()
        settings = DownloadTopic(min_request_interval=5.0, idle_timeout=3)
        limiter = FirstSlotOnly(MemoryLimiter(self.clock))
        client = OasisClient(self.clock, limiter, settings, http=DirectClient(self.clock, self.agent))
        self.fetched = client.fetch(Transfer(URL), lambda data: None)

    def unavailable(self) -> None:
        """
        The fetch failed with L{StoreUnavailable}, not L{AttemptFailed},
        sent nothing more, and left no timer.
        """
        failure = self.failureResultOf(self.fetched, StoreUnavailable)
        self.assertEqual(str(failure.value), "Redis is away")
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_redirect(self) -> None:
        """
        A redirect whose slot cannot be reserved is not followed, and the
        fetch fails with L{StoreUnavailable}.  (It failed with
        L{AttemptFailed}: "request failed: Redis is away".)
        """
        self.agent.pending[0].callback(moved_to(b"http://mirror.test/b"))
        self.unavailable()
        self.assertEqual(self.agent.urls, [URL.encode()])

    def test_resend(self) -> None:
        """
        A request whose kept-alive connection the server closed is not sent
        again when its slot cannot be reserved, and the fetch fails with
        L{StoreUnavailable}.  (It failed with L{AttemptFailed}: "request
        failed: Redis is away (sent again: ...)".)
        """
        resent: list[Deferred[Any]] = []
        self.agent.pending[0].errback(kept_alive_closed(resent))
        self.unavailable()
        self.assertEqual(resent, [])


class ClosesWhenKeptAlive(Protocol):
    """
    Answers the first request of its connection, keeping the connection
    open, and closes it unanswered when a second request comes on it: as
    a server closes a connection idle for its keep-alive timeout, the
    close crossing the request.

    @ivar requests: Each request's connection, by number, in order.
    """

    def __init__(self, requests: list[int], number: int) -> None:
        self.requests = requests
        self.number = number
        self.answered = False

    def dataReceived(self, data: bytes) -> None:
        """
        Answer, or close, once the request's head is whole.
        """
        if b"\r\n\r\n" not in data:
            return
        assert self.transport is not None
        self.requests.append(self.number)
        if self.answered:
            self.transport.loseConnection()
            return
        self.answered = True
        self.transport.write(KEPT_ANSWER)


class KeptAliveOverTCPTests(TestCase):
    """
    Over real HTTP on 127.0.0.1, a request whose kept-alive connection the
    server closed before answering costs no attempt.
    """

    async def test_sentAgainOnNewConnection(self) -> None:
        """
        The request is sent again on a new connection, after a politeness
        slot of its own, and its answer is the fetch's.  (Without it, the
        fetch failed: "request failed: Connection was closed cleanly".)
        """
        from twisted.internet import reactor

        requests: list[int] = []
        connections = iter(range(1, 100))
        factory = Factory.forProtocol(lambda: ClosesWhenKeptAlive(requests, next(connections)))
        # Twisted types listenTCP's factory too narrowly for a Factory.
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        url = f"http://127.0.0.1:{address.port}/oasisapi/SingleZip?queryname=PRC_LMP"
        reservations: list[str] = []
        limiter = MemoryLimiter(reactor)

        def reserve(host: str, interval: float) -> Deferred[float]:
            reservations.append(host)
            return limiter.reserve(host, interval)

        limiter_seen = SimpleNamespace(reserve=reserve, confirm=limiter.confirm)
        client = OasisClient(reactor, cast(Any, limiter_seen), DownloadTopic(min_request_interval=0.01))
        self.addCleanup(client.close)
        self.assertEqual(await client.get(url, 1 << 20, "the cap"), b"PK")
        self.assertEqual(await client.get(url, 1 << 20, "the cap"), b"PK")
        # The second request came on the first connection, which closed;
        # sent again, it came on a second.
        self.assertEqual(requests, [1, 1, 2])
        self.assertEqual(len(reservations), 3)

    test_sentAgainOnNewConnection.timeout = 10  # type: ignore[attr-defined]
