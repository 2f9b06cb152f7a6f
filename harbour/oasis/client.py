"""
The one HTTP client every request to OASIS goes through.

Downloads and the publications follower share its rules: a request starts
only on a politeness slot reserved with the shared limiter; no byte for
C{idle_timeout}, or longer than C{total_timeout} in all, ends the attempt;
an answer larger than its cap is refused; a non-200 answer is an
L{AttemptFailed} carrying the server's C{Retry-After}; and a
C{max_bytes_per_second} cap paces the body.  Cancelling the L{Deferred} of
L{OasisClient.fetch} ends the request at whatever stage it is.

A request sent on a kept-alive connection that the server closed within
a second and before a byte of an answer came (it closes idle
connections, and the close crossed the request) most likely never
reached it: being a GET, it is sent again, once, on a new connection,
after a politeness slot of its own, as a redirect is (see
L{KeptAliveClosed}; RFC 9112 section 9.3.1 allows it).

OASIS throttles with HTTP 429 and an HTML page that says how long to wait
instead of a C{Retry-After} ("Please retry your request after 5 seconds"):
the attempt then carries that wait, at least 5 s, and the limiter holds
the host back as long, so that no worker sharing it asks again sooner,
not even one whose slot was reserved before the throttle came.  Where no
rule spaces requests (C{min_request_interval = 0}) the hold is still
waited for: at once by this client, within L{UNHELD_FOR} by the others.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
from collections.abc import Callable, Generator, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast

import attr
from hyperlink import EncodedURL
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectingCancelledError, ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web._newclient import HTTP11ClientProtocol, Request, _WrapperException
from twisted.web.client import (
    URI,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    RedirectAgent,
    ResponseDone,
    ResponseNeverReceived,
    _HTTP11ClientFactory,
    _StandardEndpointFactory,
)
from twisted.web.error import SchemeNotSupported
from twisted.web.http import PotentialDataLoss, _DataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IAgentEndpointFactory, IBodyProducer, IResponse
from zope.interface import implementer

from harbour.config.schema import DownloadTopic
from harbour.errors import StoreUnavailable
from harbour.interfaces import ILimiter
from harbour.oasis.agent import QueriesApart
from harbour.oasis.classify import THROTTLE_PAGE_BYTES, THROTTLE_PAUSE_MOST, throttle_pause
from harbour.store.politeness import host_of

T = TypeVar("T")

#: OASIS's answer to requests that come too fast.
TOO_MANY_REQUESTS = 429

#: The most bytes read from a connection at once (Twisted's default is
#: 64 KB).  Every piece read costs the reactor's thread the same calls
#: (the parser, the body, the hash, the write) however large it is, so a
#: large answer costs less in larger pieces; a larger size allocated for
#: every read, though, costs small answers more than it saves.
READ_SIZE = 1 << 18


#: Where no rule spaces a host's requests (C{min_request_interval = 0}),
#: how long the limiter's word that the host is not held is taken for:
#: asking before every request would cost each small answer a round trip
#: to Redis.  A hold this client makes is waited for at once; one another
#: process makes, within this long.
UNHELD_FOR = 1.0

#: The most hosts whose lack of a hold is remembered (see L{UNHELD_FOR}).
KEPT_UNHELD = 64

#: The most URLs-before-their-query whose host is remembered: more than the
#: hosts and paths harbour ever asks.
KEPT_HOSTS = 64


class AttemptFailed(Exception):
    """
    One attempt at a request failed for a reason worth retrying.

    @ivar retry_after: Seconds the server asked us to wait, if it did.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """
    An attempt failed in a way no retry can mend.
    """


#: The longest wait a C{Retry-After} header is taken for: a day.
LONGEST_RETRY_AFTER = 86_400.0

#: The longest head of an answer read: OASIS's are a few hundred bytes.
MAX_HEAD_BYTES = 1 << 16

#: The blank line that ends a head, as Twisted's parser finds it: the end
#: of the last line, then an empty line (LF or CR LF).
_HEAD_END = re.compile(rb"\n\r?\n")
#: The most bytes of that blank line a read can end on without holding it
#: all: the rest is in the next read.
_HEAD_END_SPLIT = 2


def retry_after(value: bytes | None, now: float) -> float | None:
    """
    @return: Seconds from a C{Retry-After} header (seconds or HTTP date),
        at most L{LONGEST_RETRY_AFTER}; L{None} for no header, or one
        that is neither a number of seconds nor a date.
    """
    if not value:
        return None
    text = value.decode("latin-1").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        # An HTTP date is in GMT; one without a zone (or "-0000") is read
        # as that, not as this machine's local time.
        seconds = when.replace(tzinfo=when.tzinfo or datetime.UTC).timestamp() - now
    if math.isnan(seconds):
        return None
    # "inf", "1e999" or a date centuries ahead: a server's word, not a
    # wait to take literally.
    return min(max(0.0, seconds), LONGEST_RETRY_AFTER)


def cancelled(error: BaseException) -> bool:
    """
    @return: Whether C{error} is how Twisted ends a request that was
        cancelled: a bare L{CancelledError} only before it reaches a
        connection (a redirect waiting for its slot);
        L{ConnectingCancelledError} while connecting; once the request is
        on a connection, the L{CancelledError} is among the
        C{reasons} of L{twisted.web.client.ResponseNeverReceived} (or of
        L{twisted.web.client.RequestTransmissionFailed}, while sending).
    """
    if isinstance(error, (CancelledError, ConnectingCancelledError)):
        return True
    if isinstance(error, _WrapperException):
        return any(cancelled(reason.value) for reason in error.reasons)
    return False


