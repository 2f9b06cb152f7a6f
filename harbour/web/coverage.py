"""
The coverage map: for each report, the state of each trading day in its
range, from the manifest's requests and the states of their tasks.

A day's state comes from the tasks of the requests whose windows cover it:

 - C{failed}: one of them failed;
 - C{pending}: none has ended yet (or the day has no task yet);
 - C{partly}: some have ended, some are still to fetch;
 - C{empty}: all ended, and OASIS had data for none of them;
 - C{revised}: all ended, and OASIS revised the data of one since it was
   first fetched (its file was fetched again): only OASIS's revisions
   count (L{harbour.store.tasks.Task.revised}), not the other fetches
   again that raise a task's C{revision} (a day ahead fetched again each
   day, a changed definition);
 - C{downloaded}: all ended, with data.

The task states are loaded from the store, then kept current from the
bus's C{task.*} events; only those of the files on the map are kept.
"""

from __future__ import annotations

import datetime
import secrets
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import attr
from twisted.internet.defer import Deferred, inlineCallbacks

from harbour.interfaces import ITaskStore
from harbour.oasis.requests import ReportURL
from harbour.store.tasks import DOWNLOADED, DOWNLOADING, EMPTY, FAILED, PENDING

#: The one-letter code of each day state, in the legend's order.
DAY_DOWNLOADED = "D"
DAY_REVISED = "R"
DAY_PARTLY = "P"
DAY_EMPTY = "E"
DAY_PENDING = "W"
DAY_FAILED = "F"
#: A day in a report's range that no request covers.
DAY_NONE = "-"

#: (code, name, meaning) of every day state: the legend.
LEGEND: Sequence[tuple[str, str, str]] = (
    (DAY_DOWNLOADED, "downloaded", "every file of the day is in"),
    (DAY_REVISED, "revised", "in, and fetched again since because OASIS revised it"),
    (DAY_PARTLY, "partly", "some files in, others still to fetch"),
    (DAY_EMPTY, "empty", "OASIS had no data for the day"),
    (DAY_PENDING, "pending", "not fetched yet"),
    (DAY_FAILED, "failed", "a file of the day failed"),
)

#: How many tasks one read of the store returns.
PAGE = 2_000

#: How many requests, or task states, one step of L{Coverage.laying_out}
#: handles when it is not laying out a row (a row is one step): a few
#: milliseconds of the reactor.
STEP = 10_000

_FINAL_DAYS = frozenset({DAY_DOWNLOADED, DAY_REVISED, DAY_EMPTY})
_INSTANT = datetime.timedelta(microseconds=1)
_EVENT_STATES: Mapping[str, str] = {"task.done": DOWNLOADED, "task.empty": EMPTY, "task.failed": FAILED}

#: The bus topics L{Coverage.apply} follows: the others change nothing.
APPLIED = frozenset({*_EVENT_STATES, "task.revised"})


@attr.s(frozen=True, auto_attribs=True)
class DayCounts:
    """
    The requests of one report's day, by the state of their tasks.
    """

    downloaded: int = 0
    empty: int = 0
    pending: int = 0
    failed: int = 0
    revised: int = 0

    @property
    def state(self) -> str:
        """
        The day's one-letter state (see the module's description).
        """
        ended = self.downloaded + self.empty
        if self.failed:
            return DAY_FAILED
        if not ended:
            return DAY_PENDING if self.pending else DAY_NONE
        if self.pending:
            return DAY_PARTLY
        if not self.downloaded:
            return DAY_EMPTY
        return DAY_REVISED if self.revised else DAY_DOWNLOADED

    def to_json(self) -> list[int]:
        """
        @return: C{[downloaded, empty, pending, failed]}.
        """
        return [self.downloaded, self.empty, self.pending, self.failed]


@attr.s(frozen=True, auto_attribs=True)
class Row:
    """
    One report's line of the map.

    @ivar first: Its first trading day: C{states[i]} is that of C{first + i}
        days.
    @ivar states: One L{LEGEND} code per day.
    @ivar counts: C{{day index: [downloaded, empty, pending, failed]}} for
        the days with other than exactly one request (the others' counts
        follow from their state); days with the same counts share a list.
    """

    report: str
    first: datetime.date
    states: str
    counts: Mapping[int, list[int]]

    def to_json(self) -> dict[str, Any]:
        """
        @return: The row as the page's script reads it.
        """
        return {
            "report": self.report,
            "first": self.first.isoformat(),
            "states": self.states,
            "counts": {str(k): v for k, v in self.counts.items()},
        }


