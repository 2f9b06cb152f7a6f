"""
Tests for L{harbour.config.topics}: topics check their values when built,
whatever builds them, and survive a trip through JSON.
"""

from __future__ import annotations

import datetime
import json
import pickle
from pathlib import Path
from typing import Any

import attr
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.bus import Bus
from harbour.config.checks import DATA_DIR_ENTRIES, DATASET_FILES, Invalid
from harbour.config.schema import load_directory
from harbour.config.topics import (
    TOPICS,
    DownloadTopic,
    ManifestTopic,
    ReportTopic,
    Topic,
    TopicError,
    WorkTopic,
    to_payload,
)
from harbour.dataset.views import DATABASE, REPORTS_FILE
from harbour.oasis.requests import market_today, report_urls
from harbour.service import Options
from harbour.services.tables import TablesService
from harbour.store.memory import MemoryTaskStore

#: A value for every key of every topic, none of them the default.
FULL: dict[str, dict[str, Any]] = {
    "manifest": {
        "base_url": "https://oasis.example/oasisapi",
        "start": "2024-01-01",
        "end": "-2d",
        "timezone": "Europe/Paris",
        "follow_publications": False,
        "publications_interval": 60.5,
    },
    "reports": {
        "name": "lmp-groups",
        "queryname": None,
        "groupid": "DAM_LMP_GRP",
        "kind": "group_zip",
        "market_run_id": "DAM",
        "version": 12,
        "resultformat": "csv",
        "window": "1d",
        "params": {"grp_type": "ALL_APNODES", "node": "N1"},
        "start": "-1y",
        "end": "2025-01-31",
        "enabled": False,
        "publication_delay": "+2h",
    },
    "work": {
        "refresh_interval": 60.0,
        "lease_seconds": 30.0,
        "max_attempts": 3,
        "retry_base": 0.5,
        "retry_cap": 30.0,
        "retired_retention": 86400.0,
    },
    "download": {
        "directory": "elsewhere",
        "concurrency": 8,
        "min_request_interval": 0.0,
        "max_bytes_per_second": 10_000,
        "connect_timeout": 5.0,
        "idle_timeout": 10.0,
        "max_bytes": 1024,
        "keep_revisions": False,
        "audit_interval": 3600.0,
    },
}