def described(error: BaseException) -> str:
    """
    @return: C{error} in words fit for a task's C{last_error}: for
        Twisted's wrappers of failures (L{twisted.web.client.ResponseFailed}
        and its kin, whose own text is the repr of a list of failures),
        the words of each failure they wrap, however deep, each once,
        joined; for an error without words, what it means.
    """
    return "; ".join(dict.fromkeys(_words(error))) or type(error).__name__


def _words(error: BaseException) -> Iterator[str]:
    """
    @return: The words of C{error}, or of each failure it wraps.
    """
    if isinstance(error, KeptAliveClosed):
        yield KEPT_ALIVE_CLOSED
        return
    if isinstance(error, _WrapperException):
        for reason in error.reasons:
            yield from _words(reason.value)
        return
    said = str(error).strip().rstrip(".")
    if said:
        yield said
    elif isinstance(error, _DataLoss):
        # Twisted's words for a body that ended short of its Content-Length.
        yield "fewer bytes than its Content-Length"
    else:
        yield type(error).__name__


@attr.s(auto_attribs=True, eq=False)
class Transfer:
    """
    One request as its owner watches it.

    @ivar started: When the request was sent, after its politeness wait.
    @ivar received: Body bytes received so far.
    """

    url: str
    started: float | None = None
    received: int = 0


def _ignore(value: object) -> None:
    """
    Take C{value} and do nothing with it.
    """


class _Body(Protocol):
    """
    Hands a response body to C{write} as it arrives, within a size cap.
    """

    def __init__(
        self, write: Callable[[bytes], None], limit: int, limit_name: str, progress: Callable[[int], None]
    ) -> None:
        self._write = write
        self._limit = limit
        self._limit_name = limit_name
        self._progress = progress
        self.received = 0
        self.done: Deferred[int] = Deferred(lambda d: self.abort(CancelledError()))
        self._failure: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Hand C{data} on, unless the body is over its cap or aborted.
        """
        if self._failure is not None:
            return
        self.received += len(data)
        if self.received > self._limit:
            self.abort(PermanentFailure(f"answer larger than {self._limit_name} ({self._limit:,} bytes)"))
            return
        try:
            self._write(data)
        except Exception as e:
            # The body may be over already (its length known): it must not
            # end well with bytes that were not kept.
            self.abort(AttemptFailed(f"cannot keep the answer: {e}"))
            return
        self._progress(len(data))

    @property
    def producer(self) -> IPushProducer:
        """
        The body's transport: a push producer, set before any byte arrives.
        """
        return cast(IPushProducer, self.transport)

    def abort(self, error: Exception) -> None:
        """
        Stop receiving, failing with C{error}.
        """
        if self._failure is None:
            self._failure = Failure(error)
            self.producer.stopProducing()

    # The default (a class, not a Failure) is never used: a body always ends
    # with a reason.  It is kept as it was; hence the ignore.
    def connectionLost(self, reason: Failure = ResponseDone) -> None:  # type: ignore[assignment]
        """
        Fire C{done} with the body's size, or fail it with why it ended.
        """
        # The callbacks refer back to this body (its throttle, its
        # timer): let go of them, or the answer's file and check would
        # wait for the cycle collector.
        self._write = self._progress = _ignore
        if self.done.called:  # cancelled
            return
        if self._failure is not None:
            self.done.errback(self._failure)
        # Not reason.check, which names every class of the value's
        # hierarchy to compare names: this runs for every answer.
        elif isinstance(reason.value, (ResponseDone, PotentialDataLoss)):
            self.done.callback(self.received)
        else:
            # A Failure always has its exception.
            why = described(cast(BaseException, reason.value))
            self.done.errback(AttemptFailed(f"connection lost mid-body: {why}"))


class _Head(Protocol):
    """
    Keeps the first bytes of a body, up to a size, and drops the rest
    unread (the connection with it) rather than read a long body we do not
    want.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._kept: list[bytes] = []
        self._count = 0
        self.done: Deferred[bytes] = Deferred(lambda d: self._stop())

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}, as far as the size allows.
        """
        if self.done.called:
            return
        kept = data[: self._size - self._count]
        self._kept.append(kept)
        self._count += len(kept)
        if self._count >= self._size:
            self.cut()

    def cut(self) -> None:
        """
        Fire C{done} with what has arrived, and stop receiving.
        """
        if not self.done.called:
            self.done.callback(b"".join(self._kept))
        self._stop()

    def _stop(self) -> None:
        if self.transport is not None:
            cast(IPushProducer, self.transport).stopProducing()

    # As for _Body.connectionLost, the default is never used.
    def connectionLost(self, reason: Failure = ResponseDone) -> None:  # type: ignore[assignment]
        """
        Fire C{done} with what has arrived, unless it has fired already: a
        page cut short still says what it says.
        """
        if not self.done.called:
            self.done.callback(b"".join(self._kept))


class _Discard(Protocol):
    """
    Drops a body we do not want, and its connection with it: read through
    to reuse the connection, a body that never ends (or trickles) would be
    read for ever, long after its attempt is over.
    """

    def connectionMade(self) -> None:
        """
        Stop reading the body: its connection closes.
        """
        cast(IPushProducer, self.transport).stopProducing()

    # As for _Body.connectionLost, the default is never used.
    def connectionLost(self, reason: Failure = ResponseDone) -> None:  # type: ignore[assignment]
        """
        Nothing to do: the body was not wanted.
        """


class _DiscardSoon(Protocol):
    """
    Drops the body of a redirect followed: a body read with the head (most
    are) is read to its end, keeping the connection for another request;
    one still to come is not waited for, and its connection is closed
    once the read that brought the head is handled.  Left unread, that
    connection stayed paused, open until the cycle collector freed it.

    @ivar clock: Times the end of that read.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._stop: IDelayedCall | None = None

    def connectionMade(self) -> None:
        """
        Stop reading the body once the read in hand is handled.
        """
        self._stop = self.clock.callLater(0, cast(IPushProducer, self.transport).stopProducing)

    # As for _Body.connectionLost, the default is never used.
    def connectionLost(self, reason: Failure = ResponseDone) -> None:  # type: ignore[assignment]
        """
        The body ended: nothing more to stop.
        """
        if self._stop is not None and self._stop.active():
            self._stop.cancel()
        self._stop = None


