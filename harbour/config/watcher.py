"""
The C{config} service (the seed's CONFIG SERVER and INOTIFY).

It reads every C{*.toml} file of the configuration directory, validates the
whole configuration, and publishes each topic on the bus (retained, so that
a service starting later still gets it).  It watches the directory with
C{twisted.internet.inotify}; a burst of events, such as an editor's save
through a temporary file and a rename, is coalesced into one reload.  Only
topics whose content changed are published again.  A configuration with
errors publishes C{config.error} once per bad file and changes nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet import inotify
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from zope.interface import implementer

from harbour.config.schema import Problem, load_directory
from harbour.interfaces import IBus, IConfigSource, IStatusSource

#: What a save looks like to inotify, whatever the editor.
WATCH_MASK = (
    inotify.IN_CLOSE_WRITE
    | inotify.IN_MOVED_TO
    | inotify.IN_MOVED_FROM
    | inotify.IN_CREATE
    | inotify.IN_DELETE
)

#: Quiet time after the last event of a burst before reloading.
SETTLE_SECONDS = 0.01

#: A burst that never goes quiet is still read this often.
MAX_SETTLE_SECONDS = 0.1


def is_config_name(name: str) -> bool:
    """
    @return: Whether a file name is one the configuration is read from.
    """
    return name.endswith(".toml") and not name.startswith(".")


def error_payload(file: str, problems: list[Problem]) -> dict[str, object]:
    """
    @return: The C{config.error} message for one file's problems.
    """
    return {
        "file": file,
        "line": problems[0].line,
        "errors": [{"line": p.line, "key": p.key, "message": p.message, "text": str(p)} for p in problems],
    }


@implementer(IConfigSource, IStatusSource)
@attr.s(eq=False)
class ConfigService(Service):
    """
    Publishes the configuration directory's topics and follows its changes.

    @ivar reactor: Also an L{twisted.internet.interfaces.IReactorFDSet},
        for inotify, once started.
    @ivar defaults: Per-topic defaults that replace the schema's own (the
        demo points C{manifest.base_url} at its simulator this way).
    """

    log = Logger()

    reactor: IReactorTime = attr.ib()
    directory: Path = attr.ib(converter=Path)
    bus: IBus = attr.ib()
    defaults: dict[str, dict[str, Any]] = attr.ib(factory=dict)
    settle: float = attr.ib(default=SETTLE_SECONDS)
    max_settle: float = attr.ib(default=MAX_SETTLE_SECONDS)
    _published: dict[str, object] = attr.ib(factory=dict, init=False)
    _sources: dict[str, str] = attr.ib(factory=dict, init=False)
    _problems: list[Problem] = attr.ib(factory=list, init=False)
    _warnings: list[str] = attr.ib(factory=list, init=False)
    _last_error: dict[str, object] | None = attr.ib(default=None, init=False)
    _notifier: inotify.INotify | None = attr.ib(default=None, init=False)
    _pending: IDelayedCall | None = attr.ib(default=None, init=False)
    _burst_started: float = attr.ib(default=0.0, init=False)
    _reloads: int = attr.ib(default=0, init=False)

    def startService(self) -> None:
        """
        Watch the directory, then publish every topic.
        """
        super().startService()
        self._notifier = inotify.INotify(self.reactor)
        self._notifier.startReading()
        self._notifier.watch(FilePath(str(self.directory)), mask=WATCH_MASK, callbacks=[self._changed])
        self.reload()

    def stopService(self) -> None:
        """
        Stop watching.
        """
        super().stopService()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None

    def _changed(self, ignored: object, path: FilePath, mask: int) -> None:
        if mask & inotify.IN_Q_OVERFLOW or is_config_name(path.asTextMode().basename()):
            self.schedule()

    def schedule(self) -> None:
        """
        Reload once the current burst of changes has settled.
        """
        now = self.reactor.seconds()
        if self._pending is not None and self._pending.active():
            if now - self._burst_started + self.settle <= self.max_settle:
                self._pending.reset(self.settle)
            return
        self._burst_started = now
        self._pending = self.reactor.callLater(self.settle, self._reload_now)

    def _reload_now(self) -> None:
        self._pending = None
        self.reload()

    @inlineCallbacks
    def reload(self) -> Generator[Deferred[Any], Any, tuple[list[str], list[str]]]:
        """
        See L{IConfigSource.reload}.

        @return: A L{Deferred} firing with (topics republished, problems as
            C{file:line: message} strings).
        """
        self._reloads += 1
        configuration, problems = load_directory(self.directory, self.defaults)
        self._problems = problems
        if configuration is None:
            yield self._report(problems)
            return [], [str(p) for p in problems]
        changed = {
            topic: payload
            for topic, payload in configuration.payloads().items()
            if self._published.get(topic) != payload
        }
        self._published.update(changed)
        self._sources = dict(configuration.sources)
        warnings = [str(w) for w in configuration.warnings]
        for warning in warnings:
            if warning not in self._warnings:
                self.log.warn("config warning: {warning}", warning=warning, service="config")
        self._warnings = warnings
        for topic in changed:
            self.log.info(
                "publishing {topic} from {file}",
                topic=topic,
                file=configuration.sources.get(topic, "(defaults)"),
                service="config",
            )
        yield gatherResults(
            [self.bus.publish(topic, payload, retain=True) for topic, payload in changed.items()],
            consumeErrors=True,
        )
        return sorted(changed), []

    def _report(self, problems: list[Problem]) -> Deferred[list[int]]:
        by_file: dict[str, list[Problem]] = {}
        for problem in problems:
            by_file.setdefault(problem.file, []).append(problem)
            self.log.error(
                "config error: {problem}",
                problem=str(problem),
                file=problem.file,
                service="config",
            )
        payloads = [error_payload(file, found) for file, found in by_file.items()]
        self._last_error = payloads[-1]
        return gatherResults(
            [self.bus.publish("config.error", payload) for payload in payloads],
            consumeErrors=True,
        )

    def current(self, topic: str) -> object:
        """
        @return: The payload last published for C{topic}.
        """
        return self._published.get(topic)

    def status(self) -> dict[str, object]:
        """
        See L{IStatusSource.status}.
        """
        return {
            "directory": str(self.directory),
            "sources": dict(self._sources),
            "errors": [str(p) for p in self._problems],
            "warnings": list(self._warnings),
            "last_error": self._last_error,
            "reloads": self._reloads,
        }