class ConstructionTests(SynchronousTestCase):
    """
    Building a topic directly runs every check.
    """

    def assertRefused(self, build: Any, key: str, why: str) -> TopicError:
        """
        Assert that C{build()} raises L{TopicError} with one problem, at
        C{key}, whose message contains C{why}.

        @return: The error.
        """
        error = self.assertRaises(TopicError, build)
        self.assertEqual([k for k, ignored in error.problems], [key])
        self.assertIn(why, error.problems[0][1])
        self.assertIn(key, str(error))
        return error

    def test_manifest(self) -> None:
        """
        A L{ManifestTopic} with a bad value is refused, naming the key and
        why: a C{base_url} with a query or a fragment too, or without a
        host, or with a port that is not one, which would break every
        request's URL.
        """
        self.assertRefused(lambda: ManifestTopic(base_url="ftp://x"), "base_url", "http:// or https://")
        for base_url in ("https://oasis.caiso.com/oasisapi?x=1", "https://h/api#top", "https://h/api?"):
            self.assertRefused(
                lambda base_url=base_url: ManifestTopic(base_url=base_url),
                "base_url",
                "must not carry a query (?...) or a fragment (#...)",
            )
        for base_url in ("http://:18751/oasisapi", "http://user@/oasisapi"):
            self.assertRefused(
                lambda base_url=base_url: ManifestTopic(base_url=base_url), "base_url", "must name a host"
            )
        for base_url in (
            "http://127.0.0.1:abc/oasisapi",
            "http://h:99999/api",
            "http://h:0/api",
            "http://h:/api",
            "http://[::1]:/api",
        ):
            self.assertRefused(
                lambda base_url=base_url: ManifestTopic(base_url=base_url),
                "base_url",
                "must have a port from 1 to 65535",
            )
        for base_url in ("http://127.0.0.1:18751/oasisapi", "http://[::1]:80/api", "http://[::1]/api"):
            self.assertEqual(ManifestTopic(base_url=base_url).base_url, base_url)
        self.assertRefused(lambda: ManifestTopic(start="yesterday"), "start", "must be a date")
        self.assertRefused(
            lambda: ManifestTopic(timezone="Mars/Olympus"), "timezone", "not a known time zone"
        )
        self.assertRefused(
            lambda: ManifestTopic(publications_interval=0),
            "publications_interval",
            "must be at least 1, not 0",
        )

    def test_report(self) -> None:
        """
        A L{ReportTopic} with a bad value is refused, naming the key and why.
        """
        self.assertRefused(lambda: ReportTopic(name="../up", queryname="Q"), "name", "may use only")
        self.assertRefused(
            lambda: ReportTopic(name="a" * 101, queryname="Q"), "name", "at most 100 characters, not 101"
        )
        self.assertEqual(ReportTopic(name="a" * 100, queryname="Q").name, "a" * 100)
        for name in ("harbour.duckdb", "Harbour.views.json", "harbour.duckdb.wal"):
            self.assertRefused(
                lambda name=name: ReportTopic(name=name, queryname="Q"),
                "name",
                "is the name of one of the dataset's own files",
            )
        for name in ("harbour", "harbour.lmp", "harbour.duckdbx"):
            self.assertEqual(ReportTopic(name=name, queryname="Q").name, name)

    def test_emptyNames(self) -> None:
        """
        An empty or blank C{queryname}, C{groupid} or C{market_run_id} is
        refused at its key, as a configuration error at its line: OASIS
        answers no such name, and an empty C{queryname} once broke the
        loader with a L{TypeError}.
        """
        for key in ("queryname", "groupid"):
            empty: dict[str, Any] = {key: ""}
            blank: dict[str, Any] = {key: " "}
            self.assertRefused(lambda empty=empty: ReportTopic(name="a", **empty), key, "must not be empty")
            self.assertRefused(lambda blank=blank: ReportTopic(name="a", **blank), key, "must not be blank")
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="SLD_FCST", market_run_id=""),
            "market_run_id",
            "must not be empty",
        )
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "a.toml").write_text('[[reports]]\nname = "a"\nqueryname = ""\n')
        configuration, problems = load_directory(directory)
        self.assertIsNone(configuration)
        self.assertEqual([str(p) for p in problems], ["a.toml:3: reports[0].queryname: must not be empty"])

    def test_datasetFiles(self) -> None:
        """
        The names a report may not have are those of the dataset's own
        files, as the dataset names them.
        """
        self.assertEqual(set(DATASET_FILES), {DATABASE, REPORTS_FILE})
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="Q", window="32d"), "window", "between 1h and 31d"
        )
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="Q", params={"x": [1]}),  # type: ignore[dict-item]
            "params",
            "parameter 'x' must be a string or number",
        )
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="Q", version=0), "version", "must be at least 1"
        )

    def test_windowOfHoursPastADay(self) -> None:
        """
        A window of more hours than the longest trading day must be a whole
        number of days: windows of hours never cross a trading day, so
        C{"36h"} would ask a day at a time.  A day's worth of hours (up to
        25, the autumn change day) and whole days in hours are kept.
        """
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="Q", window="36h"),
            "window",
            'a window longer than 25h is a whole number of days, such as "1d" or "2d", not \'36h\'',
        )
        for window in ("23h", "25h", "48h", "744h"):
            self.assertEqual(ReportTopic(name="a", queryname="Q", window=window).window, window)

    def test_work(self) -> None:
        """
        A L{WorkTopic} with a bad value is refused, naming the key and why.
        """
        self.assertRefused(lambda: WorkTopic(lease_seconds=1), "lease_seconds", "must be at least 5, not 1")
        self.assertRefused(lambda: WorkTopic(max_attempts=True), "max_attempts", "must be a whole number")
        self.assertRefused(lambda: WorkTopic(lease_seconds=86401), "lease_seconds", "must be at most 86400")
        self.assertRefused(lambda: WorkTopic(max_attempts=1001), "max_attempts", "must be at most 1000")
        self.assertRefused(
            lambda: WorkTopic(refresh_interval=1e308), "refresh_interval", "must be at most 315360000"
        )

    def test_notFinite(self) -> None:
        """
        TOML's C{nan} and C{inf} are refused wherever a number is asked
        for: a lease of C{nan} seconds reached Redis's scripts, which
        failed halfway through a claim.
        """
        for value in (float("nan"), float("inf"), float("-inf")):
            self.assertRefused(
                lambda value=value: WorkTopic(lease_seconds=value), "lease_seconds", "must be a finite number"
            )
            self.assertRefused(
                lambda value=value: DownloadTopic(idle_timeout=value),
                "idle_timeout",
                "must be a finite number",
            )

    def test_publicationDelayBounded(self) -> None:
        """
        A C{publication_delay} reaching more than 366 days
        either way, in any unit, or with more digits than Python reads, is
        refused at its key; the farthest accepted plan without error, where
        one of hundreds of thousands of days left the calendar and stopped
        the planning of every report.
        """
        for delay in (
            "+367d",
            "-367d",
            "+8785h",
            "-527041m",
            "+800000d",
            "-3000000d",
            "+" + "9" * 5000 + "d",
        ):
            self.assertRefused(
                lambda delay=delay: ReportTopic(name="r", queryname="Q", publication_delay=delay),
                "publication_delay",
                "must be within 366 days either way",
            )
        manifest = ManifestTopic(start="2024-01-01", end="today")
        now = 1_750_000_000.0
        for delay in ("+366d", "-366d", "+8784h", "-527040m", "+0000366d"):
            report = ReportTopic(name="r", queryname="Q", window="1d", publication_delay=delay)
            self.assertEqual(report.publication_delay, delay)
            report_urls(manifest, [report], market_today(manifest, now), now=now)

    def test_refusedByTheirLibraries(self) -> None:
        """
        A value that the library a check relies on refuses with an error
        of its own is refused as a bad value, not let through as a crash:
        a region of the time zone database ("US" and "Europe" are
        directories of zones), a URL that cannot be split, and a whole
        number too long for Python to write out (TOML allows one in hex).
        """
        for region in ("US", "Europe", "Etc", "Canada"):
            self.assertRefused(
                lambda region=region: ManifestTopic(timezone=region), "timezone", "not a known time zone"
            )
        self.assertRefused(lambda: ManifestTopic(base_url="http://[::1"), "base_url", "http:// or https://")
        huge = 16**5000
        self.assertRefused(
            lambda: WorkTopic(max_attempts=huge),
            "max_attempts",
            "must be at most 1000, not a number too long",
        )
        self.assertRefused(
            lambda: WorkTopic(max_attempts=[huge]),  # type: ignore[arg-type]
            "max_attempts",
            "must be a whole number, not a value too long to show (list)",
        )
        self.assertRefused(
            lambda: ReportTopic(name="a", queryname="Q", params={"x": huge}),  # type: ignore[dict-item]
            "params",
            "parameter 'x' is a number too long to show",
        )

    def test_download(self) -> None:
        """
        A L{DownloadTopic} with a bad value is refused, naming the key and
        why.
        """
        error = self.assertRefused(
            lambda: DownloadTopic(min_request_interval=-1),
            "min_request_interval",
            "must be at least 0, not -1",
        )
        self.assertEqual(str(error), "DownloadTopic: min_request_interval: must be at least 0, not -1")
        self.assertRefused(lambda: DownloadTopic(concurrency=65), "concurrency", "must be at most 64")

    def test_downloadDirectory(self) -> None:
        """
        The download directory is a directory inside the data directory,
        given relative to it: not empty, leaving it through a C{..}, nor
        one of its own entries or inside one, in any case; or an absolute
        one (on another volume), not the root.  It is kept without C{.}
        parts, doubled or trailing slashes.
        """
        refusals = {
            "": "the data directory itself",
            ".": "the data directory itself",
            "/": "is the root directory",
            "//": "is the root directory",
            "/srv/../etc": "has a '..' part",
            "../..": "has a '..' part",
            "mirror/../reports": "has a '..' part",
            "redis": "the data directory's own 'redis'",
            "tables": "the data directory's own 'tables'",
            "Tables/lmp": "the data directory's own 'Tables'",
            "amp.token": "the data directory's own 'amp.token'",
            "a\0b": "NUL",
        }
        for value, why in refusals.items():
            self.assertRefused(lambda value=value: DownloadTopic(directory=value), "directory", why)
        accepted = {
            "reports": "reports",
            "./mirror//2025/": "mirror/2025",
            "tables.old": "tables.old",
            "/srv/mirror/": "/srv/mirror",
        }
        for value, kept in accepted.items():
            self.assertEqual(DownloadTopic(directory=value).directory, kept)

    def test_dataDirEntries(self) -> None:
        """
        The entries a download directory may not be are the data
        directory's own, as the services name them.
        """
        tables = TablesService(Clock(), MemoryTaskStore(Clock()), Bus(), Path("data")).tables_dir
        options = Options()
        config = Path(self.mktemp())
        config.mkdir()
        options.parseOptions(["--config-dir", str(config), "--data-dir", "data"])
        self.assertLessEqual({tables.name, Path(options["token-file"]).name}, set(DATA_DIR_ENTRIES))

    def test_everyBadValueAtOnce(self) -> None:
        """
        Every bad value of one construction is reported, in field order.
        """
        error = self.assertRaises(
            TopicError, DownloadTopic, max_bytes=0, concurrency="four", min_request_interval=-1
        )
        self.assertEqual(
            [key for key, ignored in error.problems], ["concurrency", "min_request_interval", "max_bytes"]
        )
        self.assertEqual(error.topic, "DownloadTopic")

    def test_errorIsValueError(self) -> None:
        """
        L{TopicError} is an L{Invalid} and so a L{ValueError}, for callers
        that catch either.
        """
        error = self.assertRaises(TopicError, WorkTopic, max_attempts=0)
        self.assertIsInstance(error, Invalid)
        self.assertIsInstance(error, ValueError)

    def test_errorPickles(self) -> None:
        """
        A L{TopicError} survives pickling with its problems, as a failure
        crossing a thread or process boundary may need.
        """
        error = self.assertRaises(TopicError, WorkTopic, max_attempts=0)
        copy = pickle.loads(pickle.dumps(error))
        self.assertEqual((copy.topic, copy.problems, str(copy)), (error.topic, error.problems, str(error)))

    def test_valuesAreCanonical(self) -> None:
        """
        The value kept is the one the check returns: dates as strings,
        numbers for floats as floats, parameters as strings, URLs without a
        trailing slash.
        """
        manifest = ManifestTopic(base_url="http://h/api/", start=datetime.date(2024, 1, 1))  # type: ignore[arg-type]
        self.assertEqual((manifest.base_url, manifest.start), ("http://h/api", "2024-01-01"))
        work = WorkTopic(retry_cap=7)
        self.assertEqual((work.retry_cap, type(work.retry_cap)), (7.0, float))
        report = ReportTopic(name="a", queryname="Q", params={"hour": 12})  # type: ignore[dict-item]
        self.assertEqual(report.params, {"hour": "12"})

    def test_evolveChecks(self) -> None:
        """
        L{attr.evolve} builds a new topic, so it checks too.
        """
        self.assertRaises(TopicError, attr.evolve, DownloadTopic(), concurrency=0)