@attr.s(eq=False)
class _Line:
    """
    One report's requests by day, and the states last computed for them.
    """

    first: datetime.date = attr.ib()
    #: Per day: the file names of the requests covering it.  Tuples, not
    #: lists: the garbage collector stops tracking a tuple of strings, and
    #: a million lists it tracks made it take a third of a second over
    #: each of the full collections that laying them out set off.
    files: list[tuple[str, ...]] = attr.ib()
    #: Per day: the POSIX time its last window ends.
    ends: list[float] = attr.ib()
    cells: list[DayCounts] = attr.ib()
    #: Made from C{cells} when asked for, and forgotten whenever they change.
    row: Row | None = attr.ib(default=None)
    #: C{{code: days}} of C{row}, made with it.
    days: Mapping[str, int] = attr.ib(factory=dict)


@attr.s(frozen=True, auto_attribs=True)
class _Move:
    """
    How a row laid out for some requests is changed in place for others:
    it loses the first C{head} of them and gains C{added} after the rest.
    """

    head: int
    #: (file name, ordinals of its first and last days, POSIX time its
    #: window ends) of each request added (as L{Coverage._spans}).
    added: list[tuple[str, int, int, float]]


@attr.s(eq=False)
class _Plan:
    """
    What laying a map out for new requests changes.

    @ivar requests: The new requests.
    @ivar grouped: C{{report: its requests}}.
    @ivar gone: The reports on the map that are no longer asked for.
    @ivar moves: For each report whose requests changed, how its row is
        changed in place, or L{None} if it is laid out anew.
    @ivar days: See L{Coverage._spans}.
    """

    requests: Sequence[ReportURL] = attr.ib()
    grouped: dict[str, list[ReportURL]] = attr.ib()
    gone: list[str] = attr.ib()
    moves: dict[str, _Move | None] = attr.ib()
    days: dict[datetime.datetime, int] = attr.ib()

    @property
    def anew(self) -> int:
        """
        How many requests the rows laid out anew hold.
        """
        return sum(len(self.grouped[report]) for report, move in self.moves.items() if move is None)


_T = TypeVar("_T")


def _drain(steps: Generator[None, None, _T]) -> _T:
    """
    @return: The value of C{steps}, run to their end at once.
    """
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(_T, done.value)


