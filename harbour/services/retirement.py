"""
Dropping the tables of windows the configuration no longer asks for, and
of windows whose request answers no data now where a file answered before.

Retiring a task that had a file lists that file in the store, in the same
atomic step (L{harbour.interfaces.ITaskStore.retire_with_files}).  The
hub's tables service drops the tables of the windows listed, a batch at a
time, makes the removals durable, and only then forgets them: at start,
on each C{task.retired} event, when the store comes back, and on the
janitor's round.  A process killed between a retirement and its event, or
in the middle of a drop, so loses nothing: the list is read again.  A
window brought back and parsed anew while its old tables were being
dropped is parsed once more when its entry is forgotten (the drop may
have taken its new tables).  (A worker drops what each event names, for
its own disk, if its task is still retired.)

A revision, or a changed request, fetched again and answered with no data
lists its window the same way, when its outcome is recorded
(L{harbour.interfaces.ITaskStore.finish_many}); the hub drains on each
C{task.empty} too.  Its file stays, as a retired window's does.  So does a
revision downloaded by another host into storage of its own, which parses
it there: the tables parsed from the file before are dropped where they
are, if that is the hub's (it drains on each C{table.written} from a
tables directory not its own); they would show the old revision.

A window whose request now asks for less than its file holds (an hourly
window that shrank keeps its name) is listed when a refresh gives it the
new request (L{harbour.interfaces.ITaskStore.create}): the tables parsed
from its file hold hours other windows now answer.  They are dropped at
the next drain (the janitor's round at the latest), unless the window's
new file was parsed meanwhile, which replaced them.

A parse under way when its window is retired asks, under the window's
lock and just before its commit, whether its claim still holds
(L{harbour.services.parses}): retired before it asks, it commits nothing;
after, it commits before the drop, which takes the same lock and removes
what it wrote.  (Such a parse, finding its claim gone when it records,
drops what it wrote itself too.)
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger

from harbour.dataset.write import drop_window
from harbour.errors import StoreUnavailable
from harbour.interfaces import ITaskStore
from harbour.services.coalescing import Coalesced
from harbour.services.commit import sync_file_system
from harbour.services.files import InThread
from harbour.services.parses import window_label

#: How many listed windows are read at once.
BATCH = 200


def drop_windows(tables_dir: Path, files: list[tuple[str, str]], durably: bool = False) -> int:
    """
    In a thread: remove the table files of the windows of C{files}, each a
    report and the file name of one of its windows.

    @param durably: Whether the removals must be durable when this returns
        (a power cut must not bring back files whose entries are then
        forgotten).
    @return: How many table files were removed.
    """
    removed = sum(drop_window(tables_dir, report, window_label(filename)) for report, filename in files)
    if removed and durably:
        sync_file_system(tables_dir)
    return removed


@attr.s(eq=False)
class Retirements:
    """
    Drops the tables of the retired windows the store lists (see the
    module's docstring), one drain at a time.

    @ivar tables_dropped: Called after a drain that dropped windows (their
        files removed, by it or by another process sharing the directory):
        a report may have none left, and a view over no file fails.
    @ivar storage: Gives the storage id of this host's downloads (C{""}
        if it cannot be told): the windows whose file moved away from it
        are this host's to drop.
    """

    log = Logger()

    store: ITaskStore = attr.ib()
    tables_dir: Path = attr.ib()
    in_thread: InThread = attr.ib()
    tables_dropped: Callable[[], object] = attr.ib(default=lambda: None)
    storage: Callable[[], Deferred[str]] = attr.ib(default=lambda: succeed(""))
    _drains: Coalesced = attr.ib(init=False)
    _stopping: bool = attr.ib(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._drains = Coalesced(self._drain_once)

    def drain(self) -> Deferred[None]:
        """
        Drop the tables of every window listed, now or once the drain under
        way ends.

        @return: A L{Deferred} firing once the windows listed when this was
            called are dropped, or the drain failed: it never fails (a
            failure is logged, and the next drain tries again).
        """
        return self._drains()

    def idle(self) -> Deferred[None]:
        """
        @return: A L{Deferred} firing once no drain runs.
        """
        return self._drains.idle()

    def start(self) -> None:
        """
        Drain again when asked (after L{stop}).
        """
        self._stopping = False

    def stop(self) -> Deferred[None]:
        """
        Drain no more: a drain under way ends after its current batch (the
        rest stays listed for the next start).

        @return: A L{Deferred} firing once it has.
        """
        self._stopping = True
        return self.idle()

    @inlineCallbacks
    def _drain_once(self) -> Generator[Deferred[Any], Any, None]:
        try:
            yield self._drop_listed()
        except StoreUnavailable as e:
            # The store logs its outage, and its return drains again.
            if not self._stopping:
                self.log.warn(
                    "cannot drop the tables of retired windows until the store is back: {error}",
                    error=str(e),
                    service="tables",
                )
        except Exception:
            self.log.failure(
                "cannot drop the tables of retired windows (tried again at the next retirement,"
                " on the janitor's round, when the store comes back, or at start)",
                service="tables",
            )

    @inlineCallbacks
    def _drop_listed(self) -> Generator[Deferred[Any], Any, None]:
        dropped = removed = 0
        storage = yield self.storage()
        while not self._stopping:
            listed = yield self.store.retired_tables(BATCH, storage)
            if not listed.entries:
                break
            if listed.files:
                # Durably: the entries are forgotten next.
                removed += yield self.in_thread(drop_windows, self.tables_dir, list(listed.files), True)
                dropped += len(listed.files)
            yield self.store.forget_retired_tables(listed.entries, listed.dropped)
        self._removed(removed, dropped)
        if dropped:
            self.tables_dropped()

    def drop(self, files: list[tuple[str, str]]) -> Deferred[None]:
        """
        Drop the tables of the windows of C{files} (each a report and the
        file name of one of its windows) at once, as a worker does for the
        windows a C{task.retired} names; it never fails (a failure is
        logged).
        """
        d = self.in_thread(drop_windows, self.tables_dir, files)
        return d.addCallbacks(
            lambda removed: self._removed(removed, len(files)),
            lambda failure: self.log.failure("cannot drop retired windows", failure, service="tables"),
        )

    def _removed(self, removed: int, windows: int) -> None:
        if removed:
            self.log.info(
                "removed {removed} table files of {windows} windows retired, resized, answering no data"
                " now, or parsed anew on another host",
                removed=removed,
                windows=windows,
                service="tables",
            )