class WholeReportTests(SynchronousTestCase):
    """
    L{ReportTopic.check_whole} runs at construction.
    """

    def test_kindImplied(self) -> None:
        """
        C{kind} follows from C{queryname} or C{groupid} when not given.
        """
        self.assertEqual(ReportTopic(name="a", queryname="Q").kind, "single_zip")
        self.assertEqual(ReportTopic(name="a", groupid="G").kind, "group_zip")

    def test_exactlyOne(self) -> None:
        """
        Neither or both of C{queryname} and C{groupid} is refused.
        """
        for values in [{}, {"queryname": "Q", "groupid": "G"}]:
            error = self.assertRaises(TopicError, ReportTopic, name="a", **values)
            self.assertEqual([key for key, ignored in error.problems], ["queryname"])
            self.assertIn("exactly one of queryname", str(error))

    def test_kindMismatch(self) -> None:
        """
        A C{kind} that contradicts the key given is refused at C{kind}.
        """
        error = self.assertRaises(TopicError, ReportTopic, name="a", groupid="G", kind="single_zip")
        self.assertEqual(
            error.problems, [("kind", "kind 'single_zip' does not fit groupid (use 'group_zip')")]
        )

    def test_reversedRange(self) -> None:
        """
        A C{start} after C{end}, both dates, is refused at C{start}, for a
        report as for the manifest; a relative bound is not compared.
        """
        for topic, values in [(ManifestTopic, {}), (ReportTopic, {"name": "a", "queryname": "Q"})]:
            error = self.assertRaises(TopicError, topic, start="2026-11-20", end="2026-11-10", **values)
            self.assertEqual(
                error.problems,
                [("start", "start 2026-11-20 is after end 2026-11-10: the range would ask for nothing")],
            )
            self.assertEqual(topic(start="2026-11-10", end="2026-11-10", **values).end, "2026-11-10")
            self.assertEqual(topic(start="2099-01-01", end="today", **values).end, "today")

    def test_wholeAfterFields(self) -> None:
        """
        A check of the fields together is skipped when a field it reads
        fails its own check, so one mistake is not reported twice.
        """
        error = self.assertRaises(TopicError, ReportTopic, name="a", queryname=3)
        self.assertEqual([key for key, ignored in error.problems], ["queryname"])
        self.assertIn("must be a string", str(error))

    def test_wholeDespiteOtherFields(self) -> None:
        """
        The checks of the fields together run on the fields that passed
        their own: a value refused hides none of the problems of the
        others, whether the topic is built directly or from a payload.
        """
        values: dict[str, Any] = {
            "name": "lmp",
            "queryname": "PRC_LMP",
            "resultformat": "json",
            "window": "7d",
            "params": {"grp_type": "ALL"},
        }
        for build in [lambda: ReportTopic(**values), lambda: ReportTopic.from_payload(values)]:
            error = self.assertRaises(TopicError, build)
            self.assertEqual([key for key, ignored in error.problems], ["resultformat", "window", "params"])
            self.assertIn("a window of 168 h is longer than one request may cover", error.problems[1][1])
            self.assertIn("market_run_id is required", error.problems[2][1])
        error = self.assertRaises(
            TopicError,
            ManifestTopic.from_payload,
            {"start": "2026-11-20", "end": "2026-11-10", "timezone": "Mars"},
        )
        self.assertEqual([key for key, ignored in error.problems], ["timezone", "start"])

    def test_wholeSkipsOnlyWhatReadsARefusedField(self) -> None:
        """
        A refused field skips only the checks that read it: a refused
        C{market_run_id} hides which parameters are required but not a
        window too long; a refused C{window} hides neither the required
        parameters nor the market; refused C{params} hide the catalogue's
        rules but not C{kind}; a refused bound hides the range's order.
        """
        cases: list[tuple[dict[str, Any], list[str]]] = [
            (
                {"queryname": "PRC_LMP", "market_run_id": 5, "window": "7d", "params": {"grp_type": "ALL"}},
                ["market_run_id", "window"],
            ),
            ({"queryname": "PRC_LMP", "window": "40d"}, ["window", "params", "params"]),
            ({"groupid": "DAM_LMP_GRP", "kind": "single_zip", "params": []}, ["params", "kind"]),
            ({"queryname": "Q", "start": "2026-11-20", "end": "soon"}, ["end"]),
        ]
        for values, keys in cases:
            error = self.assertRaises(TopicError, ReportTopic.from_payload, {"name": "r", **values})
            self.assertEqual([key for key, ignored in error.problems], keys, error.problems)


