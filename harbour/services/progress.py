"""
Each report's progress in the log, as it changes: what a person watching
C{twistd harbour} wants to see.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attr
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from harbour.errors import StoreUnavailable
from harbour.interfaces import ITaskStore
from harbour.store.tasks import DOWNLOADED, DOWNLOADING, EMPTY, FAILED, completion


@attr.s(eq=False)
class ProgressLog:
    """
    Logs a line per report whose counts changed since the last call.
    """

    log = Logger()

    store: ITaskStore = attr.ib()
    _last: dict[str, dict[str, int]] = attr.ib(factory=dict, init=False)

    @inlineCallbacks
    def __call__(self) -> Generator[Deferred[Any], Any, None]:
        """
        Log what changed (nothing while the store is away).
        """
        try:
            counts = yield self.store.counts()
        except StoreUnavailable:
            return
        for report, states in counts.items():
            if states == self._last.get(report):
                continue
            self._last[report] = states
            finished, total = completion(states)
            self.log.info(
                "{report}: {finished}/{total} done ({downloaded} downloaded, {empty} empty, "
                "{failed} failed, {downloading} in flight)",
                report=report,
                finished=finished,
                total=total,
                downloaded=states.get(DOWNLOADED, 0),
                empty=states.get(EMPTY, 0),
                failed=states.get(FAILED, 0),
                downloading=states.get(DOWNLOADING, 0),
                service="work",
            )