@attr.s(eq=False)
class Coverage:
    """
    The coverage map, kept current as tasks move.

    @ivar zone: The zone whose days are trading days (see L{set_zone}).
    @ivar version: Raised by every change; L{changed_since} answers what
        changed after a version.
    @ivar epoch: This map's own, made anew with it (so in every process):
        the versions of a map made before count from 0 as its own do, and
        L{stamp} tells them apart.
    """

    zone: ZoneInfo = attr.ib(factory=lambda: ZoneInfo("America/Los_Angeles"))
    epoch: str = attr.ib(factory=lambda: secrets.token_hex(4), kw_only=True)
    version: int = attr.ib(default=0, init=False)
    #: The version at which reports last came or went (a row whose range
    #: changed is only a changed row: the page redraws rows whole).
    layout_version: int = attr.ib(default=0, init=False)
    _requests: Sequence[ReportURL] | None = attr.ib(default=None, init=False)
    #: {report: its requests, as last laid out}
    _asked: dict[str, list[ReportURL]] = attr.ib(factory=dict, init=False)
    _lines: dict[str, _Line] = attr.ib(factory=dict, init=False)
    #: {file name: (report, ordinals of the first and last trading days it
    #: covers, POSIX time its window ends)}: days as ordinals, not as
    #: indexes in the row, so that a row that loses days at its start
    #: keeps the others' as they are.
    _where: dict[str, tuple[str, int, int, float]] = attr.ib(factory=dict, init=False)
    #: {file name: (task state, times OASIS revised it)}, of the files on
    #: the map only:
    #: names of retired windows, removed reports or anyone's events would
    #: otherwise pile up for as long as the daemon runs.
    _tasks: dict[str, tuple[str, int]] = attr.ib(factory=dict, init=False)
    _touched: dict[str, int] = attr.ib(factory=dict, init=False)
    #: One L{DayCounts} per tally: most days share theirs (a map of 100
    #: reports by 1,200 days holds a handful of distinct ones).
    _counts: dict[tuple[int, ...], DayCounts] = attr.ib(factory=dict, init=False)
    #: {counts: their JSON}, shared by every row (see L{_json}).
    _lists: dict[DayCounts, list[int]] = attr.ib(factory=dict, init=False)
    #: The token of the L{laying_out} under way, if any.
    _laying: object | None = attr.ib(default=None, init=False)

    @property
    def requested(self) -> Sequence[ReportURL] | None:
        """
        The requests the map was last laid out for, or is being laid out
        for by L{laying_out}.
        """
        return self._requests

    def set_requests(self, requests: Sequence[ReportURL], most: int | None = None) -> bool:
        """
        Lay the map out for C{requests}.

        The manifest's list is made again every minute, mostly the same:
        only the rows of reports whose requests changed are laid out again
        (and marked changed), and the layout's version moves only when
        reports come or go, so that a page redraws the rows that changed
        rather than the whole map.  A row whose requests only lost their
        first windows and gained new ones after their last, as every row
        does when a trading day passes, is changed in place (laying out a
        million days again takes the reactor seconds).

        @param most: The most requests to lay out anew here (in rows that
            are not changed in place), or L{None} for no limit: if more
            are, nothing is changed, and L{laying_out} is the way to lay
            them out.
        @return: Whether the map is laid out for C{requests}.
        """
        if requests is self._requests:
            return True
        if most is not None and len(requests) > most and not self._lines:
            # Every row is laid out anew: no need to work it out.
            return False
        plan = _drain(self._planning(requests))
        if most is not None and plan.anew > most:
            return False
        self._requests = requests
        for ignored in self._applying(plan):
            pass
        return True

    def laying_out(self, requests: Sequence[ReportURL]) -> Iterator[None]:
        """
        L{set_requests}, a step at a time: an iterator for
        L{twisted.internet.task.cooperate}, each of whose steps lays out
        one row or looks at up to L{STEP} requests or task states, so that
        a million days do not hold the reactor for seconds.

        The map is not whole until the iterator ends: this is for a map
        that is shown once laid out (see L{fresh}).  Meanwhile L{record}
        keeps the states of files that are not on the map yet, since a
        later step may lay them out.  A later call supersedes this one:
        its steps then do nothing, and the later one goes on from the rows
        laid out so far.
        """
        # At once, not at the first step: until then, record would take
        # this map for one laid out, and drop the states of files not on it.
        laying = self._laying = object()
        self._requests = requests
        return self._laid_out(requests, laying)

    def _laid_out(self, requests: Sequence[ReportURL], laying: object) -> Iterator[None]:
        planning = self._planning(requests)
        plan = None
        while plan is None:
            try:
                next(planning)
            except StopIteration as done:
                plan = done.value
            else:
                yield
                if self._laying is not laying:
                    return
        for ignored in self._applying(plan):
            yield
            if self._laying is not laying:
                return
        # The rows as the page shows them, made now rather than all at
        # once by the first page or snapshot to ask.
        for report in list(self._lines):
            self.row(report)
            yield
            if self._laying is not laying:
                return
        self._laying = None
        # The states kept meanwhile (or copied from another map) of files
        # that are not on the map after all are dropped, as set_requests
        # drops those of files it takes off.
        names = list(self._tasks)
        for start in range(0, len(names), STEP):
            for name in names[start : start + STEP]:
                if name not in self._where:
                    self._tasks.pop(name, None)
            yield
            if self._laying is not None:
                return

    def fresh(self, zone: ZoneInfo | None = None) -> Coverage:
        """
        @param zone: The zone of its trading days; this map's if L{None}.
        @return: A map with nothing laid out that knows this map's task
            states: one to lay out with L{laying_out} while this one is
            shown, and to show in its place once laid out.  (Its L{epoch}
            is its own: a page showing this map draws it whole.)
        """
        other = Coverage(self.zone if zone is None else zone)
        other._tasks = dict(self._tasks)
        other.version = self.version
        return other

    def clearing(self) -> Iterator[None]:
        """
        Take everything off the map a step at a time: an iterator for
        L{twisted.internet.task.cooperate}, for a map no longer shown
        (freeing a million days at once holds the reactor a tenth of a
        second).
        """
        self._laying = self._requests = None
        self._asked.clear()
        self._touched.clear()
        while self._lines:
            self._lines.popitem()
            yield
        for held in (self._where, self._tasks):
            while held:
                for ignored in range(min(STEP, len(held))):
                    held.popitem()
                yield

    def _planning(self, requests: Sequence[ReportURL]) -> Generator[None, None, _Plan]:
        """
        Work out, a step at a time, what laying the map out for
        C{requests} changes; change nothing.

        @return: A generator whose value is the L{_Plan}.
        """
        grouped: dict[str, list[ReportURL]] = {}
        for start in range(0, len(requests), STEP):
            for request in requests[start : start + STEP]:
                grouped.setdefault(request.report, []).append(request)
            yield
        gone = [report for report in self._lines if report not in grouped]
        # Reports share their windows' bounds: each is turned into a
        # trading day once.
        days: dict[datetime.datetime, int] = {}
        moves: dict[str, _Move | None] = {}
        for report, asked in grouped.items():
            if self._asked.get(report) != asked:
                moves[report] = self._movable(report, asked, days)
            yield
        return _Plan(requests, grouped, gone, moves, days)

    def _applying(self, plan: _Plan) -> Iterator[None]:
        """
        Make the changes of C{plan}, a row at a time, and leave the rows in
        order: even with nothing to change, a layout superseded before its
        end may have left them in the order laid out.
        """
        if plan.moves or plan.gone:
            self.version += 1
            if plan.grouped.keys() != self._lines.keys():
                self.layout_version = self.version
        dropped = [name for report in plan.gone for name in self._forget(report)]
        for report, move in plan.moves.items():
            requests = plan.grouped[report]
            if move is None:
                dropped += self._forget(report)
                self._lines[report] = self._lay_out(report, requests, plan.days)
            else:
                dropped += self._move(report, move)
            self._asked[report] = requests
            self._touched[report] = self.version
            yield
        self._lines = {report: self._lines[report] for report in sorted(self._lines)}
        if self._laying is None:
            for name in dropped:
                if name not in self._where:
                    self._tasks.pop(name, None)

    def set_zone(self, zone: ZoneInfo) -> None:
        """
        Make C{zone}'s days the trading days: every row is laid out again,
        and the page draws the whole map again.  (On a large map, a map
        made by L{fresh} in C{zone} and laid out by L{laying_out} holds
        the reactor a little at a time.)
        """
        if str(zone) == str(self.zone):
            return
        self.zone = zone
        requests, self._requests = self._requests, None
        for report in list(self._lines):
            self._forget(report)
        # The same files are laid out again, their states kept.
        if requests is not None:
            self.set_requests(requests)

    def _forget(self, report: str) -> list[str]:
        """
        Take C{report}'s row and its requests off the map.

        @return: The names of the files taken off (their states are still
            kept: the caller drops those of the files not laid out again).
        """
        forgotten = []
        for request in self._asked.pop(report, ()):
            if self._where.get(request.filename, ("",))[0] == report:
                del self._where[request.filename]
                forgotten.append(request.filename)
        self._lines.pop(report, None)
        self._touched.pop(report, None)
        return forgotten

    def _spans(
        self, requests: Sequence[ReportURL], days: dict[datetime.datetime, int]
    ) -> list[tuple[str, int, int, float]]:
        """
        @param days: The trading day (as an ordinal) of each instant already
            worked out (by this layout or another), added to.
        @return: (file name, ordinals of its first and last trading days,
            POSIX time its window ends) of each request.
        """

        def day_of(instant: datetime.datetime) -> int:
            day = days.get(instant)
            if day is None:
                day = days[instant] = instant.astimezone(self.zone).date().toordinal()
            return day

        spans = []
        for request in requests:
            first = day_of(request.window_start)
            # A window's last instant, not its end: the end is the next one's start.
            last = day_of(request.window_end - _INSTANT)
            spans.append((request.filename, first, max(first, last), request.window_end.timestamp()))
        return spans

    def _place(self, report: str, line: _Line, spans: Iterable[tuple[str, int, int, float]]) -> set[int]:
        """
        Put the files of C{spans} on C{report}'s row C{line}, which holds
        their days.

        @return: The indexes of the days they cover.
        """
        base = line.first.toordinal()
        covered: set[int] = set()
        for filename, first, last, end in spans:
            self._where[filename] = (report, first, last, end)
            for index in range(first - base, last - base + 1):
                line.files[index] += (filename,)
                line.ends[index] = max(line.ends[index], end)
                covered.add(index)
        return covered

    def _lay_out(
        self, report: str, requests: Sequence[ReportURL], days: dict[datetime.datetime, int]
    ) -> _Line:
        """
        @param days: See L{_spans}.
        @return: C{report}'s row for its C{requests}, each day counted from
            the task states known.
        """
        spans = self._spans(requests, days)
        start = min(span[1] for span in spans)
        length = max(span[2] for span in spans) - start + 1
        line = _Line(
            datetime.date.fromordinal(start),
            [()] * length,
            [0.0] * length,
            [DayCounts()] * length,
        )
        self._place(report, line, spans)
        line.cells = [self._count(files) for files in line.files]
        return line

    def _movable(
        self, report: str, requests: list[ReportURL], days: dict[datetime.datetime, int]
    ) -> _Move | None:
        """
        @param days: See L{_spans}.
        @return: How C{report}'s row is changed in place for its new
            C{requests}, if they are those it was laid out for less some
            first ones, and more after the last; else L{None}.
        """
        line, asked = self._lines.get(report), self._asked.get(report)
        if line is None or not asked or not requests:
            return None
        try:
            head = asked.index(requests[0])
        except ValueError:
            return None
        kept = len(asked) - head
        if kept > len(requests) or asked[head:] != requests[:kept]:
            return None
        added = self._spans(requests[kept:], days)
        base = line.first.toordinal()
        if any(first < base for ignored, first, ignored_last, ignored_end in added):
            return None
        return _Move(head, added)

    def _move(self, report: str, move: _Move) -> list[str]:
        """
        Change C{report}'s row in place as C{move} says: the others' days
        and states stay as they are.

        @return: The names of the files taken off the row (as L{_forget}).
        """
        line, asked = self._lines[report], self._asked[report]
        base = line.first.toordinal()
        dropped, touched = [], set()
        for request in asked[: move.head]:
            found = self._where.get(request.filename)
            if found is None or found[0] != report:
                continue
            del self._where[request.filename]
            dropped.append(request.filename)
            for index in range(found[1] - base, found[2] - base + 1):
                files = line.files[index]
                at = files.index(request.filename)
                line.files[index] = files[:at] + files[at + 1 :]
                touched.add(index)
        grow = max((span[2] - base + 1 for span in move.added), default=0) - len(line.files)
        if grow > 0:
            line.files.extend([()] * grow)
            line.ends.extend([0.0] * grow)
            line.cells.extend([DayCounts()] * grow)
        touched |= self._place(report, line, move.added)
        for index in touched:
            files = line.files[index]
            line.ends[index] = max((self._where[name][3] for name in files), default=0.0)
            line.cells[index] = self._count(files)
        # The row spans the days its files cover, as if laid out anew.
        if not (line.files[0] and line.files[-1]):
            held = [index for index, files in enumerate(line.files) if files]
            low, high = held[0], held[-1] + 1
            line.files, line.ends, line.cells = (
                line.files[low:high],
                line.ends[low:high],
                line.cells[low:high],
            )
            line.first = datetime.date.fromordinal(base + low)
        line.row = None
        return dropped

    def _count(self, files: Iterable[str]) -> DayCounts:
        downloaded = empty = pending = failed = revised = 0
        for filename in files:
            state, revisions = self._tasks.get(filename, (PENDING, 0))
            if state == DOWNLOADED:
                downloaded += 1
                revised += revisions > 0
            elif state == EMPTY:
                empty += 1
            elif state == FAILED:
                failed += 1
            elif state in (PENDING, DOWNLOADING):
                pending += 1
        tally = (downloaded, empty, pending, failed, revised)
        counts = self._counts.get(tally)
        if counts is None:
            counts = self._counts[tally] = DayCounts(*tally)
        return counts

    def record(self, filename: str, state: str, revised: int | None = None) -> None:
        """
        Note that the task of C{filename} is now in C{state}, if its file
        is on the map, or may be laid out by the L{laying_out} under way (a
        file laid out later counts as pending until its task is read from
        the store, or moves).

        @param revised: How many times OASIS revised it (its
            L{harbour.store.tasks.Task.revised}), or L{None} for as many
            as known.
        """
        if revised is None:
            revised = self._tasks.get(filename, (PENDING, 0))[1]
        found = self._where.get(filename)
        if found is None:
            if self._laying is not None:
                # A later step of the layout under way may lay it out.
                self._tasks[filename] = (state, revised)
            return
        self._tasks[filename] = (state, revised)
        report, first, last, ignored = found
        line = self._lines[report]
        base = line.first.toordinal()
        changed = False
        for index in range(first - base, last - base + 1):
            counts = self._count(line.files[index])
            if counts != line.cells[index]:
                line.cells[index] = counts
                changed = True
        if changed:
            self.version += 1
            line.row = None
            self._touched[report] = self.version

    def apply(self, topic: str, payload: Mapping[str, Any]) -> None:
        """
        Follow one bus event: a task's outcome, or a revision that puts it
        back to C{pending}.
        """
        filename = payload.get("filename")
        if not isinstance(filename, str):
            return
        if topic in _EVENT_STATES:
            # An outcome's "revision" also counts fetches again that are
            # no revision of OASIS's: only a task.revised tells one.
            self.record(filename, _EVENT_STATES[topic])
        elif topic == "task.revised":
            revised = payload.get("revised")
            self.record(filename, PENDING, revised if isinstance(revised, int) else None)

    @inlineCallbacks
    def load(self, store: ITaskStore, page: int = PAGE) -> Generator[Deferred[Any], Any, int]:
        """
        Read every task's state from C{store}.

        @return: A L{Deferred} firing with how many tasks were read.
        """
        read = 0
        for state in (PENDING, DOWNLOADING, DOWNLOADED, EMPTY, FAILED):
            offset = 0
            while True:
                tasks, total = yield store.tasks(state, None, offset, page)
                for task in tasks:
                    self.record(task.filename, task.state, task.revised)
                read += len(tasks)
                offset += len(tasks)
                if not tasks or offset >= total:
                    break
        return read

    def knows(self, filename: str) -> bool:
        """
        @return: Whether C{filename} is the file of a request on the map.
        """
        return filename in self._where

    def reports(self) -> list[str]:
        """
        @return: The reports on the map, in order.
        """
        return list(self._lines)

    def row(self, report: str) -> Row:
        """
        @return: C{report}'s row as it is now.
        """
        line = self._lines[report]
        if line.row is None:
            states = "".join(cell.state for cell in line.cells)
            counts = {
                index: self._json(cell)
                for index, (cell, files) in enumerate(zip(line.cells, line.files))
                if len(files) != 1
            }
            line.row = Row(report, line.first, states, counts)
            line.days = Counter(states)
        return line.row

    def days(self, report: str) -> Mapping[str, int]:
        """
        @return: C{{code: how many of C{report}'s days are in that state}},
            counted again only when its row changed.
        """
        self.row(report)
        return self._lines[report].days

    def shows(self, report: str) -> bool:
        """
        @return: Whether C{report} has a row on the map.
        """
        return report in self._lines

    def _json(self, cell: DayCounts) -> list[int]:
        """
        @return: C{cell.to_json()}, one list for all the days that share
            C{cell} (a row of a million days with two windows each made a
            million lists, which the garbage collector then went over).
        """
        found = self._lists.get(cell)
        if found is None:
            found = self._lists[cell] = cell.to_json()
        return found

    def rows(self) -> list[Row]:
        """
        @return: Every report's row, in order.
        """
        return [self.row(report) for report in self._lines]

    def changed_since(self, version: int) -> list[Row] | None:
        """
        @return: The rows changed after C{version}, or L{None} if the
            reports came or went since (draw every row again).
        """
        if version < self.layout_version or version > self.version:
            return None
        return [self.row(r) for r in self._lines if self._touched.get(r, 0) > version]

    def stamp(self) -> str:
        """
        @return: The map's version as the page holds it: C{EPOCH.VERSION}.
        """
        return f"{self.epoch}.{self.version}"

    def changed_since_stamp(self, stamp: str) -> list[Row] | None:
        """
        @return: What L{changed_since} answers for the version of a stamp
            L{stamp} gave; L{None} (draw every row again) for any other
            stamp, such as one of the map the daemon had before it
            restarted.
        """
        epoch, ignored, version = stamp.rpartition(".")
        # isdigit takes digits int() refuses ("²", or more than Python
        # converts); a version is ASCII and never longer than a few digits.
        if epoch != self.epoch or not (version.isascii() and version.isdigit()) or len(version) > 18:
            return None
        return self.changed_since(int(version))

    def newest_unmirrored(self, report: str) -> tuple[str, float] | None:
        """
        @return: (ISO day, POSIX time it ends) of C{report}'s newest
            trading day asked for, if it is not mirrored yet; else L{None}.
        """
        line = self._lines.get(report)
        if line is None:
            return None
        for index in range(len(line.cells) - 1, -1, -1):
            if line.files[index]:
                if line.cells[index].state in _FINAL_DAYS:
                    return None
                return (line.first + datetime.timedelta(days=index)).isoformat(), line.ends[index]
        return None