class FromPayloadTests(SynchronousTestCase):
    """
    Tests for L{Topic.from_payload}.
    """

    def test_good(self) -> None:
        """
        A good table gives the topic, with defaults for what it omits.
        """
        self.assertEqual(DownloadTopic.from_payload({"concurrency": 4}), DownloadTopic(concurrency=4))

    def test_unknownKeySuggestion(self) -> None:
        """
        An unknown key is refused with the closest known key.
        """
        error = self.assertRaises(TopicError, DownloadTopic.from_payload, {"concurency": 4})
        message = "unknown key 'concurency' (did you mean \"concurrency\"?)"
        self.assertEqual(error.problems, [("concurency", message)])
        self.assertEqual(str(error), f"DownloadTopic: concurency: {message}")

    def test_unknownKeyNoSuggestion(self) -> None:
        """
        An unknown key like no known one is refused without a suggestion.
        """
        error = self.assertRaises(TopicError, WorkTopic.from_payload, {"zzz": 1})
        self.assertEqual(error.problems, [("zzz", "unknown key 'zzz'")])

    def test_missingRequired(self) -> None:
        """
        A required key that is absent is a problem of the whole table.
        """
        error = self.assertRaises(TopicError, ReportTopic.from_payload, {"queryname": "Q"})
        self.assertEqual(error.problems, [("", "missing required key 'name'")])
        self.assertEqual(str(error), "ReportTopic: missing required key 'name'")

    def test_everyProblemAtOnce(self) -> None:
        """
        Unknown keys, missing keys and bad values are all reported together:
        unknown keys first, then the rest in field order.
        """
        error = self.assertRaises(
            TopicError,
            ReportTopic.from_payload,
            {"windw": "1d", "queryname": 3, "version": 0, "enabled": "yes"},
        )
        self.assertEqual(
            [key for key, ignored in error.problems], ["windw", "", "queryname", "version", "enabled"]
        )
        self.assertIn('did you mean "window"', error.problems[0][1])

    def test_notATable(self) -> None:
        """
        A payload that is not a table is refused, not a crash.
        """
        error = self.assertRaises(TopicError, ManifestTopic.from_payload, [1, 2])
        self.assertEqual(error.problems, [("", "must be a table, not [1, 2] (list)")])

    def test_defaults(self) -> None:
        """
        Defaults fill what the payload omits, are overridden by what it
        gives, are checked, and are ignored where they name no key.
        """
        defaults = {"base_url": "http://127.0.0.1:1/oasisapi/", "nothing": 1}
        self.assertEqual(ManifestTopic.from_payload({}, defaults).base_url, "http://127.0.0.1:1/oasisapi")
        given = ManifestTopic.from_payload({"base_url": "http://other/"}, defaults)
        self.assertEqual(given.base_url, "http://other")
        error = self.assertRaises(TopicError, ManifestTopic.from_payload, {}, {"base_url": "nowhere"})
        self.assertEqual([key for key, ignored in error.problems], ["base_url"])

    def test_whole(self) -> None:
        """
        The checks of several fields together run too.
        """
        error = self.assertRaises(TopicError, ReportTopic.from_payload, {"name": "a"})
        self.assertEqual([key for key, ignored in error.problems], ["queryname"])

    def test_subclassOfTopic(self) -> None:
        """
        Every topic class is a L{Topic}, so has L{Topic.from_payload}.
        """
        for cls, ignored in TOPICS.values():
            self.assertTrue(issubclass(cls, Topic))


