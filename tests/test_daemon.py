"""
System tests of C{twistd harbour}: a real daemon with its embedded
redis-server, configured by files and steered over its control port.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from harbour.amp import commands
from harbour.amp.client import RemoteBus, connect
from harbour.amp.server import read_token
from harbour.processes import process_alive
from harbour.service import lock_data_dir
from harbour.test.helpers import short_directory
from tests.processes import (
    PATIENCE,
    control_endpoint,
    end_process,
    harbour_command,
    program,
    redis_started,
    save,
    servers_in,
    spawn,
    start_harbour,
)

#: The .tac file of C{twistd -y}, configured by C{HARBOUR_*} variables.
TAC = Path(__file__).parents[1] / "harbour.tac"


class DaemonTests(TestCase):
    """
    One daemon per test, stopped (and checked to stop cleanly) at the end.
    """

    timeout = 120

    async def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.directory = short_directory(self)
        (self.directory / "config").mkdir()
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        self.daemon = start_harbour(reactor, self.directory)
        self.addCleanup(self.stop_daemon)
        self.redis_pid = await redis_started(self.daemon)
        await self.daemon.wait_for("store ready")
        await self.daemon.wait_for("control port listening")
        self.client = await connect(reactor, control_endpoint(self.directory), self.token())
        self.addCleanup(self.client.transport.loseConnection)

    def token(self) -> str:
        return read_token(self.directory / "data" / "amp.token")

    def write(self, name: str, text: str) -> None:
        save(self.directory / "config" / name, text)

    async def stop_daemon(self) -> None:
        if not self.daemon.ended.called:
            self.daemon.signal("TERM")
            await self.daemon.ended

    async def next_event(self, pattern: str, predicate=lambda e: True):
        arrived: Deferred = Deferred()

        def check(event):
            if predicate(event) and not arrived.called:
                arrived.callback(event)

        await RemoteBus(self.client).subscribe(pattern, check)
        return arrived.addTimeout(PATIENCE, self.reactor)

    async def test_saveReachesSubscriber(self) -> None:
        """
        Saving a config file publishes the changed topic to a subscriber in
        another process.
        """
        arrived = await self.next_event("work", lambda e: e.payload["max_attempts"] == 5)
        self.write("work.toml", "[work]\nmax_attempts = 5\n")
        event = await arrived
        self.assertEqual(event.payload["lease_seconds"], 300.0)

    async def test_malformedSaveKeepsOldConfig(self) -> None:
        """
        A malformed save publishes C{config.error}; the old configuration
        stays in force, as C{Status} shows.
        """
        arrived = await self.next_event("config.error")
        self.write("work.toml", "[work]\nmax_attempts = 'many'\n")
        event = await arrived
        self.assertEqual(event.payload["file"], "work.toml")
        self.assertIn("must be a whole number", event.payload["errors"][0]["message"])
        answer = await self.client.callRemote(commands.Status)
        config = json.loads(answer["status"])["services"]["config"]
        self.assertEqual(config["sources"], {"work": "work.toml"})
        self.assertEqual(len(config["errors"]), 1)
        retained = await self.next_event("work")
        self.assertEqual((await retained).payload["max_attempts"], 3)

    async def test_sigtermCleanExit(self) -> None:
        """
        SIGTERM stops the daemon cleanly (twistd reports the signal as its
        exit status) and leaves no redis-server behind.
        """
        pid = self.redis_pid
        self.assertTrue(process_alive(pid))
        self.daemon.signal("TERM")
        await self.daemon.ended
        self.assertEqual(self.daemon.signalled, signal.SIGTERM)
        self.assertIn("Server Shut Down", self.daemon.output())
        self.assertNotIn("Traceback", self.daemon.output())
        self.assertFalse(process_alive(pid))

    async def test_sighupReloads(self) -> None:
        """
        SIGHUP makes the daemon read its configuration again, as
        C{harbourctl reload} does, and it runs on; SIGTERM then stops it
        cleanly.
        """
        self.daemon.signal("HUP")
        await self.daemon.wait_for("Received SIGHUP")
        await self.daemon.wait_for("configuration reloaded on SIGHUP")
        answer = await self.client.callRemote(commands.Status)
        self.assertIn("config", json.loads(answer["status"])["services"])
        self.daemon.signal("TERM")
        await self.daemon.ended
        self.assertEqual(self.daemon.signalled, signal.SIGTERM)
        self.assertFalse(process_alive(self.redis_pid))

    async def test_secondDaemonRefused(self) -> None:
        """
        A second daemonized hub on the same data directory is refused
        before it forks: the launching command says why and exits 1, and
        leaves no pid file; the first runs on.
        """
        pidfile = self.directory / "second.pid"
        launcher = spawn(
            self.reactor,
            [
                program("twistd"),
                f"--pidfile={pidfile}",
                f"--logfile={self.directory / 'second.log'}",
                "harbour",
                "--http",
                "none",
                "--config-dir",
                str(self.directory / "config"),
                "--data-dir",
                str(self.directory / "data"),
                "--amp",
                f"unix:{self.directory / 'second.sock'}",
            ],
            self.directory,
        )
        self.assertEqual(await launcher.end_within(PATIENCE), 1, launcher.output())
        self.assertIn("is in use by another harbour hub", launcher.output())
        self.assertFalse(pidfile.exists())
        answer = await self.client.callRemote(commands.Status)
        self.assertIn("store", json.loads(answer["status"])["services"])

    async def test_killedDaemonRestarts(self) -> None:
        """
        After C{kill -9}, the redis-server left behind is replaced by the
        next start, and the data written before survives.
        """
        await RemoteBus(self.client).publish("note", 1)
        old_redis = self.redis_pid
        self.daemon.signal("KILL")
        await self.daemon.ended
        self.assertTrue(process_alive(old_redis))  # orphaned, still running
        self.daemon = start_harbour(self.reactor, self.directory)
        await self.daemon.wait_for("left behind by an earlier harbour")
        await self.daemon.wait_for("control port listening")
        await self.daemon.wait_for("store ready")
        self.assertFalse(process_alive(old_redis))

    async def test_harbourctl(self) -> None:
        """
        C{harbourctl} talks to the daemon: every subcommand exits 0 when it
        works, 1 when the daemon refuses (a configuration topic cannot be
        published), 2 for a usage error (an C{ssl:} endpoint that checks
        no certificate), and 3 for a wrong token; C{watch} exits 0 on
        Ctrl-C.
        """
        ctl = [
            program("harbourctl"),
            "--connect",
            control_endpoint(self.directory),
            "--token-file",
            str(self.directory / "data" / "amp.token"),
        ]
        status = spawn(self.reactor, ctl + ["status", "--json"], self.directory)
        self.assertEqual(await status.ended, 0, status.output())
        self.assertIn("store", json.loads(status.output())["services"])
        publish = spawn(self.reactor, ctl + ["publish", "x", '{"a": 1}'], self.directory)
        self.assertEqual(await publish.ended, 0, publish.output())
        self.assertIn("delivered to 0", publish.output())
        reload = spawn(self.reactor, ctl + ["reload"], self.directory)
        self.assertEqual(await reload.ended, 0, reload.output())
        for args, code in [
            (["refresh"], 0),
            (["pause", "download"], 0),
            (["resume"], 0),
            (["tasks", "--state", "pending"], 0),
            (["tasks", "--state", "bogus"], 2),
            (["retry"], 0),
            (["pause", "bus"], 1),
            (["tasks", "--limit", "x"], 2),
        ]:
            run = spawn(self.reactor, ctl + args, self.directory)
            self.assertEqual(await run.ended, code, f"{args}: {run.output()}")
        owned = spawn(self.reactor, ctl + ["publish", "manifest", "{}"], self.directory)
        self.assertEqual(await owned.ended, 1, owned.output())
        self.assertIn("topic manifest belongs to the configuration directory", owned.output())
        unchecked = ["--connect", "ssl:host=127.0.0.1:port=1"]
        insecure = spawn(self.reactor, [*ctl, *unchecked, "status"], self.directory)
        self.assertEqual(await insecure.ended, 2, insecure.output())
        self.assertIn("caCertsDir", insecure.output())
        after = len(self.daemon.lines)
        subscriber = spawn(self.reactor, ctl + ["subscribe", "news.*"], self.directory)
        await self.daemon.wait_for("authenticated a connection", after=after)
        for _attempt in range(1000):  # until the subscription is in force
            if await RemoteBus(self.client).publish("news.today", {"n": 1}):
                break
        else:
            self.fail("harbourctl subscribe never subscribed")
        line = await subscriber.wait_for('"topic": "news.today"')
        self.assertEqual(json.loads(line), {"topic": "news.today", "payload": {"n": 1}})
        subscriber.signal("INT")
        self.assertEqual(await subscriber.ended, 0, subscriber.output())
        after = len(self.daemon.lines)
        watch = spawn(self.reactor, ctl + ["watch"], self.directory)
        await self.daemon.wait_for("authenticated a connection", after=after)
        watch.signal("INT")
        self.assertEqual(await watch.ended, 0, watch.output())
        bad = self.directory / "bad.token"
        bad.write_text("nope\n")
        refused = spawn(self.reactor, ctl[:3] + ["--token-file", str(bad), "status"], self.directory)
        self.assertEqual(await refused.ended, 3, refused.output())
        self.assertIn("not authorised", refused.output())


class StartupErrorTests(TestCase):
    """
    Mistakes that stop C{twistd harbour} before it starts.
    """

    async def test_missingConfigDirectory(self) -> None:
        """
        A missing config directory is a usage message, not a traceback.
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        daemon = start_harbour(reactor, directory)
        self.assertNotEqual(await daemon.ended, 0)
        self.assertIn("does not exist", daemon.output())
        self.assertNotIn("Traceback", daemon.output())

    async def test_tacRefusedInOneLine(self) -> None:
        """
        C{twistd -y harbour.tac} on a data directory another hub holds, or
        with a mistake in its variables, says why in one line, as C{twistd
        harbour} does, and exits 1; no traceback comes before it.
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        (directory / "config").mkdir()
        (directory / "data").mkdir()
        self.addCleanup(os.close, lock_data_dir(directory / "data"))
        common = {"HARBOUR_AMP": f"unix:{directory / 'amp.sock'}", "HARBOUR_HTTP": "none"}
        for variables, said in [
            (
                {"HARBOUR_CONFIG_DIR": "config", "HARBOUR_DATA_DIR": "data"},
                (
                    f"harbour: --data-dir {directory / 'data'} is in use by another harbour hub"
                    " (its lock harbour.lock is held)"
                ),
            ),
            (
                {"HARBOUR_CONFIG_DIR": "missing"},
                "harbour: configuration directory missing does not exist: create it or pass --config-dir",
            ),
        ]:
            daemon = spawn(
                reactor,
                [program("twistd"), "--nodaemon", "--pidfile=", "-y", str(TAC)],
                directory,
                {**common, **variables},
            )
            self.assertEqual(await daemon.ended, 1, daemon.output())
            self.assertEqual(daemon.output().strip(), said)

    async def test_publicListenerRefused(self) -> None:
        """
        A plain TCP listener on an interface other hosts can reach is
        refused, pointing at ssl:.  (On an address this machine does not
        have, so that the daemon could not listen there even if it took
        the endpoint: a test listens on loopback only.  "Every interface"
        is refused by the same check, tested without a process.)
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        (directory / "config").mkdir()
        daemon = spawn(
            reactor,
            harbour_command(
                "--config-dir",
                str(directory / "config"),
                "--amp",
                "tcp:0:interface=192.0.2.1",
            ),
            directory,
        )
        self.assertNotEqual(await daemon.ended, 0)
        self.assertIn("refusing to listen on 192.0.2.1 without TLS", daemon.output())
        self.assertIn("use an ssl: endpoint", daemon.output())

    async def test_storeCannotStart(self) -> None:
        """
        When the embedded Redis cannot start, the daemon says why, in one
        line, and exits instead of running without a store.
        """
        from twisted.internet import reactor

        directory = short_directory(self)
        (directory / "config").mkdir()
        deep = directory / ("d" * 90)
        daemon = spawn(
            reactor,
            harbour_command(
                "--config-dir",
                str(directory / "config"),
                "--data-dir",
                str(deep),
                "--amp",
                f"unix:{directory / 'amp.sock'}",
            ),
            directory,
        )
        self.assertNotEqual(await daemon.end_within(PATIENCE), 0, daemon.output())
        said = [line for line in daemon.lines if "harbour cannot run: store: " in line]
        self.assertEqual(len(said), 1, daemon.output())
        self.assertIn("use a shorter --data-dir", said[0])
        # The one line, without a traceback before it.
        self.assertNotIn("Traceback", daemon.output())

    def control_port_taken(self) -> tuple[Path, int, list[str]]:
        """
        @return: A directory with an empty configuration, a port on
            127.0.0.1 that something else listens on, and the options of a
            daemon of that directory whose control port is that one.
        """
        from twisted.internet import reactor
        from twisted.internet.protocol import Factory

        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        directory = short_directory(self)
        (directory / "config").mkdir()
        options = [
            "--config-dir",
            str(directory / "config"),
            "--data-dir",
            str(directory / "data"),
            "--amp",
            f"tcp:{port}:interface=127.0.0.1",
        ]
        return directory, port, options

    async def test_controlPortTaken(self) -> None:
        """
        When the control port is in use, the daemon says so in one line
        naming the port, exits non-zero (twistd, in the foreground, prints
        the exception too), and leaves no redis-server behind.
        """
        from twisted.internet import reactor

        directory, port, options = self.control_port_taken()
        daemon = spawn(
            reactor,
            harbour_command(*options),
            directory,
        )
        self.addCleanup(
            lambda: None if daemon.has_ended else Deferred.fromCoroutine(end_process(daemon, what="harbour"))
        )
        self.assertNotEqual(await daemon.end_within(PATIENCE), 0, daemon.output())
        said = [line for line in daemon.lines if "#critical] harbour cannot run" in line]
        self.assertEqual(len(said), 1, daemon.output())
        self.assertIn(f"harbour cannot run: amp: cannot listen on tcp:{port}:", said[0])
        self.assertIn("Address already in use", said[0])
        self.assertIn("StartupFailed: amp: Address already in use, on tcp:", daemon.output())
        self.assertEqual(servers_in(directory / "data" / "redis"), [])

    async def test_controlPortTakenDaemonized(self) -> None:
        """
        Daemonized, a daemon that cannot listen on its control port makes
        the launcher say why and exit non-zero at once (it waits for the
        daemon to start), and leaves no pid file.
        """
        from twisted.internet import reactor

        directory, port, options = self.control_port_taken()
        pidfile = directory / "harbour.pid"
        launcher = spawn(
            reactor,
            [
                program("twistd"),
                f"--pidfile={pidfile}",
                f"--logfile={directory / 'harbour.log'}",
                "harbour",
                "--http",
                "none",
                *options,
            ],
            directory,
        )
        self.addCleanup(
            lambda: (
                None if launcher.has_ended else Deferred.fromCoroutine(end_process(launcher, what="twistd"))
            )
        )
        self.assertNotEqual(await launcher.end_within(PATIENCE), 0, launcher.output())
        # Whole: twistd tells the launcher 100 bytes of it.
        self.assertIn(
            f"StartupFailed: amp: Address already in use, on tcp:{port}:interface=127.0.0.1'",
            launcher.output(),
        )
        self.assertFalse(pidfile.exists())


