"""
Running harbour's real programs from system tests, and waiting for what
they say rather than for time to pass.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol

from harbour.store.tasks import FINAL_STATES

#: How long a system test waits for one thing a process should say or do.
PATIENCE = 30.0

#: How long a process may take to end after it is asked to (SIGTERM)
#: before it is killed (SIGKILL), and then to end once killed.
STOP_PATIENCE = 60.0


class DidNotEnd(Exception):
    """
    A process did not end within its time after a signal: it was killed
    (or, if even that did not end it, left as it was).
    """


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
        self._ending: list[Deferred] = []
        self.signalled: int | None = None
        #: Whether it has ended (L{ended} may have been given up on).
        self.has_ended = False
        self.exit_code: int | None = None

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
        self.has_ended = True
        self.exit_code = reason.value.exitCode
        # Those waiting on ended first, as they were there first: one told
        # by end_within may change what they would see (a soak's worker
        # ended by the soak).
        self.ended.callback(reason.value.exitCode)
        for d in self._ending:
            # One given up on (timed out) is called already.
            if not d.called:
                d.callback(self.exit_code)
        self._ending = []

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

    def end_within(self, patience: float) -> Deferred:
        """
        @return: A L{Deferred} firing with the exit code once the process
            has ended (L{None} if a signal ended it), or failing with
            L{TimeoutError} after C{patience} seconds; unlike L{ended}, a
            new one for each caller, which giving up on leaves L{ended} as
            it is.
        """
        d: Deferred = Deferred()
        if self.has_ended:
            d.callback(self.exit_code)
            return d
        self._ending.append(d)
        return d.addTimeout(patience, self.reactor)

    def signal(self, name: str) -> None:
        """
        Send a signal by name (C{"TERM"}, C{"KILL"}).
        """
        self.transport.signalProcess(name)

    @property
    def pid(self) -> int | None:
        """
        The process's id (L{None} once it has ended).
        """
        return self.transport.pid if self.transport is not None else None


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
    return redis_pid(await daemon.wait_for(" ready on "))


def redis_pid(line: str) -> int:
    """
    @return: The pid of the embedded redis-server that harbour's log line
        C{line} (the one saying it is C{" ready on "} its socket) names.
    """
    return int(line.split("redis-server ")[1].split()[0])


async def end_process(
    process: WatchedProcess, name: str = "TERM", patience: float = STOP_PATIENCE, what: str = "a process"
) -> None:
    """
    Send C{process} the signal C{name} and wait until it has ended; one
    still running after C{patience} seconds is killed (SIGKILL), which is a
    failure.

    @param what: What the process is, for the failure's message.
    @raise DidNotEnd: if it had to be killed, or did not end even then.
    """
    pid = process.pid
    try:
        if process.has_ended:
            return
        process.signal(name)
        await process.end_within(patience)
        return
    except ProcessExitedAlready:
        # It ended as the signal went; its end is on the way.
        await process.end_within(patience)
        return
    except TimeoutError:
        pass
    said = f"{what} (pid {pid}) did not end within {patience:g} s of SIG{name}"
    try:
        process.signal("KILL")
        await process.end_within(patience)
    except ProcessExitedAlready:
        pass
    except TimeoutError:
        raise DidNotEnd(f"{said}, nor within {patience:g} s of SIGKILL") from None
    raise DidNotEnd(f"{said}: killed")


def embedded_redis(daemon: WatchedProcess) -> int | None:
    """
    @return: The pid of the embedded redis-server C{daemon} said it
        started last, if any (see L{redis_started}).
    """
    for line in reversed(daemon.lines):
        if " ready on " in line and "redis-server " in line:
            return int(line.split("redis-server ")[1].split()[0])
    return None


def servers_in(directory: Path) -> list[int]:
    """
    @return: The pids of the redis-servers working in C{directory} (an
        embedded one's, whose C{--dir} it is).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"redis-server" in (entry / "cmdline").read_bytes() and os.path.samefile(
                entry / "cwd", directory
            ):
                found.append(int(entry.name))
        except OSError:
            continue  # gone, not ours to read, or no such directory
    return found


def kill_if_redis(pid: int) -> bool:
    """
    Kill process C{pid} (SIGKILL) if it is a redis-server: what a daemon
    killed without stopping leaves of its embedded one.

    @return: Whether it was one, and killed.
    """
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"redis-server" not in command:
        # Gone, and its pid perhaps another's now.
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


async def stop_harbour(daemon: WatchedProcess | None, client=None, patience: float = STOP_PATIENCE) -> None:
    """
    Close C{client}'s connection and stop C{daemon} with SIGTERM, waiting
    until it has exited (either may be L{None}, or already gone).  A daemon
    still running after C{patience} seconds is killed, and its embedded
    redis-server with it (it would outlive the daemon otherwise).

    @raise DidNotEnd: if the daemon had to be killed.
    """
    if client is not None and client.transport is not None and client.transport.connected:
        client.transport.loseConnection()
    if daemon is None:
        return
    try:
        await end_process(daemon, "TERM", patience, "harbour")
    except DidNotEnd:
        redis = embedded_redis(daemon)
        if redis is not None:
            kill_if_redis(redis)
        raise