class RoundTripTests(SynchronousTestCase):
    """
    A topic sent as JSON and rebuilt is equal to the original: every check
    is idempotent.
    """

    def roundTrip(self, topic: Topic) -> None:
        """
        Assert that C{topic}'s payload, through JSON, gives back an equal
        topic and the same payload, whether rebuilt with
        L{Topic.from_payload} or with the class itself.
        """
        cls = type(topic)
        payload = to_payload(topic)
        sent = json.loads(json.dumps(payload))
        self.assertEqual(sent, payload)
        self.assertEqual(cls.from_payload(sent), topic)
        self.assertEqual(cls(**sent), topic)
        self.assertEqual(to_payload(cls.from_payload(sent)), payload)

    def test_defaults(self) -> None:
        """
        Every topic of default values makes the round trip.
        """
        self.roundTrip(ManifestTopic())
        self.roundTrip(WorkTopic())
        self.roundTrip(DownloadTopic())
        self.roundTrip(ReportTopic(name="a", queryname="Q"))
        self.roundTrip(ReportTopic(name="a", groupid="G"))

    def test_full(self) -> None:
        """
        Every topic with every key given makes the round trip, and its
        payload is what was given.
        """
        for topic, (cls, ignored) in TOPICS.items():
            value = cls.from_payload(FULL[topic])
            self.assertEqual(to_payload(value), FULL[topic])
            self.roundTrip(value)

    def test_canonicalised(self) -> None:
        """
        Values a file gives in another form (a TOML date, an integer for a
        float, a number parameter) make the round trip once canonical.
        """
        manifest = ManifestTopic.from_payload(
            {"start": datetime.date(2024, 2, 29), "publications_interval": 60}
        )
        self.assertEqual(to_payload(manifest)["start"], "2024-02-29")
        self.roundTrip(manifest)
        params = {"v": 12, "x": 1.5}
        self.roundTrip(ReportTopic.from_payload({"name": "a", "queryname": "Q", "params": params}))

    def test_list(self) -> None:
        """
        A list of reports is a list of payloads.
        """
        reports = [ReportTopic(name="a", queryname="Q"), ReportTopic(name="b", groupid="G")]
        self.assertEqual([ReportTopic.from_payload(p) for p in to_payload(reports)], reports)


