"""
Tests for L{harbour.services.tables}: parse work claimed from the in-memory
task store, real sample zips, real Parquet and DuckDB files, time from a
L{Clock} and parses run at once instead of in a thread.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow
import pyarrow.parquet
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from harbour.bus import Bus
from harbour.config.paging import publish_reports
from harbour.config.topics import ReportTopic, WorkTopic
from harbour.dataset import parse
from harbour.dataset import views as dataset_views
from harbour.dataset import write as dataset_write
from harbour.dataset.test.helpers import removed_when_scanned, simulated, write
from harbour.dataset.write import Superseded, drop_window
from harbour.errors import StoreUnavailable
from harbour.interfaces import IEvent
from harbour.oasis.requests import ReportURL
from harbour.services import parses, retirement, tables, views
from harbour.services.parses import ABSENT_RETRY, MEMORY_FAILURES_MOST, TRANSIENT_RETRY
from harbour.services.retirement import drop_windows
from harbour.services.storage import STORAGE_FILE, storage_and_mirrors, storage_id
from harbour.services.tables import ABANDONED_AFTER, JANITOR_INTERVAL, TablesService
from harbour.services.views import Views
from harbour.services.waking import Waker
from harbour.store.memory import MemoryTaskStore
from harbour.store.tasks import DOWNLOADED, EMPTY, PENDING, RETIRED, task_id
from harbour.test.helpers import SilentHub, capture_log

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
HUBS = SAMPLES / "20200101_20200101_PRC_LMP_DAM_20200630_22_50_44_v1_hubs-trimmed_csv.zip"
#: The data rows of the hubs sample (3 nodes x 24 hours x 4 components).
HUB_ROWS = 288
#: The report the hub prices sample answers.
LMP = ReportTopic(name="lmp", queryname="PRC_LMP", market_run_id="DAM", params={"grp_type": "ALL_APNODES"})


def run_now(f: Any, *args: object) -> Any:
    """
    Run C{f} at once, as the service would in a thread.
    """
    return maybeDeferred(f, *args)


def holding(target: Any) -> tuple[list[Deferred[None]], Any]:
    """
    @return: The calls of C{target} asked for, each held (as one running in
        a thread) until the test fires its L{Deferred}, and what runs
        functions for the service: at once, but for those.
    """
    held: list[Deferred[None]] = []

    def run(f: Any, *args: object) -> Any:
        if f is target:
            d: Deferred[None] = Deferred()
            held.append(d)
            return d.addCallback(lambda ignored: run_now(f, *args))
        return run_now(f, *args)

    return held, run


def call_now(f: Any, *args: object) -> Any:
    """
    Call C{f} at once, as a thread would on the reactor's thread, and give
    its answer, which must be ready (the memory store's are).
    """
    answers: list[Any] = []
    maybeDeferred(f, *args).addBoth(answers.append)
    assert answers, f"{f} did not answer at once"
    if isinstance(answers[0], Failure):
        answers[0].raiseException()
    return answers[0]


class TablesServiceTests(SynchronousTestCase):
    """
    L{TablesService} parses what the store queues and records the outcome.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = Bus()
        self.store = MemoryTaskStore(self.clock)
        self.data_dir = Path(self.mktemp())
        self.events: list[IEvent] = []
        self.successResultOf(self.bus.subscribe("table.*", self.events.append))

    def downloaded(
        self,
        label: str,
        content: bytes,
        data_dir: Path | None = None,
        claimed: bool = False,
        storage: str | None = None,
        directory: str = "reports",
    ) -> str:
        """
        Put a downloaded file of report C{lmp} in place (under this test's
        data directory, or C{data_dir}) and its task in the store, as the
        download service leaves them: recorded with its directory's
        storage, or C{storage} if given.

        @param claimed: Whether the task is in the store already, its
            download next to claim (a revision, say).
        @param directory: The download directory, under the data directory.
        @return: The task's id.
        """
        filename = f"lmp/{label}.zip"
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)
        request = ReportURL(f"http://oasis.invalid/{label}", filename, "lmp", start, start)
        if not claimed:
            self.successResultOf(self.store.create([request]))
        task = self.successResultOf(self.store.claim("downloader", 60))
        assert task is not None
        where = (data_dir or self.data_dir) / directory
        path = where / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        if storage is None:
            storage = storage_id(where)
        self.successResultOf(
            self.store.finish(
                task.id, "downloader", DOWNLOADED, len(content), digest, "", task.claim, storage
            )
        )
        return task.id

    def service(self, **overrides: Any) -> TablesService:
        """
        A started service over this test's store and bus (and data
        directory, unless C{overrides} give another).
        """
        settings: dict[str, Any] = {
            "data_dir": self.data_dir,
            "owner": "parser",
            "run_in_thread": run_now,
            "call_from_thread": call_now,
            "configured": True,
            **overrides,
        }
        service = TablesService(self.clock, self.store, self.bus, **settings)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def test_parsesNothingUntilConfigured(self) -> None:
        """
        Started with no configuration in force (one with errors publishes
        nothing), the service claims no parse, writes no table and makes
        no download directory, whatever wakes it, and its status says
        what it waits for; once the first C{download} and C{work} topics
        are heard, it parses the files of the configured directory.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes(), directory="mirror")
        service = self.service(configured=False)
        self.bus.publish("table.queued", {})
        self.bus.publish("store.connected", {})
        self.clock.advance(JANITOR_INTERVAL)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "queued")
        self.assertEqual(list((self.data_dir / "tables").rglob("*.parquet")), [])
        self.assertFalse((self.data_dir / "reports").exists())
        self.assertEqual(self.successResultOf(service.status())["waiting"], "a valid configuration")
        self.bus.publish("download", {"directory": "mirror"}, retain=True)
        self.bus.publish("work", {}, retain=True)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "parsed")
        self.assertNotIn("waiting", self.successResultOf(service.status()))
        self.assertFalse((self.data_dir / "reports").exists())

    def test_parsesDownloadedFile(self) -> None:
        """
        A downloaded file becomes Parquet under C{tables/<report>}, its task
        is C{parsed} with its row count, and C{table.written} says so.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        service = self.service()
        self.assertEqual(self.successResultOf(self.store.parse_counts())["lmp"]["parsed"], 1)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "parsed")
        files = sorted((self.data_dir / "tables" / "lmp").rglob("*.parquet"))
        # The window straddles two trading days.
        self.assertEqual(
            [f.parent.name for f in files], ["trading_date=2020-01-01", "trading_date=2020-01-02"]
        )
        [event] = self.events
        self.assertEqual(event.topic, "table.written")
        self.assertEqual(event.payload["rows"], HUB_ROWS)
        self.assertEqual(event.payload["days"], ["2020-01-01", "2020-01-02"])
        self.assertEqual(service.parses.rows, HUB_ROWS)
        # What the hub needs to follow another process's table.
        self.assertEqual(event.payload["columns"], sorted(pyarrow.parquet.read_schema(files[0]).names))
        self.assertEqual(event.payload["owner"], "parser")
        self.assertEqual(event.payload["tables_storage"], storage_id(self.data_dir / "tables"))

    def test_eventUnsent(self) -> None:
        """
        A parse recorded whose C{table.written} cannot be sent (a worker's
        hub away) is logged as such, not as a parse left unrecorded.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())

        def away(topic: str, payload: object, retain: bool = False) -> Deferred[int]:
            return fail(StoreUnavailable("not connected to the hub"))

        self.bus.publish = away  # type: ignore[method-assign]
        messages = capture_log(self)
        service = self.service()
        self.assertEqual(self.successResultOf(self.store.parse_counts())["lmp"]["parsed"], 1)
        self.assertEqual(service.parses.written, 1)
        self.assertEqual(
            [m for m in messages if "could not" in m],
            ["lmp/2020-01-01.zip: table.written could not be sent: not connected to the hub"],
        )

    def test_silentHub(self) -> None:
        """
        A worker whose hub is connected but silent (stopped, say) goes on
        parsing, each parse over once recorded with its C{table.written}
        unanswered, and stops all the same.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.downloaded("2020-01-02", HUBS.read_bytes())
        hub = SilentHub()
        self.bus = hub  # type: ignore[assignment]
        service = self.service()
        self.assertEqual(self.successResultOf(self.store.parse_counts())["lmp"]["parsed"], 2)
        self.assertEqual(hub.published.count("table.written"), 2)
        self.assertEqual(service.parses.parsing, {})
        self.successResultOf(service.stopService())

    def test_unparsableFile(self) -> None:
        """
        A file that cannot be parsed marks its task C{unparsable} with the
        reason, stays in place, and the next file is parsed all the same.
        """
        bad = self.downloaded("2020-01-02", b"PK\x05\x06" + b"\x00" * 18)
        good = self.downloaded("2020-01-01", HUBS.read_bytes())
        service = self.service()
        bad_task = self.successResultOf(self.store.get(bad))
        good_task = self.successResultOf(self.store.get(good))
        assert bad_task is not None and good_task is not None
        self.assertEqual((bad_task.parse, good_task.parse), ("unparsable", "parsed"))
        self.assertIn("2020-01-02", service.parses.last_error)
        self.assertTrue(bad_task.parse_error)
        self.assertTrue((self.data_dir / "reports" / "lmp" / "2020-01-02.zip").exists())
        self.assertEqual(sorted(e.topic for e in self.events), ["table.failed", "table.written"])
        [failed] = [e for e in self.events if e.topic == "table.failed"]
        self.assertEqual(failed.payload["error"], bad_task.parse_error)

    def test_parsesWhatItHas(self) -> None:
        """
        With download directories of their own, each host parses the files
        downloaded into its own directory and never takes another's (to
        find it absent and give it back for ten minutes).
        """
        elsewhere = Path(self.mktemp())
        mine = self.downloaded("2020-01-01", HUBS.read_bytes())
        theirs = self.downloaded("2020-01-02", HUBS.read_bytes(), data_dir=elsewhere)
        hub = self.service(owner="hub")
        self.clock.advance(hub.poll_interval)
        found = [self.successResultOf(self.store.get(i)) for i in (mine, theirs)]
        self.assertEqual([(t.parse, t.parse_error) for t in found if t], [("parsed", ""), ("queued", "")])
        worker = self.service(owner="worker", data_dir=elsewhere, keep_views=False)
        found = [self.successResultOf(self.store.get(i)) for i in (mine, theirs)]
        self.assertEqual([t.parse for t in found if t], ["parsed", "parsed"])
        self.assertEqual((hub.parses.written, worker.parses.written, hub.parses.last_error), (1, 1, ""))
        self.assertEqual(len(list((elsewhere / "tables" / "lmp").rglob("*.parquet"))), 2)

    def test_absentFileWaits(self) -> None:
        """
        A queued file of no storage that is not on this host goes back to
        the queue for later (a worker elsewhere may keep it), and is parsed
        once it is there.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes(), storage="")
        zipped = self.data_dir / "reports" / "lmp" / "2020-01-01.zip"
        kept = zipped.with_name("kept")
        zipped.rename(kept)
        self.service()
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "queued")
        self.assertIn("not on this host", task.parse_error)
        kept.rename(zipped)
        self.clock.advance(ABSENT_RETRY)
        self.clock.advance(10)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "parsed")

    def test_goneFileDownloadedAgain(self) -> None:
        """
        A queued file of this host's storage that is gone is not waited
        for: its task is put back to pending, to be downloaded again as a
        first download, its parse claim ended; nothing is given back to
        the parse queue, and the warning names the file.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        zipped = self.data_dir / "reports" / "lmp" / "2020-01-01.zip"
        zipped.unlink()
        messages = capture_log(self)
        service = self.service()
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual((task.state, task.sha256, task.parse, task.revision), (PENDING, "", "", 0))
        self.assertEqual(self.successResultOf(self.store.parse_counts()), {})
        self.assertEqual(
            [m for m in messages if "is gone from" in m],
            [f"{zipped} is gone from this host: it is downloaded again"],
        )
        self.assertIn("downloaded again", service.parses.last_error)
        self.assertEqual(self.events, [])

    def test_goneFromWorkersOwnDirectory(self) -> None:
        """
        A worker with a download directory of its own looks for a file
        gone from it there: the file's task is put back to be downloaded
        again, as on the hub.
        """
        elsewhere = Path(self.mktemp())
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes(), data_dir=elsewhere)
        zipped = elsewhere / "reports" / "lmp" / "2020-01-01.zip"
        zipped.unlink()
        messages = capture_log(self)
        worker = self.service(owner="worker", data_dir=elsewhere, keep_views=False)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual((task.state, task.parse), (PENDING, ""))
        self.assertEqual(
            [m for m in messages if "is gone from" in m],
            [f"{zipped} is gone from this host: it is downloaded again"],
        )
        self.assertIn("downloaded again", worker.parses.last_error)

    def test_volumeAwayNotGone(self) -> None:
        """
        A queued file missing with its download directory's storage id (a
        volume not mounted, an empty directory in its place) is not gone:
        its task stays downloaded and its parse waits, as an absent one
        does.
        """
        self.downloaded("2019-12-31", HUBS.read_bytes())
        self.service()
        # The service knows its storage now; the volume goes meanwhile.
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        (self.data_dir / "reports" / "lmp" / "2020-01-01.zip").unlink()
        (self.data_dir / "reports" / STORAGE_FILE).unlink()
        self.clock.advance(ABSENT_RETRY)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual((task.state, task.parse), (DOWNLOADED, "queued"))
        self.assertIn("not on this host", task.parse_error)

    def test_goneFileStoreAway(self) -> None:
        """
        A file of this host's storage found gone while the store cannot
        put its task back waits as an absent one does, and is put back at
        the next try.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        (self.data_dir / "reports" / "lmp" / "2020-01-01.zip").unlink()
        refetch = self.store.refetch_missing
        self.store.refetch_missing = lambda entries: fail(StoreUnavailable("away"))  # type: ignore[method-assign]
        self.service()
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual((task.state, task.parse), (DOWNLOADED, "queued"))
        self.assertIn("not on this host", task.parse_error)
        self.store.refetch_missing = refetch  # type: ignore[method-assign]
        self.clock.advance(ABSENT_RETRY)
        self.clock.advance(10)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.state, PENDING)

    def test_storeOutage(self) -> None:
        """
        While the store is unavailable the workers wait with backoff, and
        parse once it is back.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        claim = self.store.claim_parse
        failures = [StoreUnavailable("Redis is away")] * 3

        def flaky(owner: str, lease: float, storage: str) -> Any:
            if failures:
                raise failures.pop()
            return claim(owner, lease, storage)

        self.store.claim_parse = flaky  # type: ignore[method-assign,assignment]
        service = self.service()
        self.assertEqual(service.parses.written, 0)
        self.clock.pump([1.0] * 5)
        self.assertEqual(service.parses.written, 1)

    def test_outcomeThroughOutage(self) -> None:
        """
        A parse whose outcome the store cannot record at once (an outage)
        has it recorded once the store answers, long before its lease
        would expire: the parse is not cut off.
        """
        identifier = self.downloaded("2020-01-01", HUBS.read_bytes())
        finish = self.store.finish_parse
        failures = [StoreUnavailable("Redis is away")] * 3

        def flaky(*args: Any) -> Any:
            if failures:
                raise failures.pop()
            return finish(*args)

        self.store.finish_parse = flaky  # type: ignore[method-assign,assignment]
        service = self.service()
        self.clock.pump([1.0] * 5)
        task = self.successResultOf(self.store.get(identifier))
        assert task is not None
        self.assertEqual((task.parse, failures), ("parsed", []))
        self.assertEqual(service.parses.written, 1)

    def test_viewsFollowReports(self) -> None:
        """
        On the hub, the views file gets a view of each configured report once
        it has tables, over which DuckDB answers.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        self.service()
        database = self.data_dir / "tables" / "harbour.duckdb"
        with duckdb.connect(str(database), read_only=True) as connection:
            [(rows,)] = connection.execute("select count(*) from lmp").fetchall()
            [(hubs,)] = connection.execute("select count(distinct location) from lmp_wide").fetchall()
        self.assertEqual((rows, hubs), (HUB_ROWS, 3))

    def _rebuilt(self, held: list[Deferred[None]]) -> int:
        """
        Let every rebuild held, and every one they lead to, run.

        @return: How many have run since the service started.
        """
        for d in held:
            if not d.called:
                d.callback(None)
        return len(held)

    def test_viewsFollowOthersTables(self) -> None:
        """
        On shared storage, a report whose first table another process (a
        worker) wrote gets its views on the hub, which follows the other
        processes' C{table.written} into its tables directory: it had
        made its views again only for its own.
        """
        self.successResultOf(publish_reports(self.bus, [LMP]))
        hub = self.service(owner="hub")
        hub.pause()
        self.downloaded("2020-01-01", HUBS.read_bytes())
        worker = self.service(owner="worker", keep_views=False)
        self.assertEqual((hub.parses.written, worker.parses.written), (0, 1))
        self.assertEqual(hub.views.shown, frozenset({"lmp"}))
        with duckdb.connect(str(self.data_dir / "tables" / "harbour.duckdb"), read_only=True) as connection:
            [(rows,)] = connection.execute("select count(*) from lmp").fetchall()
        self.assertEqual(rows, HUB_ROWS)

    def test_ownTablesFollowedOnce(self) -> None:
        """
        The hub's own tables make its views again once each, not once
        more when their C{table.written} comes back to it.
        """
        self.successResultOf(publish_reports(self.bus, [LMP]))
        held, run = holding(views._rebuild)
        hub = self.service(owner="hub", run_in_thread=run)
        self.assertEqual(self._rebuilt(held), 1)
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.clock.advance(hub.poll_interval)
        self.assertEqual(hub.parses.written, 1)
        self.assertEqual(self._rebuilt(held), 2)
        self.assertEqual(hub.views.shown, frozenset({"lmp"}))

    def test_othersTablesElsewhereIgnored(self) -> None:
        """
        A table another process wrote into a tables directory of its own
        (no storage shared with the hub) leaves the hub's views as they
        are: making them again would find nothing new.
        """
        self.successResultOf(publish_reports(self.bus, [LMP]))
        held, run = holding(views._rebuild)
        hub = self.service(owner="hub", run_in_thread=run)
        self.assertEqual(self._rebuilt(held), 1)
        elsewhere = Path(self.mktemp())
        self.downloaded("2020-01-01", HUBS.read_bytes(), data_dir=elsewhere)
        worker = self.service(owner="worker", data_dir=elsewhere, keep_views=False)
        self.assertEqual(worker.parses.written, 1)
        self.assertEqual(self._rebuilt(held), 1)
        self.assertEqual(hub.views.shown, frozenset())

    def test_viewsFollowDrops(self) -> None:
        """
        Once a drain has dropped a report's last table, its view goes:
        DuckDB fails any query of a view over no file.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        self.service()
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.assertEqual(self.parquet(), [])
        database = self.data_dir / "tables" / "harbour.duckdb"
        with duckdb.connect(str(database), read_only=True) as connection:
            self.assertEqual(
                connection.execute("select count(*) from duckdb_views() where not internal").fetchall(),
                [(0,)],
            )

    def views_shown(self) -> int:
        """
        @return: How many views the hub's views file holds.
        """
        database = self.data_dir / "tables" / "harbour.duckdb"
        with duckdb.connect(str(database), read_only=True) as connection:
            [(count,)] = connection.execute(
                "select count(*) from duckdb_views() where not internal"
            ).fetchall()
        return int(count)

    def test_revisionParsedElsewhereDropped(self) -> None:
        """
        A revision of a window the hub parsed, downloaded and parsed by a
        worker with a disk of its own, takes the window's tables out of the
        hub's, which would show the revision before, once the worker's
        C{table.written} is heard; the hub's views follow (here, no table
        of the report is left).
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        hub = self.service(owner="hub")
        self.assertEqual((hub.parses.written, len(self.parquet())), (1, 2))
        self.assertEqual(self.views_shown(), 2)
        self.clock.advance(10)
        self.successResultOf(self.store.revise([(task, self.clock.seconds() - 1, "2")]))
        elsewhere = Path(self.mktemp())
        self.downloaded("2020-01-01", HUBS.read_bytes(), data_dir=elsewhere, claimed=True)
        worker = self.service(owner="worker", data_dir=elsewhere, keep_views=False)
        self.assertEqual(worker.parses.written, 1)
        self.assertEqual(self.parquet(), [])
        self.assertEqual(len(list((elsewhere / "tables" / "lmp").glob("*/*.parquet"))), 2)
        self.assertEqual(self.views_shown(), 0)

    def test_revisedEmptyViewsFollow(self) -> None:
        """
        A revision of a report's only window that holds a header and no
        rows removes the window's tables, the report's last: the views
        follow.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        self.service()
        self.assertEqual(self.views_shown(), 2)
        with zipfile.ZipFile(HUBS) as source:
            [member] = source.namelist()
            header = source.read(member).split(b"\n", 1)[0] + b"\n"
        headed = io.BytesIO()
        with zipfile.ZipFile(headed, "w") as target:
            target.writestr(member, header)
        self.clock.advance(10)
        self.successResultOf(self.store.revise([(task, self.clock.seconds() - 1, "2")]))
        self.downloaded("2020-01-01", headed.getvalue(), claimed=True)
        self.successResultOf(self.bus.publish("task.done", {"id": task}))
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual((found.parse, found.rows), ("parsed", 0))
        self.assertEqual(self.parquet(), [])
        self.assertEqual(self.views_shown(), 0)

    def test_droppedByAnotherViewsFollow(self) -> None:
        """
        A worker sharing the hub's data directory drops a retired window's
        tables first (it hears C{task.retired} before the hub asks the
        store): the hub's drain, which removes nothing then, still has the
        views follow.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        self.service(owner="worker", keep_views=False)
        self.service(owner="hub")
        self.assertEqual(self.views_shown(), 2)
        self.retire("lmp/2020-01-01.zip")
        files = [{"report": "lmp", "filename": "lmp/2020-01-01.zip"}]
        self.successResultOf(self.bus.publish("task.retired", {"files": files}))
        self.assertEqual(self.parquet(), [])
        self.assertEqual(self.views_shown(), 0)

    def test_stopEndsWorkers(self) -> None:
        """
        Once stopped, the service ends its idle workers at once and claims
        nothing more.
        """
        service = self.service()
        self.successResultOf(service.stopService())
        self.assertEqual(service._running, {})
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.clock.pump([service.poll_interval] * 3)
        self.assertEqual(self.successResultOf(self.store.parse_counts())["lmp"]["queued"], 1)

    def test_stoppedWhileStarting(self) -> None:
        """
        A service stopped while it reads its tables directory's storage
        id, before it follows anything, follows nothing once it is read.
        """
        reading, run = holding(storage_and_mirrors)
        before = self.bus.status()["subscriptions"]
        service = self.service(run_in_thread=run)
        self.successResultOf(service.stopService())
        reading[0].callback(None)
        self.assertEqual(self.bus.status()["subscriptions"], before)
        self.assertEqual(service._running, {})

    def test_stoppedWhileSubscribing(self) -> None:
        """
        A service stopped while its subscriptions are being made (a
        worker's go to the hub and back) ends them once they are made.
        """
        made: list[Deferred[None]] = []
        subscribe = self.bus.subscribe

        def slow(pattern: str, callback: Any) -> Deferred[Any]:
            d: Deferred[None] = Deferred()
            made.append(d)
            return d.addCallback(lambda ignored: subscribe(pattern, callback))

        self.bus.subscribe = slow  # type: ignore[method-assign]
        before = self.bus.status()["subscriptions"]
        service = self.service()
        self.assertTrue(made)
        self.successResultOf(service.stopService())
        for d in made:
            d.callback(None)
        self.assertEqual(self.bus.status()["subscriptions"], before)

    def test_announcedOnceQuiet(self) -> None:
        """
        Once the queue is empty and nothing new has come for a while, the
        log says how to query the tables, once.
        """
        logged = capture_log(self)

        def announcements() -> list[str]:
            return [m for m in logged if "tables are up to date" in m]

        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.successResultOf(publish_reports(self.bus, [LMP]))
        service = self.service()
        self.assertEqual(announcements(), [])
        self.clock.pump([service.poll_interval] * 4)
        [message] = announcements()
        self.assertIn(f'harbourctl query --data-dir {self.data_dir} "select count(*) from lmp"', message)

    def test_unforeseenErrorUnparsable(self) -> None:
        """
        An error harbour did not foresee ends the parse C{unparsable} with
        its type and message, rather than leaving the claim to expire and
        the file to be parsed again at every lease.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())

        def broken(f: Any, *args: object) -> Any:
            if f is parses._write:
                return maybeDeferred(lambda: int("not a number"))
            return run_now(f, *args)

        self.service(run_in_thread=broken)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "unparsable")
        self.assertIn("ValueError", task.parse_error)
        self.flushLoggedErrors(ValueError)

    def test_supersededGivenBack(self) -> None:
        """
        A parse whose zip a revision replaced mid-parse gives its claim back
        at once, with the reason, and is not C{unparsable}: the zip now in
        place is parsed next.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        errors: list[str] = []
        given_back = self.store.release_parse

        def release(job_id: str, owner: str, token: int, delay: float, error: str) -> Any:
            errors.append(f"{delay} {error}")
            return given_back(job_id, owner, token, delay, error)

        self.store.release_parse = release  # type: ignore[method-assign,assignment]
        superseded = [Superseded("replaced")]

        def replaced_once(f: Any, *args: object) -> Any:
            if f is parses._write and superseded:
                return fail(superseded.pop())
            return run_now(f, *args)

        service = self.service(run_in_thread=replaced_once)
        self.clock.advance(service.poll_interval)
        self.assertEqual(errors, ["0 its zip was replaced mid-parse"])
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "parsed")
        self.assertEqual((service.parses.written, service.parses.failed), (1, 0))

    def test_finishFailsThenNextFile(self) -> None:
        """
        When the store cannot record a parse (an outage, an error reply),
        the worker lives on: the file's lease expires, it is parsed again,
        and the other files are parsed meanwhile.
        """
        first = self.downloaded("2020-01-01", HUBS.read_bytes())
        second = self.downloaded("2020-01-02", HUBS.read_bytes())
        finish = self.store.finish_parse
        failures: list[Exception] = [StoreUnavailable("OOM command not allowed"), RuntimeError("odd reply")]

        def flaky(*args: Any) -> Any:
            if failures:
                raise failures.pop(0)
            return finish(*args)

        self.store.finish_parse = flaky  # type: ignore[method-assign,assignment]
        service = self.service()
        self.clock.pump([service.work.lease_seconds / 2] * 6)
        self.successResultOf(self.store.sweep())
        self.clock.pump([service.poll_interval] * 3)
        for identifier in (first, second):
            task = self.successResultOf(self.store.get(identifier))
            assert task is not None
            self.assertEqual(task.parse, "parsed")
        self.flushLoggedErrors(RuntimeError)

    def retire(self, *filenames: str) -> None:
        """
        Retire the tasks of C{filenames} in the store, as the work service
        does (which then publishes C{task.retired}).
        """
        self.successResultOf(self.store.retire_with_files({task_id(name) for name in filenames}))

    def parquet(self) -> list[Path]:
        """
        @return: The table files of report C{lmp}.
        """
        return sorted((self.data_dir / "tables" / "lmp").glob("*/*.parquet"))

    def test_retiredMidParseWritesNothing(self) -> None:
        """
        A parse whose window is retired while it runs commits nothing, so
        that no tables of it are left even if harbour is killed before it
        could drop them (here, nothing it asks to drop is dropped).
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())

        def retired_meanwhile(f: Any, *args: object) -> Any:
            if f is parses._write:
                self.retire("lmp/2020-01-01.zip")
            elif f in (drop_window, drop_windows):
                return succeed(0)
            return run_now(f, *args)

        service = self.service(run_in_thread=retired_meanwhile)
        self.assertEqual(self.parquet(), [])
        self.assertEqual([e.topic for e in self.events], [])
        self.assertEqual((service.parses.written, service.parses.failed), (0, 0))
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.state, RETIRED)

    def test_leaseShortenedMidParse(self) -> None:
        """
        A lease shortened in the settings while a parse is under way does
        not make it run out between renewals, which come at the pace of the
        lease the parse began with and keep asking for it: the parse is
        recorded.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        held, held_write = holding(parses._write)
        service = self.service(run_in_thread=held_write, work=WorkTopic(lease_seconds=300))
        self.assertEqual(len(held), 1)
        service.work = WorkTopic(lease_seconds=30)
        self.clock.advance(100)
        for ignored in range(3):
            self.clock.advance(31)
            self.successResultOf(self.store.sweep())
            self.clock.advance(69)
        held[0].callback(None)
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.parse, "parsed")
        self.assertEqual(len(self.parquet()), 2)

    def test_renewalAnsweredAfterRecording(self) -> None:
        """
        A renewal sent while the parse ran, answered once its outcome was
        recorded (which ended the claim), is not taken for a claim lost
        mid-parse.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        held, held_write = holding(parses._write)
        renew = self.store.renew_parse
        renewals: list[Deferred[None]] = []

        def slow_first(*args: Any) -> Deferred[bool]:
            if renewals:
                return renew(*args)
            renewals.append(Deferred())
            return renewals[0].addCallback(lambda ignored: renew(*args))

        self.patch(self.store, "renew_parse", slow_first)
        messages = capture_log(self)
        self.service(run_in_thread=held_write, work=WorkTopic(lease_seconds=300))
        self.clock.advance(100)
        self.assertEqual(len(renewals), 1)
        held[0].callback(None)
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.parse, "parsed")
        renewals[0].callback(None)
        self.assertEqual([m for m in messages if "lost the claim" in m], [])

    def test_claimLostMidParseLogged(self) -> None:
        """
        A renewal that finds the claim gone while the parse runs says so.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        held, held_write = holding(parses._write)
        self.patch(self.store, "renew_parse", lambda *args: succeed(False))
        messages = capture_log(self)
        self.service(run_in_thread=held_write, work=WorkTopic(lease_seconds=300))
        self.clock.advance(100)
        self.assertEqual(
            [m for m in messages if "lost the claim" in m], ["lost the claim of lmp/2020-01-01.zip mid-parse"]
        )
        held[0].callback(None)

    def test_outOfMemoryLater(self) -> None:
        """
        A parse that runs out of memory (Arrow's allocator failing, or
        Python's) goes back to the queue for later, as one that finds the
        disk full does: the file is not marked unparsable.
        """

        def starved(path: Path) -> Any:
            raise pyarrow.ArrowMemoryError("malloc of size 4194304 failed")
            yield  # a generator, as read_zip is

        self.patch(dataset_write, "read_zip", starved)
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        messages = capture_log(self)
        self.service()
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "queued")
        self.assertIn("out of memory parsing", "\n".join(messages))
        self.assertIn(f"trying again in {TRANSIENT_RETRY:.0f} s", "\n".join(messages))

    def test_outOfMemoryRepeatedUnparsable(self) -> None:
        """
        A file whose parses run out of memory L{MEMORY_FAILURES_MOST} times
        in a row is C{unparsable}, saying so, rather than parsed, and run
        out of memory, every L{TRANSIENT_RETRY} seconds for ever; a parse
        with another outcome between counts again from nothing.
        """
        outcomes: list[BaseException] = []

        def starved(path: Path) -> Any:
            if outcomes:
                raise outcomes.pop(0)
            raise pyarrow.ArrowMemoryError("malloc of size 4194304 failed")
            yield  # a generator, as read_zip is

        self.patch(dataset_write, "read_zip", starved)
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        messages = capture_log(self)

        def parse_state() -> str:
            task = self.successResultOf(self.store.get(task_id))
            assert task is not None
            return task.parse

        # Out of memory, then a full disk: the count starts again.
        outcomes.extend([pyarrow.ArrowMemoryError("malloc failed"), OSError(errno.ENOSPC, "No space")])
        service = self.service()
        self.assertEqual(parse_state(), "queued")
        self.clock.advance(TRANSIENT_RETRY)
        self.clock.advance(service.poll_interval)
        self.assertEqual(parse_state(), "queued")
        self.assertIn("No space", service.parses.last_error)
        for ignored in range(MEMORY_FAILURES_MOST - 1):
            self.clock.advance(TRANSIENT_RETRY)
            self.clock.advance(service.poll_interval)
            self.assertEqual(parse_state(), "queued")
        self.clock.advance(TRANSIENT_RETRY)
        self.clock.advance(service.poll_interval)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "unparsable")
        self.assertEqual(
            task.parse_error,
            f"its parse ran out of memory {MEMORY_FAILURES_MOST} times in a row"
            " (last: malloc of size 4194304 failed): harbourctl reparse tries again",
        )
        self.assertEqual([e.topic for e in self.events], ["table.failed"])
        self.assertEqual(service.parses.starved, {})
        self.assertIn("cannot parse lmp/2020-01-01.zip: its parse ran out of memory", "\n".join(messages))

    def claim_held(self) -> list[Deferred[None]]:
        """
        Hold the store's answers to parse claims until the test fires them.

        @return: The held claims, in order.
        """
        claim = self.store.claim_parse
        held: list[Deferred[None]] = []

        def slow(*args: Any) -> Deferred[Any]:
            held.append(Deferred())
            return held[-1].addCallback(lambda ignored: claim(*args))

        self.patch(self.store, "claim_parse", slow)
        return held

    def test_claimAnsweredAfterStopGivenBack(self) -> None:
        """
        A claim answered once the service is stopping is given back at once,
        unparsed, rather than parsed (minutes for a large file) while the
        stop waits.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        held = self.claim_held()
        service = self.service()
        stopped = service.stopService()
        held[0].callback(None)
        self.successResultOf(stopped)
        self.assertEqual(service.parses.written, 0)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "queued")
        self.assertEqual(self.parquet(), [])

    def test_pausedClaimsNothing(self) -> None:
        """
        A paused service claims nothing, and a claim answered once it is
        paused is given back unparsed; resumed, it parses.
        """
        task_id = self.downloaded("2020-01-01", HUBS.read_bytes())
        held = self.claim_held()
        service = self.service()
        service.pause()
        held[0].callback(None)
        self.clock.advance(60)
        self.assertEqual(len(held), 1)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "queued")
        service.resume()
        held[1].callback(None)
        task = self.successResultOf(self.store.get(task_id))
        assert task is not None
        self.assertEqual(task.parse, "parsed")

    def test_claimUnknownLater(self) -> None:
        """
        If the store cannot say whether the claim holds before the commit,
        nothing is written and the file is given back for a later try,
        with the reason; it is parsed then.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        renew = self.store.renew_parse
        away = [StoreUnavailable("away")]

        def flaky(*args: Any) -> Any:
            if away:
                return fail(away.pop())
            return renew(*args)

        self.store.renew_parse = flaky  # type: ignore[method-assign,assignment]
        service = self.service()
        self.assertEqual(self.parquet(), [])
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.parse, "queued")
        self.assertIn("cannot ask whether the claim", found.parse_error)
        self.clock.advance(TRANSIENT_RETRY)
        self.clock.advance(service.poll_interval)
        self.assertEqual(len(self.parquet()), 2)

    def test_systemErrorLater(self) -> None:
        """
        A zip the system fails to open (too many open files) is given back
        for a later try, with the reason, not recorded as unparsable: it
        is parsed then.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        real = parse.zipfile.ZipFile
        short = [OSError(errno.EMFILE, "Too many open files")]

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if short:
                raise short.pop()
            return real(*args, **kwargs)

        self.patch(parse.zipfile, "ZipFile", flaky)
        service = self.service()
        self.assertEqual(self.parquet(), [])
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.parse, "queued")
        self.assertIn("Too many open files", found.parse_error)
        self.clock.advance(TRANSIENT_RETRY)
        self.clock.advance(service.poll_interval)
        self.assertEqual(len(self.parquet()), 2)

    def test_retiredWindowsDropped(self) -> None:
        """
        The hub drops the tables of the windows the store lists as retired
        when C{task.retired} comes (their zips stay), so that a change of
        windows never doubles a day in the views, makes the removal durable,
        and then the list is empty.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        synced: list[Path] = []
        self.patch(retirement, "sync_file_system", synced.append)
        self.service()
        self.assertEqual(len(self.parquet()), 2)
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.assertEqual(self.parquet(), [])
        # Durably, before the entry is forgotten.
        self.assertEqual(synced, [self.data_dir / "tables"])
        self.assertTrue((self.data_dir / "reports" / "lmp" / "2020-01-01.zip").exists())
        self.assertEqual(self.successResultOf(self.store.retired_tables(10)).entries, ())

    def test_shrunkWindowDropped(self) -> None:
        """
        The hub drops the tables of a window resized to a shorter one under
        the same name (as an hourly window's is) on the janitor's round,
        without waiting for it to be fetched again: they hold hours that
        other windows now answer, which the views would count twice.  Its
        zip stays until the new answer replaces it.
        """
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)

        def request(hours: int) -> ReportURL:
            end = start + datetime.timedelta(hours=hours)
            window = f"startdatetime={start:%Y%m%dT%H:%M}-0000&enddatetime={end:%Y%m%dT%H:%M}-0000"
            url = f"http://oasis.invalid/lmp?{window}"
            return ReportURL(url, "lmp/2020-01-01.zip", "lmp", start, end)

        self.successResultOf(self.store.create([request(2)]))
        task = self.downloaded("2020-01-01", HUBS.read_bytes(), claimed=True)
        self.service()
        self.assertEqual(len(self.parquet()), 2)
        self.successResultOf(self.store.create([request(1)]))
        found = self.successResultOf(self.store.get(task))
        assert found is not None
        self.assertEqual(found.state, PENDING)
        self.clock.advance(JANITOR_INTERVAL)
        self.assertEqual(self.parquet(), [])
        self.assertTrue((self.data_dir / "reports" / "lmp" / "2020-01-01.zip").exists())
        self.assertEqual(self.successResultOf(self.store.retired_tables(10)).entries, ())

    def test_emptiedWindowsDropped(self) -> None:
        """
        A window fetched again (a revision) and answered with no data has
        its tables dropped by the hub when C{task.empty} comes: they held
        rows its request no longer answers.  Its zip stays.
        """
        task = self.downloaded("2020-01-01", HUBS.read_bytes())
        self.service()
        self.assertEqual(len(self.parquet()), 2)
        self.clock.advance(10)
        self.successResultOf(self.store.revise([(task, self.clock.seconds() - 1, "2")]))
        claim = self.successResultOf(self.store.claim("downloader", 60))
        assert claim is not None
        self.successResultOf(self.store.finish(task, "downloader", EMPTY, error="no data", token=claim.claim))
        self.successResultOf(self.bus.publish("task.empty", {"id": task, "report": "lmp"}))
        self.assertEqual(self.parquet(), [])
        self.assertTrue((self.data_dir / "reports" / "lmp" / "2020-01-01.zip").exists())
        self.assertEqual(self.successResultOf(self.store.retired_tables(10)).entries, ())

    def test_emptiedWindowsDroppedByWorker(self) -> None:
        """
        A worker drops from its own tables directory a window that answers
        no data now when C{task.empty} names it, unless its task has been
        put back to be fetched again since.
        """
        emptied = self.downloaded("2020-01-01", HUBS.read_bytes())
        refetched = self.downloaded("2020-01-03", HUBS.read_bytes())
        self.service(keep_views=False)
        self.assertEqual(len(self.parquet()), 4)
        self.clock.advance(10)
        self.successResultOf(
            self.store.revise([(t, self.clock.seconds() - 1, "2") for t in (emptied, refetched)])
        )
        for ignored in range(2):
            claim = self.successResultOf(self.store.claim("downloader", 60))
            assert claim is not None
            self.successResultOf(self.store.finish(claim.id, "downloader", EMPTY, token=claim.claim))
        self.clock.advance(10)
        self.successResultOf(self.store.revise([(refetched, self.clock.seconds() - 1, "3")]))
        for task in (emptied, refetched):
            self.successResultOf(self.bus.publish("task.empty", {"id": task, "report": "lmp"}))
        self.assertEqual([path.name for path in self.parquet()], ["part-2020-01-03.parquet"] * 2)

    def test_retiredUnannouncedDroppedAtStart(self) -> None:
        """
        Windows retired by a process killed before it announced them are
        dropped when the hub's tables service next starts.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        first = self.service()
        self.successResultOf(first.stopService())
        self.retire("lmp/2020-01-01.zip")
        self.assertEqual(len(self.parquet()), 2)
        self.service()
        self.assertEqual(self.parquet(), [])

    def test_revivedBeforeDropKept(self) -> None:
        """
        A window asked for again before its tables were dropped keeps them.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        first = self.service()
        self.successResultOf(first.stopService())
        self.retire("lmp/2020-01-01.zip")
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)
        request = ReportURL("http://oasis.invalid/2020-01-01", "lmp/2020-01-01.zip", "lmp", start, start)
        self.successResultOf(self.store.create([request]))
        self.service()
        self.assertEqual(len(self.parquet()), 2)
        self.assertEqual(self.successResultOf(self.store.retired_tables(10)).entries, ())

    def test_failedDropKeptListed(self) -> None:
        """
        A drop that fails is logged and leaves the windows listed: the next
        drain drops them.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        failing = [True]

        def run(f: Any, *args: Any) -> Any:
            if f is drop_windows and failing and failing.pop():
                return fail(OSError("disk away"))
            return run_now(f, *args)

        service = self.service(run_in_thread=run)
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(len(self.parquet()), 2)
        self.successResultOf(service.retirements.drain())
        self.assertEqual(self.parquet(), [])

    def test_purgedBeforeDropDropped(self) -> None:
        """
        A window whose task was forgotten (purged) before its tables were
        dropped loses them all the same: nobody asks for it.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        first = self.service()
        self.successResultOf(first.stopService())
        self.retire("lmp/2020-01-01.zip")
        self.clock.advance(10)
        self.assertEqual(self.successResultOf(self.store.purge(0)), 1)
        self.service()
        self.assertEqual(self.parquet(), [])

    def test_revivedDuringDropParsedAgain(self) -> None:
        """
        A window brought back, and parsed anew, while its old tables were
        being dropped gets its tables again: forgetting its entry queues it
        to be parsed once more.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        revive: list[bool] = [True]
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)
        request = ReportURL("http://oasis.invalid/2020-01-01", "lmp/2020-01-01.zip", "lmp", start, start)

        def run(f: Any, *args: Any) -> Any:
            if f is drop_windows and revive and revive.pop():
                # Brought back and parsed between the listing and the drop.
                self.successResultOf(self.store.create([request]))
                self.clock.pump([service.poll_interval] * 2)
            return run_now(f, *args)

        service = self.service(run_in_thread=run)
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.clock.pump([service.poll_interval] * 2)
        self.assertEqual(len(self.parquet()), 2)
        task = self.successResultOf(self.store.get(task_id("lmp/2020-01-01.zip")))
        assert task is not None
        self.assertEqual((task.state, task.parse), (DOWNLOADED, "parsed"))

    def test_failedDrainRetried(self) -> None:
        """
        A drain that failed is tried again on the janitor's round and when
        the store comes back, with no retirement needed.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        failures = [OSError("disk away"), OSError("disk away")]

        def run(f: Any, *args: Any) -> Any:
            if f is drop_windows and failures:
                return fail(failures.pop())
            return run_now(f, *args)

        service = self.service(run_in_thread=run)
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.successResultOf(self.bus.publish("store.connected", {}))
        self.assertEqual(len(self.parquet()), 2)
        self.clock.advance(JANITOR_INTERVAL)
        self.assertEqual(self.parquet(), [])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)
        self.assertTrue(service.running)

    def test_drainWithoutStore(self) -> None:
        """
        A drain that cannot read the list for want of the store says so in
        one warning, without a traceback (the store logs its outage), and
        drains again when the store is back.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        service = self.service()
        self.retire("lmp/2020-01-01.zip")
        messages = capture_log(self)
        retired_tables = self.store.retired_tables
        self.patch(
            self.store, "retired_tables", lambda count, storage: fail(StoreUnavailable("Redis is away"))
        )
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.assertEqual(len(self.parquet()), 2)
        [warning] = [m for m in messages if "retired windows" in m]
        self.assertIn("until the store is back: Redis is away", warning)
        self.assertNotIn("Traceback", "\n".join(messages))
        self.patch(self.store, "retired_tables", retired_tables)
        self.successResultOf(self.bus.publish("store.connected", {}))
        self.assertEqual(self.parquet(), [])
        self.assertTrue(service.running)

    def test_stoppingEndsDrain(self) -> None:
        """
        Stopping ends a drain under way after its current batch: the rest
        stays listed, for the next start to drop.
        """
        self.patch(retirement, "BATCH", 1)
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.downloaded("2020-01-02", HUBS.read_bytes())
        stopped: list[Deferred[None]] = []

        def run(f: Any, *args: Any) -> Any:
            if f is drop_windows and not stopped:
                stopped.append(service.stopService())
            return run_now(f, *args)

        service = self.service(run_in_thread=run)
        self.retire("lmp/2020-01-01.zip", "lmp/2020-01-02.zip")
        self.successResultOf(self.bus.publish("task.retired", {"files": []}))
        self.successResultOf(stopped[0])
        self.assertEqual(len(self.successResultOf(self.store.retired_tables(10)).entries), 1)
        self.service()
        self.assertEqual(self.parquet(), [])

    def test_workerDropsWhatEventNames(self) -> None:
        """
        A worker's tables service (no views to keep) drops the windows each
        C{task.retired} names, on its own disk.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.service(keep_views=False)
        self.assertEqual(len(self.parquet()), 2)
        self.retire("lmp/2020-01-01.zip")
        self.successResultOf(
            self.bus.publish("task.retired", {"files": [{"report": "lmp", "filename": "lmp/2020-01-01.zip"}]})
        )
        self.assertEqual(self.parquet(), [])

    def test_workerKeepsRevivedWindow(self) -> None:
        """
        A C{task.retired} that reaches a worker after the window it names
        was asked for again (revived, and parsed anew) leaves its tables:
        they hold the rows its task says were parsed.  Those of a window
        still retired, or purged, in the same event go.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.downloaded("2020-01-03", HUBS.read_bytes())
        self.downloaded("2020-01-05", HUBS.read_bytes())
        self.service(keep_views=False)
        self.assertEqual(len(self.parquet()), 6)
        self.retire("lmp/2020-01-05.zip")
        self.clock.advance(10)
        self.successResultOf(self.store.purge(5))
        self.assertIsNone(self.successResultOf(self.store.get(task_id("lmp/2020-01-05.zip"))))
        self.retire("lmp/2020-01-01.zip", "lmp/2020-01-03.zip")
        start = datetime.datetime(2020, 1, 1, 8, tzinfo=datetime.UTC)
        revived = ReportURL("http://oasis.invalid/2020-01-01", "lmp/2020-01-01.zip", "lmp", start, start)
        self.successResultOf(self.store.create([revived]))
        self.clock.advance(5)
        found = self.successResultOf(self.store.get(task_id("lmp/2020-01-01.zip")))
        assert found is not None
        self.assertEqual((found.state, found.parse), (DOWNLOADED, "parsed"))
        files = [{"report": "lmp", "filename": f"lmp/2020-01-0{day}.zip"} for day in (1, 3, 5)]
        self.successResultOf(self.bus.publish("task.retired", {"files": files}))
        self.assertEqual([path.name for path in self.parquet()], ["part-2020-01-01.parquet"] * 2)

    def test_workerCannotTellKeeps(self) -> None:
        """
        A worker that cannot ask the store whether a window named by
        C{task.retired} is still retired keeps its tables, and says so.
        """
        self.downloaded("2020-01-01", HUBS.read_bytes())
        self.service(keep_views=False)
        self.retire("lmp/2020-01-01.zip")
        self.patch(self.store, "get", lambda identifier: fail(StoreUnavailable("Redis is away")))
        messages = capture_log(self)
        self.successResultOf(
            self.bus.publish("task.retired", {"files": [{"report": "lmp", "filename": "lmp/2020-01-01.zip"}]})
        )
        self.assertEqual(len(self.parquet()), 2)
        self.assertIn(
            "cannot tell whether the tables of 1 retired windows are to go: Redis is away", messages
        )


