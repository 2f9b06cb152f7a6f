"""
Tests for L{harbour.oasis.agent}: what it would send, side by side with
Twisted's agent.  (That it sends it, through the agent's private
C{_requestWithEndpoint}, every test of the download service downloading
from the simulator shows.)
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import URI, Agent
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis import agent as agent_module
from harbour.oasis.agent import QueriesApart
from harbour.oasis.requests import report_urls

#: URIs of every shape: the fast way's, and those it leaves to Twisted.
URIS = [
    b"http://oasis.example/oasisapi/SingleZip?queryname=PRC_LMP&resultformat=6",
    b"http://oasis.example/oasisapi/SingleZip?queryname=PRC_LMP&resultformat=7",
    b"https://oasis.example:8443/oasisapi/GroupZip?groupid=DAM_LMP&version=1",
    b"HTTP://Oasis.Example/oasisapi/SingleZip?q=1",
    b"http://[::1]:7751/oasisapi/SingleZip?q=1",
    b"http://127.0.0.1:7751/a/b;type=x?q=1&r=2",
    b"http://user:secret@oasis.example/p?q=a?b=c",
    b"http://oasis.example/p?q=1#fragment",
    b"http://oasis.example/p#fragment?q=1",
    b"http://oasis.example/p?",
    b"http://oasis.example/p",
    b"http://oasis.example?q=1",
    b"http://oasis.example//p?q=1",
    b" http://oasis.example/p?q=1 ",
    b"ftp://oasis.example/p?q=1",
]


class Endpoints:
    """
    An endpoint factory that names the endpoint of each URI, as
    L{twisted.web.client._StandardEndpointFactory} refuses schemes other
    than HTTP's.
    """

    def endpointForURI(self, uri: URI) -> tuple[bytes, bytes, int]:
        """
        @return: A stand-in for the endpoint of C{uri}.
        @raise SchemeNotSupported: For a scheme other than C{http} or
            C{https}.
        """
        if uri.scheme not in (b"http", b"https"):
            raise SchemeNotSupported(f"unsupported scheme: {uri.scheme!r}")
        return (uri.scheme, uri.host, uri.port)


class Recording:
    """
    What an agent would send: it records each request, fully parsed, in
    place of sending it.
    """

    sent: list[tuple[Any, ...]]

    def _requestWithEndpoint(
        self,
        key: tuple[bytes, bytes, int],
        endpoint: IStreamClientEndpoint,
        method: bytes,
        parsedURI: URI,
        headers: Headers | None,
        bodyProducer: IBodyProducer | None,
        requestPath: bytes,
    ) -> Deferred[IResponse]:
        fields = (parsedURI.scheme, parsedURI.netloc, parsedURI.host, parsedURI.port, parsedURI.path)
        uri = (*fields, parsedURI.params, parsedURI.query, parsedURI.fragment, parsedURI.toBytes())
        self.sent.append((key, endpoint, method, uri, headers, bodyProducer, requestPath))
        return succeed(cast(IResponse, None))


class RecordingAgent(Recording, Agent):
    """
    Twisted's agent, recording.
    """


class RecordingQueriesApart(Recording, QueriesApart):
    """
    Harbour's, recording.
    """


def outcome(agent: Recording, uri: bytes) -> tuple[str, object]:
    """
    @return: What C{agent} does with a GET of C{uri}: what it sends, or
        the exception it raises or fails with.
    """
    agent.sent = []
    try:
        d = agent.request(b"GET", uri, None, None)  # type: ignore[attr-defined]
    except Exception as e:
        return ("raised", type(e))
    failures: list[Any] = []
    d.addErrback(failures.append)
    if failures:
        return ("failed", failures[0].type)
    return ("sent", agent.sent)


class QueriesApartTests(SynchronousTestCase):
    """
    L{QueriesApart} sends what Twisted's agent sends.
    """

    def agents(self) -> tuple[RecordingAgent, RecordingQueriesApart]:
        """
        @return: Twisted's agent and harbour's, each recording.
        """
        reactor = MemoryReactorClock()
        twisted = RecordingAgent.usingEndpointFactory(reactor, Endpoints())
        harbour = RecordingQueriesApart.usingEndpointFactory(reactor, Endpoints())
        return twisted, harbour

    def parses(self) -> list[bytes]:
        """
        @return: The URIs Twisted's L{URI.fromBytes} parses from now on,
            in order (it still parses them).
        """
        parsed: list[bytes] = []
        real = URI.fromBytes

        def counting(uri: bytes, defaultPort: int | None = None) -> URI:
            parsed.append(uri)
            return real(uri, defaultPort)

        self.patch(URI, "fromBytes", counting)
        return parsed

    def test_sameRequests(self) -> None:
        """
        For every shape of URI, the request, its parsed URI, its endpoint
        and its request line's target are Twisted's; an invalid URI is
        refused, and an unsupported scheme fails, as Twisted's agent does.
        Each URI is asked twice, the second time from what was kept.
        """
        twisted, harbour = self.agents()
        for uri in URIS * 2:
            self.assertEqual(outcome(harbour, uri), outcome(twisted, uri), uri)
        for uri in [b"http://oasis.example/p?q=a b", b"http://oasis.example/p?q=\xe9"]:
            self.assertEqual(outcome(harbour, uri), ("raised", ValueError))
            self.assertEqual(outcome(twisted, uri), ("raised", ValueError))
        self.assertEqual(outcome(harbour, b"ftp://oasis.example/p?q=1"), ("failed", SchemeNotSupported))

    def test_partsKept(self) -> None:
        """
        The part before the query is parsed once per base, and at most
        L{agent_module.KEPT_BASES} are kept.
        """
        self.patch(agent_module, "KEPT_BASES", 2)
        parsed = self.parses()
        twisted, harbour = self.agents()
        for query in (b"a=1", b"a=2", b"a=3"):
            outcome(harbour, b"http://oasis.example/one?" + query)
        self.assertEqual(parsed, [b"http://oasis.example/one"])
        for base in (b"two", b"three", b"one"):
            outcome(harbour, b"http://oasis.example/" + base + b"?a=1")
        self.assertEqual(len(parsed), 4, "the third base made room by forgetting the others")
        self.assertLessEqual(len(harbour._bases or {}), 2)

    def test_manifestURLsParsedOnce(self) -> None:
        """
        The URLs of a manifest, a report's windows, take the way that
        parses the part before the query once.
        """
        manifest = ManifestTopic(
            base_url="https://oasis.caiso.com/oasisapi", start="2025-01-01", end="2025-01-05"
        )
        report = ReportTopic(name="lmp", queryname="PRC_LMP", market_run_id="DAM", params={"node": "TH_NP15"})
        urls = [r.url.encode("ascii") for r in report_urls(manifest, [report], datetime.date(2025, 2, 1))]
        parsed = self.parses()
        twisted, harbour = self.agents()
        for url in urls:
            self.assertEqual(outcome(harbour, url)[0], "sent")
        self.assertGreater(len(urls), 1)
        self.assertEqual(parsed, [b"https://oasis.caiso.com/oasisapi/SingleZip"])