class RedirectFailed(Exception):
    """
    A redirect could not be followed: it named no C{Location}, one that is
    not http or https, or one too many.
    """


class _RedirectsDropped(RedirectAgent):
    """
    Follows redirects as L{RedirectAgent} does, drops the body of each
    (L{_DiscardSoon}), and says in words why one cannot be followed
    (L{RedirectFailed}).

    @ivar clock: See L{_DiscardSoon.clock}.
    """

    def __init__(self, agent: IAgent, clock: IReactorTime) -> None:
        super().__init__(agent)
        self.clock = clock

    def _handleRedirect(
        self, response: IResponse, method: bytes, uri: bytes, headers: Headers | None, redirectCount: int
    ) -> Deferred[IResponse]:
        response.deliverBody(_DiscardSoon(self.clock))
        code = response.code
        locations = response.headers.getRawHeaders(b"location")
        if not locations:
            return fail(RedirectFailed(f"HTTP {code} without a Location to follow"))
        location = self._resolveLocation(uri, locations[0]).decode("latin-1")
        if redirectCount >= self._redirectLimit:
            limit = self._redirectLimit
            return fail(
                RedirectFailed(f"HTTP {code}: more than {limit} redirects in a row, the last to {location}")
            )

        def unsupported(failure: Failure) -> IResponse:
            failure.trap(SchemeNotSupported)
            raise RedirectFailed(f"HTTP {code}: redirected to {location}, which is neither http nor https")

        followed: Deferred[IResponse] = super()._handleRedirect(response, method, uri, headers, redirectCount)
        return followed.addErrback(unsupported)


class HeadTooLong(Exception):
    """
    An answer's head went on past L{MAX_HEAD_BYTES}: its connection was
    dropped.
    """


class HeadApart(HTTP11ClientProtocol):
    """
    An HTTP/1.1 connection whose parser is given an answer's head apart
    from the body bytes read with it.  Twisted's parser splits its whole
    buffer at each line of the head, copying what follows: a head read
    with 64 KB of body copied the body once per line of the head.  While
    the head is parsed, the connection's pauses are held (see
    L{_head_received}).  Its connection reads up to L{READ_SIZE} bytes at
    a time where it reads the socket itself (plain HTTP; TLS hands on what
    it deciphers in pieces of its own).
    """

    log = Logger()

    #: How many requests it has been given: past the first, it was kept
    #: alive for each by the pool.
    carried = 0

    # While a head is parsed: the bytes read after it, in order.
    _after_head: list[bytes] | None = None
    # The parser whose head is being read, how many of its bytes came, and
    # the last of them, which may begin its blank line.
    _head_parser: object = None
    _head_bytes = 0
    _head_tail = b""

    def connectionMade(self) -> None:
        """
        See L{HTTP11ClientProtocol.connectionMade}.
        """
        if isinstance(self.transport, FileDescriptor):
            self.transport.bufferSize = READ_SIZE
        super().connectionMade()

    def request(self, request: Request) -> Deferred[IResponse]:
        """
        See L{HTTP11ClientProtocol.request}.
        """
        self.carried += 1
        return super().request(request)

    def dataReceived(self, bytes: bytes) -> None:
        """
        See L{HTTP11ClientProtocol.dataReceived}.
        """
        if self._after_head is not None:
            self._after_head.append(bytes)
            return
        parser = self._parser
        if parser is not None and parser.line_mode:
            if parser is not self._head_parser:
                self._head_parser, self._head_bytes, self._head_tail = parser, 0, b""
            end = self._head_end(bytes)
            self._head_bytes += len(bytes) if end == -1 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                # Twisted bounds each line of a head, not their number.
                transport = cast(ITCPTransport, self.transport)
                self.log.warn(
                    "{peer} sent an answer whose head is longer than {most:,} bytes: connection dropped",
                    peer=str(transport.getPeer()),
                    most=MAX_HEAD_BYTES,
                    service="download",
                )
                transport.abortConnection()
                # The answer fails saying why, not as a connection this
                # side aborted for no reason given.
                self._disconnectParser(
                    Failure(HeadTooLong(f"the answer's head is longer than {MAX_HEAD_BYTES:,} bytes"))
                )
                return
            if end != -1:
                self._after_head = [bytes[end:]]
                try:
                    self._head_received(bytes[:end])
                finally:
                    after, self._after_head = self._after_head, None
                if self._parser is not parser:
                    # The answer ended with its head: what follows it is
                    # dropped, as the parser would have dropped it.
                    return
                bytes = b"".join(after)
                if not bytes:
                    return
        super().dataReceived(bytes)

    def _head_end(self, data: bytes) -> int:
        """
        Find where the head being read ends, in C{data} or across the read
        before it: a blank line may be cut anywhere, and the body bytes
        read with its end are not the head's.

        @return: The index in C{data} just past the head's blank line, or
            -1 if it is not there (C{data} is then noted as the head's
            latest bytes).
        """
        tail = self._head_tail
        if tail:
            # Only the bytes about the cut: joining a whole read to the
            # tail would copy it.
            found = _HEAD_END.search(tail + data[:_HEAD_END_SPLIT])
            if found is not None:
                return found.end() - len(tail)
        found = _HEAD_END.search(data)
        if found is not None:
            return found.end()
        if len(data) >= _HEAD_END_SPLIT:
            self._head_tail = data[-_HEAD_END_SPLIT:]
        else:
            self._head_tail = (tail + data)[-_HEAD_END_SPLIT:]
        return -1

    def _head_received(self, head: bytes) -> None:
        """
        Parse C{head}, an answer's whole head, with the connection's pauses
        held until it is parsed.  Twisted's parser pauses the connection
        once the head is parsed, until the answer's owner asks for the
        body; harbour's ask at once, within the same call, and each pause
        and resume costs the reactor a call to change what it polls for.
        Held, the pause and the resume cancel out, and a pause left at the
        end (an owner who asks later) is made then.
        """
        proxy = self._transportProxy
        if proxy is None or proxy._producer is None:
            super().dataReceived(head)
            return
        producer = proxy._producer
        held = _HeldPauses(producer)
        proxy._producer = held
        try:
            super().dataReceived(head)
        finally:
            # Once the answer is over (its body may come with the end of
            # the head), its proxy is stopped and the connection is the
            # pool's: a pause noted for the answer no longer applies.
            if proxy._producer is held:
                proxy._producer = producer
                if held.paused and not held.stopped:
                    producer.pauseProducing()