class FromThreadTests(TestCase):
    """
    How the service's threads ask the reactor (a parse, whether its claim
    holds), with the real reactor and threads.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.service = TablesService(reactor, MemoryTaskStore(Clock()), Bus(), Path(self.mktemp()))

    def test_answer(self) -> Deferred[Any]:
        """
        A thread gets what the L{Deferred} of the function fires with.
        """
        d = deferToThread(self.service._from_thread, lambda: succeed(5))
        return d.addCallback(self.assertEqual, 5)

    def test_failure(self) -> Deferred[Any]:
        """
        A thread gets the exception the function's L{Deferred} fails with.
        """
        d = deferToThread(self.service._from_thread, lambda: fail(StoreUnavailable("away")))
        return self.assertFailure(d, StoreUnavailable)

    def test_noAnswer(self) -> Deferred[Any]:
        """
        A thread waits for an answer at most L{REACTOR_ANSWER_TIMEOUT}
        seconds (it may hold a window's lock), then raises L{TimeoutError}.
        """
        self.patch(tables, "REACTOR_ANSWER_TIMEOUT", 0.05)
        d = deferToThread(self.service._from_thread, Deferred)
        return self.assertFailure(d, TimeoutError)

    def test_notFromTheReactorsThread(self) -> None:
        """
        The reactor's own thread cannot wait for itself: it is told so at
        once.
        """
        with self.assertRaises(RuntimeError):
            self.service._from_thread(lambda: succeed(5))


class DropWindowsTests(SynchronousTestCase):
    """
    L{drop_windows} removes a window's table files, durably when asked.
    """

    def test_durably(self) -> None:
        """
        Asked to be durable, a drop that removed files syncs their file
        system before it returns; one that removed nothing does not.
        """
        tables = Path(self.mktemp())
        day = tables / "lmp" / "trading_date=2020-01-01"
        day.mkdir(parents=True)
        pyarrow.parquet.write_table(pyarrow.table({"x": [1]}), day / "part-2020-01-01.parquet")
        synced: list[Path] = []
        self.patch(retirement, "sync_file_system", synced.append)
        self.assertEqual(drop_windows(tables, [("lmp", "lmp/2020-01-01.zip")], durably=True), 1)
        self.assertEqual(synced, [tables])
        self.assertEqual(drop_windows(tables, [("lmp", "lmp/2020-01-01.zip")], durably=True), 0)
        self.assertEqual(synced, [tables])


class WakerTests(SynchronousTestCase):
    """
    L{Waker} ends waits on L{Waker.wake} or after the poll interval.
    """

    def test_quietWaitsForgotten(self) -> None:
        """
        Waits that run out are not kept: a quiet worker polling for months
        holds no more than its current wait.
        """
        clock = Clock()
        waker = Waker(clock, 5.0)
        for ignored in range(100):
            d = waker.idle()
            clock.advance(5.0)
            self.successResultOf(d)
        waker.idle()
        self.assertEqual(len(waker._waiting), 1)

    def test_wake(self) -> None:
        """
        L{Waker.wake} ends every wait at once and cancels its timer.
        """
        clock = Clock()
        waker = Waker(clock, 5.0)
        waits = [waker.idle(), waker.idle(60.0)]
        waker.wake()
        for d in waits:
            self.successResultOf(d)
        self.assertEqual(clock.getDelayedCalls(), [])


class ViewsTests(SynchronousTestCase):
    """
    L{Views} gives a report a view once it has a committed table.
    """

    def test_directoryWithoutTable(self) -> None:
        """
        A report whose directory exists while its first parse runs is not
        counted as shown, so its first table brings its view.
        """
        tables = Path(self.mktemp())
        (tables / "lmp" / "trading_date=2020-01-01").mkdir(parents=True)
        views = Views(tables, run_now)
        self.successResultOf(views.configure([LMP]))
        self.assertEqual(views.shown, frozenset())

    def test_unreadableTableNotShown(self) -> None:
        """
        A report left without views for a file DuckDB cannot read is not
        counted as shown, so its next table (its reparse) rebuilds the
        views; the others are, and the reason is logged.
        """
        tables = Path(self.mktemp())
        for name in ("good", "bad"):
            day = tables / name / "trading_date=2020-01-01"
            day.mkdir(parents=True)
            pyarrow.parquet.write_table(pyarrow.table({"x": [1]}), day / "part-a.parquet")
        (tables / "bad" / "trading_date=2020-01-01" / "part-a.parquet").write_bytes(b"not parquet")
        views = Views(tables, run_now)
        reports = [
            ReportTopic(name=name, queryname="SLD_FCST", market_run_id="DAM") for name in ("good", "bad")
        ]
        messages = capture_log(self)
        self.successResultOf(views.configure(reports))
        self.assertEqual(views.shown, frozenset({"good"}))
        [warning] = [m for m in messages if "no view for a report" in m]
        self.assertIn("report 'bad' has no view", warning)

    def test_dayRemovedWhileListed(self) -> None:
        """
        A day's directory removed while the views are rebuilt (its window
        rewritten over fewer days) has no file: the views are made over
        the other days', the report is shown, and the rebuild does not
        fail, which would leave the views as they were.
        """
        tables = Path(self.mktemp())
        for n in range(2):
            day = tables / "good" / f"trading_date=2020-01-0{n + 1}"
            day.mkdir(parents=True)
            pyarrow.parquet.write_table(pyarrow.table({"x": [1]}), day / "part-a.parquet")
        removed_when_scanned(self, tables / "good" / "trading_date=2020-01-02")
        views = Views(tables, run_now)
        messages = capture_log(self)
        self.successResultOf(
            views.configure([ReportTopic(name="good", queryname="SLD_FCST", market_run_id="DAM")])
        )
        self.assertEqual(views.shown, frozenset({"good"}))
        self.assertEqual([m for m in messages if "cannot rebuild" in m], [])
        with dataset_views.connect(tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM good").fetchall(), [(1,)])

    def vanishing(self, tables: Path, days: int) -> None:
        """
        Give report C{good} a file a day for C{days} days, and have the
        first making of its view go on reading one of them, listed before,
        that is removed as DuckDB reads footers (its window rewritten over
        fewer days).
        """
        for n in range(days):
            day = tables / "good" / f"trading_date=2020-01-0{n + 1}"
            day.mkdir(parents=True)
            pyarrow.parquet.write_table(pyarrow.table({"x": [1]}), day / "part-a.parquet")
        original, made = dataset_views.source, []

        def source(tables_dir: Path, report: str) -> str:
            made.append(report)
            if len(made) > 1:
                return original(tables_dir, report)
            gone = (tables_dir / report / "trading_date=2020-01-01" / "part-a.parquet").resolve()
            gone.unlink()
            pattern = (tables_dir.resolve() / report / "*" / "*.parquet").as_posix()
            files = f"['{pattern}', '{gone.as_posix()}']"
            return f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"

        self.patch(dataset_views, "source", source)

    def test_vanishedTableShown(self) -> None:
        """
        A report one of whose files is removed while its view is made (a
        window rewritten over fewer days) is no unreadable one: it has its
        view, over the files in place, counted as shown, and no warning.
        """
        tables = Path(self.mktemp())
        self.vanishing(tables, 2)
        views = Views(tables, run_now)
        messages = capture_log(self)
        self.successResultOf(
            views.configure([ReportTopic(name="good", queryname="SLD_FCST", market_run_id="DAM")])
        )
        self.assertEqual(views.shown, frozenset({"good"}))
        self.assertEqual([m for m in messages if "no view for a report" in m], [])
        with dataset_views.connect(tables) as connection:
            self.assertEqual(connection.execute("SELECT count(*) FROM good").fetchall(), [(1,)])

    def test_everyTableVanishedNotShown(self) -> None:
        """
        A report whose every file is removed while its view is made has no
        view and is not counted as shown, so that its next table brings it.
        """
        tables = Path(self.mktemp())
        self.vanishing(tables, 1)
        views = Views(tables, run_now)
        self.successResultOf(
            views.configure([ReportTopic(name="good", queryname="SLD_FCST", market_run_id="DAM")])
        )
        self.assertEqual(views.shown, frozenset())

    def test_newWideColumnsRebuild(self) -> None:
        """
        A table bringing a column the report's wide view should read (its
        answers switched from XML to CSV) has the views made again, so that
        its rows are not left out of the wide view; a table bringing none
        does not.
        """
        tables, zips = Path(self.mktemp()), Path(self.mktemp())
        day = datetime.date(2020, 1, 2)
        xml = simulated(zips / "x.zip", "PRC_LMP", "DAM", day, day, csv=False, nodes=3)
        xml_again = simulated(zips / "y.zip", "PRC_LMP", "DAM", day, day, csv=False, nodes=3)
        rebuilds = []

        def counted(f: Any, *args: object) -> Any:
            rebuilds.append(f)
            return run_now(f, *args)

        views = Views(tables / "tables", counted)
        self.successResultOf(views.configure([LMP]))
        written = write(xml, tables / "tables", "lmp", label="2020-01-02")
        self.successResultOf(views.written("lmp", written.columns))
        written = write(xml_again, tables / "tables", "lmp", label="2020-01-02_b")
        self.successResultOf(views.written("lmp", written.columns))
        self.assertEqual(len(rebuilds), 2)
        later = datetime.date(2020, 1, 5)
        csv = simulated(zips / "c.zip", "PRC_LMP", "DAM", later, later, nodes=3)
        written = write(csv, tables / "tables", "lmp", label="2020-01-05")
        self.successResultOf(views.written("lmp", written.columns))
        self.assertEqual(len(rebuilds), 3)
        with duckdb.connect(str(tables / "tables" / "harbour.duckdb"), read_only=True) as connection:
            [(priced,)] = connection.execute(
                "SELECT count(lmp) FROM lmp_wide WHERE trading_date = '2020-01-05'"
            ).fetchall()
        self.assertEqual(priced, 3 * 24)


class JanitorTests(SynchronousTestCase):
    """
    The tables service removes what parses killed mid-write left behind.
    """

    def test_abandonedTemporaryFiles(self) -> None:
        """
        A temporary Parquet file nobody has written to for an hour is
        removed on the janitor's round; a fresh one, and every final file,
        stay.
        """
        now = 1_750_000_000.0
        clock = Clock()
        clock.advance(now)
        data_dir = Path(self.mktemp())
        day = data_dir / "tables" / "lmp" / "trading_date=2020-01-01"
        day.mkdir(parents=True)
        old = day / ".part-2020-01-01.parquet.1.2.0.tmp"
        fresh = day / ".part-2020-01-02.parquet.1.3.0.tmp"
        final = day / "part-2020-01-01.parquet"
        for path in (old, fresh, final):
            path.write_bytes(b"x")
        hours_ago = now - ABANDONED_AFTER - 60
        os.utime(old, (hours_ago, hours_ago))
        os.utime(final, (hours_ago, hours_ago))
        os.utime(fresh, (now, now))
        service = TablesService(
            clock,
            MemoryTaskStore(clock),
            Bus(),
            data_dir,
            owner="parser",
            run_in_thread=run_now,
            configured=True,
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(sorted(p.name for p in day.iterdir()), sorted([fresh.name, final.name]))