class TLSDaemonTests(TestCase):
    """
    The daemon's control port over TLS, reached by C{harbourctl}.
    """

    timeout = 60

    async def test_harbourctlOverTLS(self) -> None:
        """
        C{twistd harbour --amp ssl:...} serves C{harbourctl --connect ssl:...};
        a plain TCP client on the same port gets nothing.
        """
        import re

        from twisted.internet import reactor

        from harbour.test.helpers import self_signed

        directory = short_directory(self)
        (directory / "config").mkdir()
        cert, key = self_signed(directory / "cas")
        daemon = spawn(
            reactor,
            harbour_command(
                "--config-dir",
                str(directory / "config"),
                "--data-dir",
                str(directory / "data"),
                "--amp",
                f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            ),
            directory,
        )
        self.addCleanup(lambda: daemon.ended.called or (daemon.signal("TERM"), daemon.ended)[1])
        line = await daemon.wait_for("control port listening")
        port = int(re.search(r"port=(\d+)", line).group(1))
        await daemon.wait_for("store ready")
        token = ["--token-file", str(directory / "data" / "amp.token")]
        status = spawn(
            reactor,
            [
                program("harbourctl"),
                "--connect",
                f"ssl:host=127.0.0.1:port={port}:caCertsDir={directory / 'cas'}",
                *token,
                "status",
            ],
            directory,
        )
        self.assertEqual(await status.ended, 0, status.output())
        self.assertIn("harbour", status.output())
        plain = spawn(
            reactor,
            [program("harbourctl"), "--connect", f"tcp:127.0.0.1:{port}", *token, "status"],
            directory,
        )
        self.assertNotEqual(await plain.ended, 0)