@implementer(IPushProducer)
@attr.s(eq=False)
class _HeldPauses:
    """
    Stands for a connection, as the producer of its answer, while the
    answer's head is parsed: it notes pauses and resumes instead of making
    them (see L{HeadApart._head_received}), and passes on the rest.

    @ivar producer: The connection.
    @ivar paused: Whether the last of the pauses and resumes was a pause.
    @ivar stopped: Whether the connection was stopped meanwhile.
    """

    producer: Any = attr.ib()
    paused: bool = attr.ib(default=False)
    stopped: bool = attr.ib(default=False)

    def pauseProducing(self) -> None:
        """
        Note a pause.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        Note a resume.
        """
        self.paused = False

    def stopProducing(self) -> None:
        """
        Stop the connection.
        """
        self.stopped = True
        self.producer.stopProducing()

    def loseConnection(self) -> None:
        """
        Close the connection.
        """
        self.stopped = True
        self.producer.loseConnection()


class _QuietFactory(_HTTP11ClientFactory):
    """
    The pool's connection factory, without a log line per connection, and
    its connections' heads parsed apart (L{HeadApart}).
    """

    noisy = False

    def buildProtocol(self, addr: IAddress | None) -> HTTP11ClientProtocol:
        """
        See L{_HTTP11ClientFactory.buildProtocol}.
        """
        return HeadApart(self._quiescentCallback)


#: The most seconds from a request sent on a kept-alive connection to the
#: server's closing it for that close to be taken for one that crossed
#: the request (L{KeptAliveClosed}): a close that comes later follows a
#: request the server had time to read and work on.
CROSSED_WITHIN = 1.0

#: What C{last_error} says of a request sent on a kept-alive connection
#: that the server closed before answering, if it is not sent again.
KEPT_ALIVE_CLOSED = "the server closed a kept-alive connection before answering"


class KeptAliveClosed(ResponseNeverReceived):
    """
    A request was sent on a connection the pool had kept alive, and the
    server closed it before a byte of an answer came, within
    L{CROSSED_WITHIN}: the close most likely crossed the request (a server
    closes a connection idle for its keep-alive timeout), which it then
    never took.  Not the server's failure, so it is
    sent again (L{resend}), as Twisted's C{retryAutomatically} would send
    it, but only once its politeness slot comes: see L{_Resent}.

    @ivar resend: Sends the request again, on a new connection; its
        L{Deferred} fires with the answer.
    """

    def __init__(self, reasons: list[Failure], resend: Callable[[], Deferred[IResponse]]) -> None:
        super().__init__(reasons)
        self.resend = resend


def closed_before_answer(error: BaseException) -> bool:
    """
    @return: Whether C{error} is how a request fails whose connection the
        server closed before a byte of an answer came (cleanly or not),
        rather than one cancelled or aborted by harbour.  Twisted says
        L{ResponseNeverReceived} only while no byte has come.
    """
    if not isinstance(error, ResponseNeverReceived) or cancelled(error):
        return False
    return any(
        reason.check(ConnectionDone, ConnectionLost) and not reason.check(ConnectionAborted)
        for reason in error.reasons
    )


@attr.s(eq=False, frozen=True)
class _KeptAlive:
    """
    A connection the pool kept alive, handed out for one more request:
    it fails that request with L{KeptAliveClosed} if the server closed it
    before answering.

    @ivar connection: The connection.
    @ivar new_connection: Makes a new connection to the same place.
    """

    connection: HTTP11ClientProtocol = attr.ib()
    new_connection: Callable[[], Deferred[HTTP11ClientProtocol]] = attr.ib()
    clock: IReactorTime = attr.ib()

    def request(self, request: Request) -> Deferred[IResponse]:
        """
        See L{HTTP11ClientProtocol.request}.
        """
        sent = self.clock.seconds()

        def closed(failure: Failure) -> Failure:
            error = failure.value
            if not isinstance(error, ResponseNeverReceived) or not closed_before_answer(error):
                return failure
            if self.clock.seconds() - sent > CROSSED_WITHIN:
                # Closed after the server had time to work on it: it
                # dropped the request, which the attempt's backoff answers.
                return failure

            def resend() -> Deferred[IResponse]:
                made = self.new_connection()
                return made.addCallback(lambda connection: connection.request(request))

            return Failure(KeptAliveClosed(error.reasons, resend))

        return self.connection.request(request).addErrback(closed)


