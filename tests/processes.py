"""
Running harbour's real programs from system tests, and waiting for what
they say rather than for time to pass.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

from harbour.store.tasks import FINAL_STATES

#: How long a system test waits for one thing a process should say or do.
PATIENCE = 30.0


def task_states(status: dict) -> tuple[int, int]:
    """
    @return: How many tasks a C{Status} document counts, and how many of
        them are final (none while the store is not answering).
    """
    states: Counter = Counter()
    for per_report in status["services"]["work"]["tasks"].values():
        if isinstance(per_report, dict):
            states.update(per_report)
    return sum(states.values()), sum(states[s] for s in FINAL_STATES)


def program(name: str) -> str:
    """
    @return: The path of a console script installed beside this Python.
    """
    return os.path.join(os.path.dirname(sys.executable), name)


class WatchedProcess(ProcessProtocol):
    """
    A child process whose output lines can be waited for.
    """

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.lines: list[str] = []
        self.ended: Deferred = Deferred()
        self._buffer = b""
        self._waiting: list[tuple[str, Deferred]] = []
        self.signalled: int | None = None

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            for entry in list(self._waiting):
                if entry[0] in line:
                    self._waiting.remove(entry)
                    entry[1].callback(line)

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        for text, d in self._waiting:
            d.errback(AssertionError(f"process ended before saying {text!r}:\n" + self.output()))
        self._waiting = []
        self.signalled = reason.value.signal
        self.ended.callback(reason.value.exitCode)

    def output(self) -> str:
        """
        Everything it said so far.
        """
        return "\n".join(self.lines)

    def wait_for(self, text: str, after: int = 0) -> Deferred:
        """
        @param after: Only lines from this index on count.
        @return: A L{Deferred} firing with the first line containing
            C{text}, failing if the process ends or after L{PATIENCE}.
        """
        for line in self.lines[after:]:
            if text in line:
                d: Deferred = Deferred()
                d.callback(line)
                return d
        d = Deferred()
        self._waiting.append((text, d))
        return d.addTimeout(PATIENCE, self.reactor)

    def signal(self, name: str) -> None:
        """
        Send a signal by name (C{"TERM"}, C{"KILL"}).
        """
        self.transport.signalProcess(name)


def spawn(reactor, args: list[str], cwd: Path, env: dict | None = None) -> WatchedProcess:
    """
    Start a program and watch it.
    """
    process = WatchedProcess(reactor)
    environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    reactor.spawnProcess(process, args[0], args, env=environment, path=str(cwd))
    return process


def start_harbour(reactor, directory: Path, *extra: str) -> WatchedProcess:
    """
    Start C{twistd -n harbour} with its config, data and control socket in
    C{directory}.
    """
    args = harbour_command(
        "--config-dir",
        str(directory / "config"),
        "--data-dir",
        str(directory / "data"),
        "--amp",
        f"unix:{directory / 'amp.sock'}",
        *extra,
    )
    return spawn(reactor, args, directory)


def harbour_command(*options: str) -> list[str]:
    """
    @return: The command line of C{twistd -n harbour} in the foreground,
        with no pid file, and C{options}.
    """
    # No fixed port for the status page: a test that wants it passes its own
    # --http, which wins as the later option.
    return [program("twistd"), "--nodaemon", "--pidfile=", "harbour", "--http", "none", *options]


def control_endpoint(directory: Path) -> str:
    """
    The client endpoint of a harbour started by L{start_harbour}.
    """
    return f"unix:{directory / 'amp.sock'}"


def save(path: Path, text: str) -> None:
    """
    Save a file as editors do: write a temporary file, rename it over.
    """
    temporary = path.with_name("." + path.name + ".tmp")
    temporary.write_text(text)
    os.rename(temporary, path)


async def redis_started(daemon: WatchedProcess) -> int:
    """
    @return: The pid of the embedded redis-server C{daemon} started.
    """
    line = await daemon.wait_for(" ready on ")
    return int(line.split("redis-server ")[1].split()[0])


async def stop_harbour(daemon: WatchedProcess | None, client=None) -> None:
    """
    Close C{client}'s connection and stop C{daemon} with SIGTERM, waiting
    until it has exited (either may be L{None}, or already gone).
    """
    if client is not None and client.transport is not None and client.transport.connected:
        client.transport.loseConnection()
    if daemon is not None and not daemon.ended.called:
        daemon.signal("TERM")
        await daemon.ended
