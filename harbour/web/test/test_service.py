"""
Tests of L{harbour.web.service}: the listening policy, the token, and the
services a daemon gets from C{--http}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.errors import ConfigurationError
from harbour.service import Options
from harbour.test.helpers import capture_log
from harbour.web.monitor import Monitor
from harbour.web.service import DEFAULT_HTTP, HttpService, reachable_from_elsewhere, web_services
from harbour.web.test.helpers import FakeDaemon


class PolicyTests(SynchronousTestCase):
    """
    L{reachable_from_elsewhere} and the control port's rule.
    """

    def test_loopback(self) -> None:
        """
        Plain listeners on loopback and unix sockets are local.
        """
        for endpoint in (DEFAULT_HTTP, "tcp6:7752:interface=\\:\\:1", "unix:/tmp/h.sock"):
            self.assertFalse(reachable_from_elsewhere(endpoint), endpoint)

    def test_tls(self) -> None:
        """
        A TLS listener off loopback is reachable; on loopback it is not.
        """
        self.assertTrue(reachable_from_elsewhere("ssl:7752:privateKey=k.pem:certKey=c.pem"))
        self.assertFalse(
            reachable_from_elsewhere("ssl:7752:privateKey=k.pem:certKey=c.pem:interface=127.0.0.1")
        )

    def test_otherKinds(self) -> None:
        """
        A listener of any other kind (handed over by systemd, or a
        plugin's) may be reachable from elsewhere, so the page needs the
        token there.
        """
        self.assertTrue(reachable_from_elsewhere("systemd:domain=INET:index=0"))
        self.assertTrue(reachable_from_elsewhere("someplugin:7752"))

    def test_plainElsewhereRefused(self) -> None:
        """
        A plain listener off loopback is refused, as the control port's is.
        """
        self.assertRaises(ConfigurationError, reachable_from_elsewhere, "tcp:7752")
        self.assertRaises(ConfigurationError, reachable_from_elsewhere, "tcp:7752:interface=0.0.0.0")

    def test_options(self) -> None:
        """
        C{--http} is checked before start; C{none} is accepted.
        """
        config = self.mktemp()
        Path(config).mkdir()
        options = Options()
        options.parseOptions(["--config-dir", config, "--http", "none"])
        self.assertEqual(options["http"], "none")
        self.assertEqual(Options()["http"], DEFAULT_HTTP)
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--config-dir", config, "--http", "tcp:7752"])
        self.assertIn("refusing to listen on every interface without TLS", str(caught.exception))


class ServicesTests(SynchronousTestCase):
    """
    L{web_services} and L{HttpService}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.daemon = FakeDaemon(self.reactor)
        self.token = Path(self.mktemp())
        self.token.write_text("the-token\n")

    def test_none(self) -> None:
        """
        C{none}: the monitor only.
        """
        services = web_services(self.reactor, "none", Bus(), self.daemon, self.token)
        self.assertEqual([name for name, ignored in services], ["monitor"])
        self.assertIsInstance(services[0][1], Monitor)

    def test_listens(self) -> None:
        """
        The site listens on the endpoint when privileged start-up runs, and
        stops listening when stopped; on loopback it needs no token.
        """
        [(ignored, monitor), (name, http)] = web_services(
            self.reactor, "tcp:7752:interface=127.0.0.1", Bus(), self.daemon, self.token
        )
        assert isinstance(http, HttpService)
        self.assertEqual(name, "http")
        self.assertIsNone(http.token)
        http.privilegedStartService()
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (7752, "127.0.0.1"))
        # A memory reactor's ports say they are on every interface.
        self.assertEqual(http.status()["listening"], "http://0.0.0.0:7752/")
        http.startService()
        http.stopService()
        self.assertIsNone(http.status()["listening"])

    def test_tokenRead(self) -> None:
        """
        A listener other hosts may reach reads the control token; one that
        cannot be read stops start-up with a clear error.
        """
        endpoint = "ssl:7752:privateKey=k.pem:certKey=c.pem"
        http = HttpService.from_config(
            self.reactor, endpoint, Monitor(self.reactor, Bus(), self.daemon), self.token
        )
        self.assertEqual(http.token, "the-token")
        missing = Path(self.mktemp())
        with self.assertRaises(ConfigurationError) as caught:
            HttpService.from_config(
                self.reactor, endpoint, Monitor(self.reactor, Bus(), self.daemon), missing
            )
        self.assertIn("cannot read token file", str(caught.exception))

    def test_systemdNeedsToken(self) -> None:
        """
        A listener systemd hands over reads the control token: the page
        is not served to whoever connects.
        """
        http = HttpService.from_config(
            self.reactor,
            "systemd:domain=INET:index=0",
            Monitor(self.reactor, Bus(), self.daemon),
            self.token,
        )
        self.assertEqual(http.token, "the-token")

    def test_portInUse(self) -> None:
        """
        A port in use is logged, and the daemon goes on without its site.
        """

        class Occupied(MemoryReactorClock):
            def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> Any:
                raise CannotListenError(interface, port, OSError(98, "Address already in use"))

        reactor = Occupied()
        http = HttpService.from_config(
            reactor, DEFAULT_HTTP, Monitor(reactor, Bus(), self.daemon), self.token
        )
        messages = capture_log(self)
        http.privilegedStartService()
        self.assertIsNone(http.status()["listening"])
        [message] = [m for m in messages if m.startswith("cannot listen")]
        self.assertIn(
            "Address already in use.; the status page, /metrics and the health checks are off", message
        )