class CatalogueRulesTests(SynchronousTestCase):
    """
    A report the catalogue of OASIS reports knows gets its largest window
    by default and is held to the specification's limits.
    """

    def test_defaultWindows(self) -> None:
        """
        Without C{window}, a report gets the largest its parameters allow:
        31 days, a day for all nodes of C{PRC_LMP}, an hour for all nodes of
        C{PRC_INTVL_LMP}, a day for a group; a report the catalogue does
        not know gets a day.  A report OASIS serves only current data of,
        asked for once each window is over, gets an hour, as a window is
        asked only while its day is today; asked before (its own negative
        delay, or C{TRNS_CURR_USAGE}'s days ahead), the largest.
        """
        cases = [
            ({"queryname": "SLD_FCST", "market_run_id": "DAM"}, "31d"),
            ({"queryname": "PRC_LMP", "market_run_id": "DAM", "params": {"node": "TH_NP15_GEN-APND"}}, "31d"),
            ({"queryname": "PRC_LMP", "market_run_id": "DAM", "params": {"grp_type": "ALL_APNODES"}}, "1d"),
            ({"queryname": "PRC_INTVL_LMP", "market_run_id": "RTM", "params": {"grp_type": "ALL"}}, "1h"),
            ({"queryname": "PRC_AS", "market_run_id": "DAM"}, "1d"),
            ({"groupid": "DAM_LMP_GRP"}, "1d"),
            ({"queryname": "NOT_OASIS"}, "1d"),
            ({"queryname": "PRC_CURR_LMP", "market_run_id": "RTM", "params": {"node": "ALL"}}, "1h"),
            ({"queryname": "PRC_CURR_HUB_LMP"}, "1h"),
            ({"groupid": "CURR_LMP_GRP"}, "1h"),
            ({"groupid": "CURR_LMP_GRP", "publication_delay": "-5m"}, "1d"),
            ({"queryname": "TRNS_CURR_USAGE", "params": {"ti_id": "ALL", "ti_direction": "ALL"}}, "1d"),
        ]
        for values, expected in cases:
            self.assertEqual(ReportTopic(name="r", **values).window, expected, values)  # type: ignore[arg-type]

    def test_windowBeyondLimit(self) -> None:
        """
        A window longer than the report allows is refused, naming the limit
        and the section of the specification it comes from.
        """
        error = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="PRC_LMP",
            market_run_id="DAM",
            params={"grp_type": "ALL"},
            window="7d",
        )
        [(key, message)] = error.problems
        self.assertEqual(key, "window")
        self.assertIn("1d", message)
        self.assertIn("section 6", message)

    def test_currentOnlyDayRefused(self) -> None:
        """
        A window of a day or more for a report OASIS serves only current
        data of, asked for once each window is over, is refused, saying
        that none would ever be fetched; with a negative delay of its own
        the report may have one.
        """
        for window in ("1d", "24h", "25h", "2d"):
            error = self.assertRaises(
                TopicError, ReportTopic, name="r", groupid="CURR_LMP_GRP", window=window
            )
            # Beyond a day, the catalogue's limit is told too.
            self.assertEqual({key for key, ignored in error.problems}, {"window"})
            [message] = [m for ignored, m in error.problems if "none would ever be fetched" in m]
            self.assertIn("CURR_LMP_GRP: OASIS serves only its current data", message)
            self.assertIn(f"a window of {window} is over only once its day is past", message)
        late = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="PRC_CURR_HUB_LMP",
            window="1d",
            publication_delay="+5m",
        )
        self.assertIn("(publication +5m)", late.problems[0][1])
        self.assertEqual(ReportTopic(name="r", groupid="CURR_LMP_GRP", window="23h").window, "23h")
        ahead = ReportTopic(name="r", groupid="CURR_LMP_GRP", window="1d", publication_delay="-1h")
        self.assertEqual(ahead.window, "1d")

    def test_publishedAheadDaysRefused(self) -> None:
        """
        A window of several days for a report OASIS serves only current
        data of and publishes ahead (C{TRNS_CURR_USAGE}, six days ahead) is
        refused at its line, saying that its past days would be lost: each
        window is asked again from today on, its answer replacing its
        file.  A day, or hours, may be given; and so may several days with
        a delay of its own that is not negative (then it is asked for once
        over, and refused for that).
        """
        params = {"ti_id": "ALL", "ti_direction": "ALL"}
        for window in ("2d", "7d", "31d"):
            error = self.assertRaises(
                TopicError, ReportTopic, name="r", queryname="TRNS_CURR_USAGE", params=params, window=window
            )
            [(key, message)] = error.problems
            self.assertEqual(key, "window")
            self.assertIn(
                "TRNS_CURR_USAGE: OASIS serves only its current data, published ahead (-6d)", message
            )
            self.assertIn(f"a window of {window} asked again from today on would lose its past days", message)
        for window in ("1d", "24h", "25h", "6h"):
            topic = ReportTopic(name="r", queryname="TRNS_CURR_USAGE", params=params, window=window)
            self.assertEqual(topic.window, window)
        late = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="TRNS_CURR_USAGE",
            params=params,
            window="7d",
            publication_delay="+0h",
        )
        self.assertNotIn("published ahead", late.problems[0][1])

    def test_dayGroupHoursRefused(self) -> None:
        """
        A window shorter than a day for a group whose requests carry no
        C{enddatetime} is refused, quoting spec section 2.2: OASIS answers
        each with the whole trading day, so each day would be asked for
        as many times as it has windows.  A day, 25 hours, an hourly group
        (which carries C{enddatetime}), a group OASIS serves only current
        data of and a group the catalogue does not know may have their
        windows.
        """
        for window, times in [("1h", 25), ("6h", 5), ("23h", 2)]:
            error = self.assertRaises(TopicError, ReportTopic, name="r", groupid="DAM_LMP_GRP", window=window)
            [(key, message)] = error.problems
            self.assertEqual(key, "window")
            self.assertIn("DAM_LMP_GRP: OASIS answers a GroupZip request with the whole trading day", message)
            self.assertIn("spec section 2.2", message)
            self.assertIn(f"a window of {window} would ask for each day up to {times} times", message)
        self.assertRaises(TopicError, ReportTopic, name="r", groupid="CB_REF_PRC_GRP", window="12h")
        for values in [
            {"groupid": "DAM_LMP_GRP", "window": "1d"},
            {"groupid": "DAM_LMP_GRP", "window": "24h"},
            {"groupid": "DAM_LMP_GRP", "window": "25h"},
            {"groupid": "HASP_LMP_GRP", "window": "1h"},
            {"groupid": "CURR_LMP_GRP", "window": "1h"},
            {"groupid": "NEW_GRP", "window": "6h"},
        ]:
            self.assertEqual(ReportTopic(name="r", **values).window, values["window"])  # type: ignore[arg-type]

    def test_allNodesShortWindowRefused(self) -> None:
        """
        Asked for all nodes, a report is refused a window shorter than the
        span OASIS answers then from each C{startdatetime} (its
        C{max_span_all_nodes}), quoting spec section 6: each answer would
        bring the whole span, every hour in several.  The span itself, a
        day of 25 hours, an hour where the span is an hour, and a window
        of hours for some nodes are kept.
        """
        for params, window, answers in [
            ({"grp_type": "ALL_APNODES"}, "6h", 4),
            ({"grp_type": "ALL"}, "1h", 24),
            ({"node": "all"}, "23h", 2),
        ]:
            error = self.assertRaises(
                TopicError,
                ReportTopic,
                name="r",
                queryname="PRC_LMP",
                market_run_id="DAM",
                params=params,
                window=window,
            )
            [(key, message)] = error.problems
            self.assertEqual(key, "window")
            self.assertIn("PRC_LMP: asked for all nodes, OASIS answers 1d from each startdatetime", message)
            self.assertIn('spec section 6: enddatetime "is ignored', message)
            self.assertIn(f"windows of {window} would each bring 1d, every hour in up to {answers}", message)
        error = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="PRC_CD_INTVL_LMP",
            market_run_id="RTM",
            params={"grp_type": "ALL"},
            window="12h",
        )
        self.assertEqual([key for key, ignored in error.problems], ["window"])
        for values in [
            {"queryname": "PRC_LMP", "market_run_id": "DAM", "params": {"grp_type": "ALL"}, "window": "1d"},
            {"queryname": "PRC_LMP", "market_run_id": "DAM", "params": {"grp_type": "ALL"}, "window": "25h"},
            {"queryname": "PRC_LMP", "market_run_id": "DAM", "params": {"node": "A"}, "window": "6h"},
            {
                "queryname": "PRC_INTVL_LMP",
                "market_run_id": "RTM",
                "params": {"grp_type": "ALL"},
                "window": "1h",
            },
        ]:
            self.assertEqual(ReportTopic(name="r", **values).window, values["window"])  # type: ignore[arg-type]

    def test_currentByParameter(self) -> None:
        """
        A report whose parameters make it current-only (C{PRC_FLEX_RAMP}
        with C{grp_type=CURR}) gets an hour by default, is refused a window
        of a day, and warns, as the reports without history do; with
        C{grp_type=ALL} it keeps its 31 days and warns of nothing.
        """
        values = {"queryname": "PRC_FLEX_RAMP", "market_run_id": "RTD", "params": {"grp_type": "CURR"}}
        flex = ReportTopic(name="r", **values)  # type: ignore[arg-type]
        self.assertEqual(flex.window, "1h")
        [(key, warning)] = flex.warnings()
        self.assertEqual(key, "params")
        self.assertIn("PRC_FLEX_RAMP with grp_type=CURR: OASIS serves only current data", warning)
        error = self.assertRaises(TopicError, ReportTopic, name="r", window="1d", **values)
        [(key, message)] = error.problems
        self.assertEqual(key, "window")
        self.assertIn("none would ever be fetched", message)
        historical = ReportTopic(name="r", **{**values, "params": {"grp_type": "ALL"}})  # type: ignore[arg-type]
        self.assertEqual((historical.window, historical.warnings()), ("31d", []))

    def test_parameterBeforeItsVersion(self) -> None:
        """
        A report sending a parameter the spec sends only from a later
        version (C{PRC_FLEX_RAMP}'s C{baa_grp_id}, version 2) than its
        own, the catalogue's default among them, warns.
        """
        flex = ReportTopic(
            name="r", queryname="PRC_FLEX_RAMP", market_run_id="RTD", params={"baa_grp_id": "ISO"}
        )
        self.assertEqual(flex.version, 1)
        [(key, warning)] = flex.warnings()
        self.assertEqual(key, "params")
        self.assertIn("the spec sends baa_grp_id only from version 2 on", warning)
        self.assertEqual(attr.evolve(flex, version=2).warnings(), [])

    def test_missingRequiredParameter(self) -> None:
        """
        A report without a parameter the specification requires is refused.
        """
        error = self.assertRaises(TopicError, ReportTopic, name="r", queryname="PRC_LMP", market_run_id="DAM")
        [(key, message)] = error.problems
        self.assertEqual(key, "params")
        self.assertIn("grp_type, node", message)

    def test_universalParameterRefused(self) -> None:
        """
        A parameter every request carries (the window's bounds, the
        report's own keys) is refused in C{params}, in any case: the URL
        would carry it twice.
        """
        error = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="PRC_LMP",
            market_run_id="DAM",
            params={"grp_type": "ALL_APNODES", "startdatetime": "20250101T08:00-0000", "Version": "2"},
        )
        self.assertEqual(
            error.problems,
            [
                ("params", "'Version' is not a parameter to give: it is the report's own key version"),
                ("params", "'startdatetime' is not a parameter to give: harbour sets it from each window"),
            ],
        )

    def test_parameterTwiceInAnyCase(self) -> None:
        """
        Two parameters whose names differ only in case are refused, for a
        report the catalogue knows and for one it does not: the URL would
        carry both, and the catalogue would check only one (here the
        C{grp_type=ALL} that limits the window to a day).
        """
        error = self.assertRaises(
            TopicError,
            ReportTopic,
            name="r",
            queryname="PRC_LMP",
            market_run_id="DAM",
            params={"grp_type": "ALL", "GRP_TYPE": "ALL_PNODES"},
            window="31d",
        )
        self.assertIn(
            (
                "params",
                "'GRP_TYPE' and 'grp_type' are one parameter (OASIS ignores the case of names): give it once",
            ),
            error.problems,
        )
        error = self.assertRaises(
            TopicError, ReportTopic, name="r", queryname="NOT_OASIS", params={"a": "1", "A": "2"}
        )
        self.assertEqual([key for key, ignored in error.problems], ["params"])

    def test_warnings(self) -> None:
        """
        An unknown report or parameter is only a warning, with the closest
        known name.
        """
        unknown = ReportTopic(name="r", queryname="PRC_LMPP", market_run_id="DAM")
        [(key, message)] = unknown.warnings()
        self.assertEqual(key, "queryname")
        self.assertIn('did you mean "PRC_LMP"?', message)
        odd = ReportTopic(
            name="r", queryname="SLD_FCST", market_run_id="DAM", params={"execution_typ": "RTD"}
        )
        self.assertTrue(any("execution_type" in message for key, message in odd.warnings()), odd.warnings())

    def test_aliasWarns(self) -> None:
        """
        A report or group named by another spelling the catalogue knows it
        by is sent as written, so it warns, naming the spelling of the
        spec's example URLs; that spelling does not warn.
        """
        cases = [
            ("queryname", "ATL_TAC_AREA", "ATL_TAC_AREA_MAP"),
            ("queryname", "PRC_MPM_CONSTR", "PRC_MPM_CNSTR"),
            ("groupid", "PUB_CRR_BID_MTHLY_GRP", "PUB_CRR_BID_MONTHLY_GRP"),
        ]
        for key, alias, name in cases:
            values = {key: alias, "market_run_id": "DAM"} if alias == "PRC_MPM_CONSTR" else {key: alias}
            warnings = ReportTopic(name="r", **values).warnings()  # type: ignore[arg-type]
            expected = (
                f"{alias!r} is the spec's other spelling of {name}; the spec's example URLs ask OASIS "
                f'for {name} ({key} = "{name}"): harbour sends {alias!r} as written, which OASIS may '
                "refuse as a report it does not know"
            )
            self.assertIn((key, expected), warnings)
            values[key] = name
            self.assertEqual(
                [k for k, ignored in ReportTopic(name="r", **values).warnings() if k == key],  # type: ignore[arg-type]
                [],
            )

    def test_groupVersionWarns(self) -> None:
        """
        A group's version is checked against the catalogue, as a SingleZip
        report's is: the GroupZip URL carries it too.
        """
        group = ReportTopic(name="g", groupid="ENE_RES_UPL_GRP", version=1)
        self.assertIn(
            ("params", "ENE_RES_UPL_GRP: version=1 is not one the spec names (8)"), group.warnings()
        )
        self.assertNotIn(
            "version", str(ReportTopic(name="g", groupid="ENE_RES_UPL_GRP", version=8).warnings())
        )

    def test_defaultVersion(self) -> None:
        """
        Without C{version}, a report gets 1 if the spec's examples use it,
        else the highest version they use (OASIS refuses one a report
        does not have), and so warns of none; a report the catalogue does
        not know gets 1; a version given is kept, even one the spec does
        not name.  The value given and the default survive a trip through
        a payload.
        """
        cases: list[tuple[dict[str, Any], int]] = [
            ({"queryname": "SLD_FCST", "market_run_id": "DAM"}, 1),
            ({"queryname": "PRC_CURR_LMP", "market_run_id": "RTM", "params": {"node": "ALL"}}, 1),
            ({"queryname": "PRC_RTM_LAP", "market_run_id": "RTM", "params": {"node": "ALL"}}, 6),
            ({"queryname": "PRC_SPTIE_LMP", "market_run_id": "DAM", "params": {"grp_type": "ALL"}}, 5),
            ({"groupid": "ENE_RES_UPL_GRP"}, 8),
            ({"groupid": "RTM_LAP_GRP"}, 6),
            ({"queryname": "NOT_OASIS"}, 1),
            ({"groupid": "RTM_LAP_GRP", "version": 2}, 2),
        ]
        for values, expected in cases:
            report = ReportTopic(name="r", **values)
            self.assertEqual(report.version, expected, values)
            self.assertEqual(ReportTopic.from_payload(to_payload(report)), report)
            if "version" not in values:
                self.assertNotIn("version=", str(report.warnings()), values)

    def test_locatedInFiles(self) -> None:
        """
        In a file, a window beyond the limit and a missing parameter are
        errors at their lines; an unknown report is a warning at its line,
        and the configuration is used.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "r.toml").write_text(
            "[[reports]]\n"  # 1
            'name = "a"\n'  # 2
            'queryname = "PRC_LMP"\n'  # 3
            'market_run_id = "DAM"\n'  # 4
            'params = { grp_type = "ALL" }\n'  # 5
            'window = "2d"\n'  # 6
            "[[reports]]\n"  # 7
            'name = "b"\n'  # 8
            'queryname = "PRC_LMP"\n'  # 9
            'market_run_id = "DAM"\n'  # 10
        )
        configuration, problems = load_directory(directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [(p.line, p.key) for p in problems], [(6, "reports[0].window"), (7, "reports[1].params")]
        )
        (directory / "r.toml").write_text(
            '[[reports]]\nname = "a"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\nwindow = "1d"\n'
            'params = { grp_type = "ALL" }\n[[reports]]\nname = "b"\nqueryname = "OTHER_SOURCE"\n'
        )
        configuration, problems = load_directory(directory)
        assert configuration is not None
        self.assertEqual(problems, [])
        [warning] = configuration.warnings
        self.assertEqual((warning.line, warning.key, warning.warning), (9, "reports[1].queryname", True))
        self.assertIn("r.toml:9: warning:", str(warning))

    def test_viewNameTaken(self) -> None:
        """
        A report whose view's name another report's view already has (in
        DuckDB's names, which ignore case) is a warning at its name, and
        the configuration is used; the report first in sorted order keeps
        the view, as the dataset's views do.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "r.toml").write_text(
            "[[reports]]\n"  # 1
            'name = "Load.Forecast"\n'  # 2
            'queryname = "SLD_FCST"\n'  # 3
            'market_run_id = "DAM"\n'  # 4
            "[[reports]]\n"  # 5
            'name = "LOAD-forecast"\n'  # 6
            'queryname = "SLD_FCST"\n'  # 7
            'market_run_id = "DAM"\n'  # 8
            "[[reports]]\n"  # 9
            'name = "prices"\n'  # 10
            'queryname = "PRC_LMP"\n'  # 11
            'market_run_id = "DAM"\n'  # 12
            'params = { grp_type = "ALL_APNODES" }\n'  # 13
            "[[reports]]\n"  # 14
            'name = "prices_wide"\n'  # 15
            'queryname = "SLD_FCST"\n'  # 16
            'market_run_id = "DAM"\n'  # 17
        )
        configuration, problems = load_directory(directory)
        assert configuration is not None
        self.assertEqual(problems, [])
        self.assertEqual(
            [(w.line, w.key, w.warning) for w in configuration.warnings],
            [(2, "reports[0].name", True), (15, "reports[3].name", True)],
        )
        taken, wide = map(str, configuration.warnings)
        self.assertIn("report 'Load.Forecast' would have no view in the dataset: Load_Forecast", taken)
        self.assertIn("of report 'LOAD-forecast'", taken)
        self.assertIn("prices_wide is a view of report 'prices'", wide)