class QuietPool(HTTPConnectionPool):
    """
    A connection pool that does not log each connection it makes, and
    whose connections kept alive say when the server closed them before
    answering (L{_KeptAlive}).  Twisted's C{retryAutomatically} would send
    such a request again at once, without a politeness slot: it is off.
    """

    _factory = _QuietFactory
    retryAutomatically = False

    def getConnection(self, key: Any, endpoint: IStreamClientEndpoint) -> Deferred[HTTP11ClientProtocol]:
        """
        See L{HTTPConnectionPool.getConnection}.

        @return: A L{Deferred} firing with a new connection, or with a
            connection kept alive in a L{_KeptAlive}.
        """

        def kept(connection: HTTP11ClientProtocol) -> Any:
            if isinstance(connection, HeadApart) and connection.carried:
                return _KeptAlive(connection, lambda: self._newConnection(key, endpoint), self._reactor)
            return connection

        return super().getConnection(key, endpoint).addCallback(kept)


#: The most endpoints L{ReusedEndpoints} keeps: more hosts than harbour
#: ever talks to (OASIS, and the hosts it redirects to).
KEPT_ENDPOINTS = 64


@implementer(IAgentEndpointFactory)
@attr.s(eq=False)
class ReusedEndpoints:
    """
    Makes one endpoint per scheme, host and port, and hands it out for
    every request to them: Twisted's agent makes one per request, encoding
    the host name anew (IDNA), which costs a small answer as much as its
    headers.  An endpoint resolves its name at each connect, so a kept one
    still follows DNS.

    @ivar make: Makes the endpoints.
    """

    make: IAgentEndpointFactory = attr.ib()
    _made: dict[tuple[bytes, bytes, int], IStreamClientEndpoint] = attr.ib(factory=dict, init=False)

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        """
        See L{IAgentEndpointFactory.endpointForURI}.
        """
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._made.get(key)
        if endpoint is None:
            if len(self._made) >= KEPT_ENDPOINTS:
                self._made.clear()
            endpoint = self._made[key] = self.make.endpointForURI(uri)
        return endpoint


class InsecureRedirect(PermanentFailure):
    """
    A request made over https was redirected to plain http.
    """


@implementer(IAgent)
@attr.s(eq=False, frozen=True)
class _SecureOnly:
    """
    An agent that sends only https requests: those of a request made over
    https, redirects included.

    @ivar agent: Sends them.
    """

    agent: IAgent = attr.ib()

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        See L{IAgent.request}.

        @return: A L{Deferred} failing with L{InsecureRedirect} for a URI
            that is not https.
        """
        if uri[:6].lower() != b"https:":
            text = uri.decode("ascii", "replace")
            return fail(InsecureRedirect(f"refused a redirect from https to {text}"))
        return self.agent.request(method, uri, headers, bodyProducer)


@implementer(IAgent)
@attr.s(eq=False)
class _SpacedRedirects:
    """
    An agent whose requests after the first (the redirects followed) each
    wait for C{before} first: a politeness slot of their host, as the first
    request waited for one.

    @ivar agent: Sends them.
    @ivar before: Called with a redirect's URI; its L{Deferred} fires when
        the request may be sent.
    """

    agent: IAgent = attr.ib()
    before: Callable[[bytes], Deferred[None]] = attr.ib()
    _first: bool = attr.ib(default=True, init=False)

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        See L{IAgent.request}.
        """
        if self._first:
            self._first = False
            return self.agent.request(method, uri, headers, bodyProducer)
        d = self.before(uri)
        return d.addCallback(lambda ignored: self.agent.request(method, uri, headers, bodyProducer))


