"""
Shared test helpers: a control connection over an in-memory transport and
real servers started privately for one test.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attr
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from harbour.amp.client import HarbourClientProtocol
from harbour.amp.server import ControlProtocol, ControlService
from harbour.bus import Bus, Subscription
from harbour.ctl import _status, parser
from harbour.interfaces import IBus, IConfigSource, IEvent, IPausable
from harbour.service import DaemonControls

if TYPE_CHECKING:
    from harbour.store.connection import StoreService

TOKEN = "test-token"


@implementer(IConfigSource)
@attr.s(auto_attribs=True)
class RecordingConfig:
    """
    An L{IConfigSource} that records reloads and answers what it is told.
    """

    topics: list[str] = attr.Factory(list)
    errors: list[str] = attr.Factory(list)
    reloads: int = 0
    owned: frozenset[str] = frozenset()

    def reload(self) -> Deferred[tuple[list[str], list[str]]]:
        """
        Count the reload and answer with the configured result.
        """
        self.reloads += 1
        return succeed((self.topics, self.errors))

    def owns(self, topic: str) -> bool:
        """
        @return: Whether C{topic} is one of the topics it was told it owns.
        """
        return topic in self.owned


def control_service(bus: Bus | None = None, **kwargs: Any) -> ControlService:
    """
    A control service that is never started: tests connect its protocol
    over an in-memory transport instead.
    """
    document = kwargs.pop("status_document", lambda: {"services": {}})
    daemon = DaemonControls(
        status=lambda: maybeDeferred(document),
        config=kwargs.pop("config", RecordingConfig()),
        manifest=kwargs.pop("manifest", None),
        work=kwargs.pop("work", None),
        tasks=kwargs.pop("tasks", None),
        pausables=kwargs.pop("pausable", {}),
    )
    return ControlService(
        reactor=MemoryReactorClock(),
        endpoint="tcp:0:interface=127.0.0.1",
        token=TOKEN,
        bus=bus if bus is not None else Bus(),
        daemon=daemon,
        **kwargs,
    )


def connected(service: ControlService) -> tuple[HarbourClientProtocol, ControlProtocol, iosim.IOPump]:
    """
    Connect a client protocol to C{service} in memory.

    @return: (client protocol, server protocol, L{iosim.IOPump}).
    """
    return iosim.connectedServerAndClient(lambda: ControlProtocol(service), HarbourClientProtocol)


def call(
    client: HarbourClientProtocol, pump: iosim.IOPump, command: type[amp.Command], **kwargs: object
) -> Deferred[Any]:
    """
    Call C{command} and move the bytes until it is answered.

    AMP drops a connection whose failed command had no errback when the
    answer arrived, so the outcome is captured at once and handed back as
    an already fired L{Deferred}.
    """
    outcome: list[Any] = []
    client.callRemote(command, **kwargs).addBoth(outcome.append)
    pump.flush()
    if not outcome:
        return Deferred()
    if isinstance(outcome[0], Failure):
        return fail(outcome[0])
    return succeed(outcome[0])


def dead_pid() -> int:
    """
    @return: The pid of a process of this host that has run and is gone
        (reaped), as one killed would be.
    """
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(finished.stdout)


def short_directory(testcase: SynchronousTestCase) -> Path:
    """
    A fresh directory with a short path, removed after the test: unix
    socket paths may not exceed 107 bytes, and trial's own temporary
    directories can be longer than that.
    """
    path = Path(tempfile.mkdtemp(prefix="hb-"))
    testcase.addCleanup(shutil.rmtree, path, True)
    return path


async def private_redis(testcase: SynchronousTestCase) -> StoreService:
    """
    Start a store on a private embedded redis-server for one test, stopped
    after it.

    @return: The started L{StoreService} (its keys under C{t:}).
    """
    from twisted.internet import reactor

    from harbour.store.connection import StoreService

    store = StoreService.from_config(reactor, None, short_directory(testcase), "t")
    store.startService()
    testcase.addCleanup(store.stopService)
    await store.when_ready()
    return store


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """
    Make a self-signed certificate for C{host} (an IP address) and its key.

    @return: (certificate path, key path), PEM files in C{directory}, which
        also serves as a CA directory holding only this certificate.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory.parent / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def capture_log(testcase: SynchronousTestCase) -> list[str]:
    """
    @return: A list that collects the text of every log event until the
        end of C{testcase}.
    """
    messages: list[str] = []

    def observe(event: LogEvent) -> None:
        messages.append(formatEvent(event))

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    testcase.addCleanup(globalLogPublisher.removeObserver, observer)
    return messages


def run_status(services: dict[str, Any], *extra: str) -> tuple[int, str]:
    """
    Run C{harbourctl status} against a daemon answering C{services}.

    @return: The exit code and what was printed.
    """
    document = {"harbour": "1", "pid": 1, "uptime": 5, "services": services}

    class Protocol:
        """
        A control connection that answers C{Status} with the document.
        """

        def callRemote(self, command: object, **kwargs: object) -> Deferred[dict[str, str]]:
            """
            Answer any command with the document.
            """
            return succeed({"status": json.dumps(document)})

    out = io.StringIO()
    # Status needs no reactor, and only callRemote of the protocol.
    reactor = cast(IReactorCore, Clock())
    protocol = cast(HarbourClientProtocol, Protocol())
    codes: list[int] = []
    _status(reactor, protocol, parser().parse_args(["status", *extra]), out).addCallback(codes.append)
    return codes[0], out.getvalue()


@implementer(IPausable)
class Pausable:
    """
    A service that only records whether it is paused.
    """

    paused = False

    def pause(self) -> None:
        """
        See L{IPausable.pause}.
        """
        self.paused = True

    def resume(self) -> None:
        """
        See L{IPausable.resume}.
        """
        self.paused = False


@implementer(IBus)
class SilentHub:
    """
    A worker's bus whose hub has stopped answering but is still connected:
    what is published or unsubscribed is sent and never answered.
    Subscriptions are kept here, as a link to the hub keeps them, and end
    here at once.

    @ivar published: The topics published, in order.
    """

    def __init__(self) -> None:
        self.local = Bus()
        self.published: list[str] = []
        self._waiting: list[tuple[str, int, Deferred[None]]] = []

    def publish(self, topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        Send C{payload}; no answer comes.
        """
        self.published.append(topic)
        waiting, self._waiting = self._waiting, []
        for wanted in waiting:
            self._note(*wanted)
        return Deferred()

    def published_count(self, topic: str, count: int) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once C{count} events of C{topic} are
            published.
        """
        reached: Deferred[None] = Deferred()
        self._note(topic, count, reached)
        return reached

    def _note(self, topic: str, count: int, reached: Deferred[None]) -> None:
        if self.published.count(topic) >= count:
            reached.callback(None)
        else:
            self._waiting.append((topic, count, reached))

    def subscribe(self, pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
        """
        Subscribe here.
        """
        return self.local.subscribe(pattern, callback)

    def unsubscribe(self, subscription: Subscription) -> Deferred[None]:
        """
        End C{subscription} here; the hub's answer never comes.
        """
        self.local.unsubscribe(subscription)
        return Deferred()