@implementer(IAgent)
@attr.s(eq=False, frozen=True)
class _Resent:
    """
    An agent that sends a request again, on a new connection, if the
    server closed the kept-alive connection it went on before answering
    (L{KeptAliveClosed}); but only once the L{Deferred} of C{before} for it
    fires: a politeness slot.

    @ivar agent: Sends the requests.
    @ivar before: Called with the URI of a request to send again.
    """

    agent: IAgent = attr.ib()
    before: Callable[[bytes], Deferred[None]] = attr.ib()

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        See L{IAgent.request}.
        """

        def closed(failure: Failure) -> Deferred[IResponse]:
            failure.trap(KeptAliveClosed)
            resend = cast(KeptAliveClosed, failure.value).resend
            # A new connection is never kept alive: the request is sent
            # again once at most.
            return self.before(uri).addCallback(lambda ignored: resend())

        return self.agent.request(method, uri, headers, bodyProducer).addErrback(closed)


@attr.s(eq=False, frozen=True)
class DirectClient:
    """
    GETs through an agent (following redirects), as treq's C{get} does
    with C{unbuffered=True}, without the work treq does per request that
    harbour does not use: parsing the URL into an object and back, a
    cookie jar, a gzip decoder.  Harbour's URLs are ASCII already; any
    other is encoded as treq would.

    A request made over https never follows a redirect to plain http:
    the answer could be altered on the way, unseen.

    @ivar reactor: Times the C{timeout}.
    @ivar agent: Sends the requests (and the requests of the redirects
        followed).
    """

    reactor: IReactorTime = attr.ib()
    agent: IAgent = attr.ib()

    def get(
        self,
        url: str,
        unbuffered: bool = True,
        timeout: float | None = None,
        before_redirect: Callable[[bytes], Deferred[None]] | None = None,
        before_resend: Callable[[bytes], Deferred[None]] | None = None,
    ) -> Deferred[IResponse]:
        """
        @param url: What to get.
        @param unbuffered: Ignored: the body is always left to the caller.
        @param timeout: Seconds to wait for the answer's headers before
            cancelling, if any.
        @param before_redirect: If given, called with the URI of each
            redirect to follow; the request is sent once its L{Deferred}
            fires.
        @param before_resend: If given, called with the URI of a request
            whose kept-alive connection the server closed before answering
            (L{KeptAliveClosed}); the request is sent again on a new
            connection once its L{Deferred} fires.  If not, the request
            fails with that L{KeptAliveClosed}.
        @return: A L{Deferred} firing with the response.
        """
        try:
            encoded = url.encode("ascii")
        except UnicodeEncodeError:
            encoded = EncodedURL.from_text(url).to_uri().to_text().encode("ascii")
        agent = self.agent
        if before_resend is not None:
            # Beneath the redirects: a redirect's request may be sent again.
            agent = _Resent(agent, before_resend)
        if before_redirect is not None:
            agent = _SpacedRedirects(agent, before_redirect)
        if encoded[:6].lower() == b"https:":
            agent = _SecureOnly(agent)
        d: Deferred[IResponse] = _RedirectsDropped(agent, self.reactor).request(b"GET", encoded)
        if timeout:
            expiry = self.reactor.callLater(timeout, d.cancel)

            def answered(result: T) -> T:
                if expiry.active():
                    expiry.cancel()
                return result

            d.addBoth(answered)
        return d


@attr.s(eq=False)
class OasisClient:
    """
    Requests to OASIS, polite and bounded.

    @ivar reactor: Also an L{twisted.internet.interfaces.IReactorTCP}, to
        connect with (and an L{twisted.internet.interfaces.IReactorSSL} for
        C{https}).
    @ivar settings: The C{[download]} settings in force: politeness,
        deadlines, size and rate caps, connections per host.
    @ivar total_timeout: The longest any one request may take.
    @ivar http: The treq client to send requests with (tests give
        C{treq.testing.StubTreq}); by default a L{DirectClient} of pooled
        connections that follows C{settings}.
    """

    reactor: IReactorTime = attr.ib()
    limiter: ILimiter = attr.ib()
    settings: DownloadTopic = attr.ib(factory=DownloadTopic)
    total_timeout: float = attr.ib(default=3600.0)
    # Any: StubTreq copies HTTPClient's methods onto itself at run time, so
    # no type names both.
    http: Any = attr.ib(default=None)
    _pool: HTTPConnectionPool | None = attr.ib(default=None, init=False)
    _pooled: DirectClient | None = attr.ib(default=None, init=False)
    # Where no rule spaces requests: until when each host is taken for not
    # held (see UNHELD_FOR), and how many holds this client has made (a
    # lookup answered as one is made must not be taken past it).
    _unheld: dict[str, float] = attr.ib(factory=dict, init=False)
    _holds_made: int = attr.ib(default=0, init=False)
    # Each URL's host as politeness keys it (host_of), by the URL's part
    # before its query: parsed once, not for every request.
    _hosts: dict[str, str] = attr.ib(factory=dict, init=False)

    def configure(self, settings: DownloadTopic) -> None:
        """
        Follow new settings; connections are made anew only when the
        number per host or the connect deadline changed.
        """
        rebuild = (settings.concurrency, settings.connect_timeout) != (
            self.settings.concurrency,
            self.settings.connect_timeout,
        )
        self.settings = settings
        if rebuild and self._pool is not None:
            old, self._pool, self._pooled = self._pool, None, None
            old.closeCachedConnections()

    # Any: an HTTPClient, a StubTreq posing as one, or a DirectClient.
    def _client(self) -> Any:
        if self.http is not None:
            return self.http
        if self._pooled is None:
            self._pool = QuietPool(self.reactor, persistent=True)
            self._pool.maxPersistentPerHost = self.settings.concurrency
            endpoints = _StandardEndpointFactory(
                self.reactor, BrowserLikePolicyForHTTPS(), self.settings.connect_timeout, None
            )
            agent = QueriesApart.usingEndpointFactory(
                self.reactor, ReusedEndpoints(endpoints), pool=self._pool
            )
            self._pooled = DirectClient(self.reactor, agent)
        return self._pooled

    def close(self) -> Deferred[None]:
        """
        Close idle connections.

        @return: A L{Deferred} firing once they are closed.
        """
        pool, self._pool, self._pooled = self._pool, None, None
        if pool is None:
            return succeed(None)
        return pool.closeCachedConnections()

    @inlineCallbacks
    def fetch(
        self,
        transfer: Transfer,
        write: Callable[[bytes], None],
        limit: int | None = None,
        limit_name: str = "max_bytes",
    ) -> Generator[Deferred[Any], Any, int]:
        """
        Request C{transfer.url} on its politeness slot and hand the body to
        C{write} as it arrives.

        @param limit: The largest body accepted (default: C{max_bytes}).
        @param limit_name: What errors call that limit.
        @return: A L{Deferred} firing with the body's size, or failing with
            L{AttemptFailed} (worth retrying), L{PermanentFailure},
            L{StoreUnavailable} when the limiter cannot reserve a slot
            (the first request's, a redirect's or a request's sent again:
            the request it was for was not sent), or L{CancelledError}
            when cancelled.
        """
        clock = self.reactor
        yield self._slot(transfer.url)
        transfer.started = clock.seconds()
        idle = self.settings.idle_timeout
        # A cancel of our own, for want of headers, is a failure worth
        # retrying that says so; any other is harbour stopping.
        timed_out: list[bool] = []
        deadline: list[IDelayedCall] = []

        def expire() -> None:
            timed_out.append(True)
            request.cancel()

        def stop_deadline() -> None:
            if deadline and deadline[0].active():
                deadline[0].cancel()

        def redirect_slot(uri: bytes) -> Deferred[None]:
            # A redirect is one more request to its host: it waits for a
            # slot of its own, and that wait is not the server's to answer
            # for, so the deadline for headers starts again after it.  So
            # does a request sent again (resend_slot).
            stop_deadline()

            def resume(ignored: None) -> None:
                deadline[:] = [clock.callLater(idle, expire)]

            return self._redirect_slot(uri).addCallback(resume)

        resent: list[bool] = []

        def resend_slot(uri: bytes) -> Deferred[None]:
            resent.append(True)
            return redirect_slot(uri)

        # Armed first: a redirect answered at once re-arms it.
        deadline[:] = [clock.callLater(idle, expire)]
        client = self._client()
        if isinstance(client, DirectClient):
            request = client.get(
                transfer.url, unbuffered=True, before_redirect=redirect_slot, before_resend=resend_slot
            )
        else:
            request = client.get(transfer.url, unbuffered=True)
        try:
            response = yield request
        except (PermanentFailure, StoreUnavailable):
            # Redis away while a redirect or a request sent again waited
            # for its slot: an outage, as for the first request's slot,
            # not a failure of OASIS's to use an attempt on.
            raise
        except Exception as e:
            # The failure of a request sent again is the second: the
            # first is said too.
            again = f" (sent again: {KEPT_ALIVE_CLOSED})" if resent else ""
            if not cancelled(e):
                raise AttemptFailed(f"request failed: {described(e)}{again}") from None
            if timed_out:
                raise AttemptFailed(f"no answer within {idle:g} s{again}") from None
            # Harbour stopping: what its outcome looks for, however Twisted
            # wrapped it.
            raise CancelledError() from None
        finally:
            stop_deadline()
        if response.code != 200:
            raise (yield self._refused(self._host(_answered_by(response, transfer.url)), response))
        if limit is None:
            limit = self.settings.max_bytes
        length = response.length
        if length is not UNKNOWN_LENGTH and length > limit:
            response.deliverBody(_Discard())
            raise PermanentFailure(
                f"answer of {length:,} bytes (its Content-Length) larger than {limit_name} ({limit:,} bytes)"
            )
        coding = response.headers.getRawHeaders(b"content-encoding")
        if coding is not None and b", ".join(coding).strip().lower() not in (b"", b"identity"):
            # Harbour asks for no coding: the bytes would not be the answer.
            response.deliverBody(_Discard())
            named = b", ".join(coding).decode("latin-1")
            raise AttemptFailed(
                f"answer sent {named}-encoded (Content-Encoding: {named}), which was not asked for"
            )
        return (yield self._receive(transfer, response, write, limit, limit_name))

    def _slot(self, url: str) -> Deferred[None]:
        """
        Wait for the next politeness slot of C{url}'s host; where there is
        no rule (an interval of 0), only for a throttle's hold of the host
        to end.
        """
        interval = self.settings.min_request_interval
        host = self._host(url)
        if interval <= 0 and self.reactor.seconds() < self._unheld.get(host, 0.0):
            return succeed(None)
        return self._reserved_slot(host, interval)

    def _host(self, url: str) -> str:
        """
        @return: C{url}'s host, as politeness keys it (L{host_of}).
        """
        base = url.partition("?")[0]
        host = self._hosts.get(base)
        if host is None:
            if len(self._hosts) >= KEPT_HOSTS:
                self._hosts.clear()
            host = self._hosts[base] = host_of(base)
        return host

    @inlineCallbacks
    def _reserved_slot(self, host: str, interval: float) -> Generator[Deferred[Any], Any, None]:
        """
        Reserve the next slot of C{host} under a rule of C{interval}, and
        wait for it; should a throttle hold the host back meanwhile, wait
        for a slot after it.  Under no rule nothing is reserved, but a
        hold is waited for all the same: it is the server's word.
        """
        holds_made = self._holds_made
        if interval > 0:
            wait = yield _shielded(self.limiter.reserve(host, interval))
        else:
            wait = yield _shielded(self.limiter.confirm(host, 0.0))
        while wait > 0:
            yield deferLater(self.reactor, wait, lambda: None)
            holds_made = self._holds_made
            wait = yield _shielded(self.limiter.confirm(host, interval))
        if interval <= 0 and holds_made == self._holds_made:
            if len(self._unheld) >= KEPT_UNHELD:
                self._unheld.clear()
            self._unheld[host] = self.reactor.seconds() + UNHELD_FOR

    def _redirect_slot(self, uri: bytes) -> Deferred[None]:
        return self._slot(uri.decode("ascii"))

    def _receive(
        self,
        transfer: Transfer,
        response: IResponse,
        write: Callable[[bytes], None],
        limit: int,
        limit_name: str,
    ) -> Deferred[int]:
        clock = self.reactor
        idle = self.settings.idle_timeout
        started = clock.seconds()

        def progress(size: int) -> None:
            transfer.received += size
            timer.touch()
            self._throttle(body, timer, transfer.received, started)

        body = _Body(write, limit, limit_name, progress)
        timer = _BodyTimer(
            clock,
            idle,
            started + self.total_timeout,
            lambda: body.abort(AttemptFailed(f"no data for {idle:g} s")),
            lambda: body.abort(AttemptFailed(f"request took longer than {self.total_timeout:g} s")),
        )

        def over(result: T) -> T:
            timer.stop()
            return result

        response.deliverBody(body)
        return body.done.addBoth(over)

    @inlineCallbacks
    def _refused(self, host: str, response: IResponse) -> Generator[Deferred[Any], Any, AttemptFailed]:
        """
        Read what a non-200 answer asks of us.

        @return: A L{Deferred} firing with the L{AttemptFailed} to raise,
            carrying the wait asked for: C{Retry-After}, or for a 429
            without it the wait its page names (at least 5 s).  After a 429
            the limiter holds the host back for that wait too.
        """
        pause = retry_after(response.headers.getRawHeaders(b"retry-after", [None])[0], self.reactor.seconds())
        if response.code != TOO_MANY_REQUESTS:
            response.deliverBody(_Discard())
            return AttemptFailed(f"HTTP {response.code}", pause)
        if pause is None:
            pause = throttle_pause((yield self._head(response, THROTTLE_PAGE_BYTES)))
        else:
            response.deliverBody(_Discard())
        # The throttle answers the pace of every request from this host, not
        # this one request: the hold keeps every worker sharing the limiter
        # off until it is over, those already waiting for a slot included.
        # Every worker waits at most as long as a page is believed for; this
        # task's own retry waits the whole of what the header said.
        shared = min(pause, THROTTLE_PAUSE_MOST)
        try:
            with contextlib.suppress(StoreUnavailable):  # Redis away: the task's own retry still waits
                yield _shielded(self.limiter.hold(host, shared))
        finally:
            # Where no rule spaces requests, the next asks the limiter
            # again, and a word that the host is not held, given before
            # the hold was recorded, is not taken.
            self._holds_made += 1
            self._unheld.pop(host, None)
        return AttemptFailed(f"HTTP 429: throttled, retry after {pause:g} s", pause)

    def _head(self, response: IResponse, size: int) -> Deferred[bytes]:
        """
        Read the start of a body we only want to look at.

        @return: A L{Deferred} firing with at most its first C{size} bytes,
            or what arrived within C{idle_timeout}.
        """
        head = _Head(size)
        deadline = self.reactor.callLater(self.settings.idle_timeout, head.cut)

        def over(result: T) -> T:
            if deadline.active():
                deadline.cancel()
            return result

        response.deliverBody(head)
        return head.done.addBoth(over)

    def _throttle(self, body: _Body, timer: _BodyTimer, received: int, started: float) -> None:
        cap = self.settings.max_bytes_per_second
        if not cap:
            return
        ahead = received / cap - (self.reactor.seconds() - started)
        if ahead > 0.05:
            body.producer.pauseProducing()
            timer.pause(ahead, body.producer.resumeProducing)

    def get(self, url: str, limit: int, limit_name: str) -> Deferred[bytes]:
        """
        Fetch a small answer whole.

        @param limit: The largest answer accepted.
        @param limit_name: What errors call that limit.
        @return: A L{Deferred} firing with its bytes; failing as L{fetch}.
        """
        chunks: list[bytes] = []
        d: Deferred[int] = self.fetch(Transfer(url), chunks.append, limit, limit_name)
        return d.addCallback(lambda size: b"".join(chunks))


@attr.s(eq=False)
class _BodyTimer:
    """
    A body's two deadlines, kept by one timer: no byte for C{idle}
    seconds, and not whole by C{ends}.  A byte's arrival only notes the
    time (L{touch}); the timer, when it fires, arms itself again for the
    deadline as it then stands, or ends the body.  A small answer so costs
    one timer, set and cancelled, rather than two and a reset for each
    piece read.  It also keeps the end of harbour's own pauses of the body
    (L{pause}), which are no silence of the server's.

    @ivar clock: Keeps the time.
    @ivar idle: The longest silence, in seconds.
    @ivar ends: When the body must be whole, on C{clock}.
    @ivar silent: Called once the body was silent for C{idle} seconds.
    @ivar late: Called once the body is not whole by C{ends}.
    """

    clock: IReactorTime = attr.ib()
    idle: float = attr.ib()
    ends: float = attr.ib()
    silent: Callable[[], None] = attr.ib()
    late: Callable[[], None] = attr.ib()
    _last: float = attr.ib(init=False)
    _due: float = attr.ib(init=False)
    _call: IDelayedCall | None = attr.ib(default=None, init=False)
    _resume: IDelayedCall | None = attr.ib(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._last = self.clock.seconds()
        self._arm()

    def _arm(self) -> None:
        self._due = min(self._last + self.idle, self.ends)
        self._call = self.clock.callLater(max(0.0, self._due - self.clock.seconds()), self._fired)

    def touch(self) -> None:
        """
        A byte arrived: the silence starts again (or once a pause is over).
        """
        self._last = max(self._last, self.clock.seconds())

    def pause(self, seconds: float, resume: Callable[[], None]) -> None:
        """
        Harbour paused the body for C{seconds} (its rate cap): call
        C{resume} then, unless the body is over first.  No byte can come
        meanwhile, so the silence starts once the pause is over: a pause
        longer than C{idle} must not end the body it paces.
        """
        self._last = max(self._last, self.clock.seconds() + seconds)
        if self._resume is not None and self._resume.active():
            # A later pause ends later: its resume is the one to keep.
            self._resume.cancel()
        self._resume = self.clock.callLater(seconds, resume)

    def _fired(self) -> None:
        self._call = None
        if min(self._last + self.idle, self.ends) > self._due:
            self._arm()  # bytes came since it was armed
        elif self.ends <= self._due:
            self.late()
        else:
            self.silent()

    def stop(self) -> None:
        """
        The body is over: no deadline is kept any longer, nor a pause.
        """
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None


def _answered_by(response: IResponse, url: str) -> str:
    """
    @return: The URL that C{response} answers: that of the last request of
        its redirects (Twisted's C{response.request}), which may not be on
        C{url}'s host; C{url} for an answer that does not say.
    """
    request = getattr(response, "request", None)
    uri = getattr(request, "absoluteURI", None)
    return uri.decode("ascii", "replace") if uri else url


def _shielded(d: Deferred[T]) -> Deferred[T]:
    """
    @return: A L{Deferred} with C{d}'s result, whose cancellation leaves
        C{d} to finish alone: a Redis command must never be cancelled, or
        its reply would be taken for the next command's.
    """
    shield: Deferred[T] = Deferred()

    def passOn(result: T | Failure) -> None:
        if shield.called:
            return None  # cancelled meanwhile: the result is nobody's
        if isinstance(result, Failure):
            shield.errback(result)
        else:
            shield.callback(result)
        return None

    d.addBoth(passOn)
    return shield
