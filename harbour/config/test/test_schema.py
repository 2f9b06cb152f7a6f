"""
Tests for L{harbour.config.schema}: parsing, validation, locating errors, defaults.
"""

from __future__ import annotations

import datetime
import errno
import os
import pwd
import tomllib
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from harbour.config import schema
from harbour.config.checks import Invalid, day
from harbour.config.paging import LIMIT
from harbour.config.schema import (
    DownloadTopic,
    Locator,
    ManifestTopic,
    Problem,
    TopicError,
    default_configuration,
    load_directory,
    parse_file,
    read_directory,
    resolve_day,
)

GOOD = """\
[manifest]
start = 2024-01-01
end = "today"

[[reports]]
name = "lmp"
queryname = "PRC_LMP"
market_run_id = "DAM"
resultformat = "csv"
params = { grp_type = "ALL_APNODES", pnode_type = 12 }

[[reports]]
name = "lmp-groups"
groupid = "DAM_LMP_GRP"
window = "1d"

[download]
concurrency = 4
"""


class ParseTests(SynchronousTestCase):
    """
    Tests for L{parse_file}.
    """

    def parse(self, source: str) -> tuple[dict[str, Any], list[Problem]]:
        """
        @return: What L{parse_file} makes of C{source} as C{test.toml}.
        """
        return parse_file("test.toml", source)

    def test_good(self) -> None:
        """
        A valid file yields typed, default-filled topic values and no
        problems; C{kind} follows from C{queryname} or C{groupid}.
        """
        topics, problems = self.parse(GOOD)
        self.assertEqual(problems, [])
        self.assertEqual(topics["manifest"], ManifestTopic(start="2024-01-01"))
        first, second = topics["reports"]
        self.assertEqual((first.kind, second.kind), ("single_zip", "group_zip"))
        self.assertEqual(first.params, {"grp_type": "ALL_APNODES", "pnode_type": "12"})
        self.assertEqual(topics["download"], DownloadTopic(concurrency=4))

    def test_everyErrorAtOnce(self) -> None:
        """
        Every problem of a file is reported, each at its own line.
        """
        source = (
            "[manifest]\n"  # 1
            'start = "yesterday"\n'  # 2
            'timezone = "Mars/Olympus"\n'  # 3
            "[download]\n"  # 4
            'concurrency = "four"\n'  # 5
            "min_request_interval = -1\n"  # 6
        )
        ignored, problems = self.parse(source)
        self.assertEqual(
            [(p.line, p.key) for p in problems],
            [
                (2, "manifest.start"),
                (3, "manifest.timezone"),
                (5, "download.concurrency"),
                (6, "download.min_request_interval"),
            ],
        )
        self.assertIn("must be a whole number", problems[2].message)

    def test_auditInterval(self) -> None:
        """
        C{[download] audit_interval} is a number of seconds, as every other
        duration (one day by default); C{0} turns the audit off; anything
        else is refused at its line.
        """
        topics, problems = self.parse("[download]\nconcurrency = 3\n")
        self.assertEqual((problems, topics["download"].audit_interval), ([], 86400.0))
        for given, seconds in [("600", 600.0), ("0", 0.0), ("0.5", 0.5)]:
            topics, problems = self.parse(f"[download]\naudit_interval = {given}\n")
            self.assertEqual((problems, topics["download"].audit_interval), ([], seconds), given)
        for bad, why in [
            ('"1d"', "must be a number"),
            ("true", "must be a number"),
            ("-5", "must be at least 0"),
            ("1e12", "must be at most"),
        ]:
            ignored, problems = self.parse(f"[download]\n\naudit_interval = {bad}\n")
            self.assertEqual([(p.line, p.key) for p in problems], [(3, "download.audit_interval")], bad)
            self.assertIn(why, problems[0].message)

    def test_unknownKeySuggestion(self) -> None:
        """
        An unknown key is an error that suggests the closest known key.
        """
        ignored, problems = self.parse("[download]\n\nconcurency = 3\n")
        self.assertEqual(len(problems), 1)
        self.assertEqual(
            str(problems[0]),
            "test.toml:3: download.concurency: unknown key 'concurency' (did you mean \"concurrency\"?)",
        )

    def test_unknownTopic(self) -> None:
        """
        An unknown top-level table is an error with a suggestion.
        """
        ignored, problems = self.parse("[manifset]\nstart = 2024-01-01\n")
        self.assertIn('did you mean "manifest"', problems[0].message)

    def test_malformedTOML(self) -> None:
        """
        A TOML syntax error is one problem at the line TOML names.
        """
        ignored, problems = self.parse("[work]\nrefresh_interval = 3\nmax_attempts = = 2\n")
        self.assertEqual((len(problems), problems[0].line), (1, 3))
        self.assertIn("not valid TOML", problems[0].message)

    def test_leftOpen(self) -> None:
        """
        An array or string left open, which TOML finds "at end of
        document", is reported at the last line, where the reader looks.
        """
        for source, last in (("[work]\nx = [1,\n2,\n", 3), ('[work]\nx = """one\n\ntwo', 4)):
            ignored, problems = self.parse(source)
            self.assertEqual([(p.line, p.key) for p in problems], [(last, "")])
            self.assertIn("at end of document", problems[0].message)

    def test_beyondTheParser(self) -> None:
        """
        TOML that the parser fails on without a syntax error is one
        problem too, not a crash: arrays nested 500 deep exhaust its
        recursion, and a whole number of 5,000 digits is more than Python
        converts.
        """
        nested = "x = " + "[" * 500 + "]" * 500 + "\n"
        long = "[work]\nmax_attempts = " + "9" * 5000 + "\n"
        self.assertEqual(
            [self.parse(source)[1] for source in (nested, long)],
            [
                [Problem("test.toml", 1, "", "cannot be read: arrays or tables nested too deeply")],
                [
                    Problem(
                        "test.toml",
                        1,
                        "",
                        "cannot be read: Exceeds the limit (4300 digits) for integer string conversion:"
                        " value has 5000 digits",
                    )
                ],
            ],
        )

    def test_reportProblems(self) -> None:
        """
        Report tables are checked one by one: required names, exactly one of
        queryname/groupid, windows within 31 days, unique names.
        """
        source = (
            "[[reports]]\n"  # 1
            'queryname = "A"\n'  # 2
            "[[reports]]\n"  # 3
            'name = "b"\n'  # 4
            "[[reports]]\n"  # 5
            'name = "c"\n'  # 6
            'queryname = "C"\n'  # 7
            'window = "32d"\n'  # 8
            "[[reports]]\n"  # 9
            'name = "c"\n'  # 10
            'groupid = "G"\n'  # 11
            'kind = "single_zip"\n'  # 12
        )
        ignored, problems = self.parse(source)
        self.assertEqual(
            [(p.line, p.key) for p in problems],
            [
                (1, "reports[0]"),
                (3, "reports[1].queryname"),
                (8, "reports[2].window"),
                (12, "reports[3].kind"),
            ],
        )

    def test_dayGroupHoursAtItsLine(self) -> None:
        """
        A day group given a window of hours is refused at the line of its
        window, saying why.
        """
        source = '[[reports]]\nname = "g"\ngroupid = "DAM_LMP_GRP"\n\nwindow = "1h"\n'
        ignored, problems = self.parse(source)
        self.assertEqual([(p.line, p.key) for p in problems], [(5, "reports[0].window")])
        self.assertIn("whole trading day", problems[0].message)

    def test_duplicateReportName(self) -> None:
        """
        Two reports with one name are an error at the second.
        """
        source = '[[reports]]\nname = "a"\nqueryname = "A"\n[[reports]]\nname = "a"\nqueryname = "B"\n'
        ignored, problems = self.parse(source)
        self.assertEqual([(p.line, p.key) for p in problems], [(5, "reports[1].name")])

    def test_wrongShape(self) -> None:
        """
        A topic of the wrong shape is an error, not a crash.
        """
        ignored, problems = self.parse('manifest = 3\nreports = "x"\n')
        self.assertEqual(len(problems), 2)

    def test_booleanIsNotANumber(self) -> None:
        """
        C{true} is not accepted where a number is expected.
        """
        ignored, problems = self.parse("[work]\nmax_attempts = true\n")
        self.assertEqual(len(problems), 1)


class LocatorTests(SynchronousTestCase):
    """
    Tests for L{Locator}.
    """

    def test_nestedTableOfArray(self) -> None:
        """
        A sub-table after an array-of-tables entry belongs to that entry.
        """
        locator = Locator('[[reports]]\nname = "a"\n[[reports]]\nname = "b"\n[reports.params]\nx = 1\n')
        self.assertEqual(locator.line(("reports", 1, "params", "x")), 6)
        self.assertEqual(locator.line(("reports", 1, "name")), 4)
        self.assertEqual(locator.line(("reports", 1, "missing")), 3)
        self.assertEqual(locator.line(("nothing",)), 1)

    def test_dottedAndQuoted(self) -> None:
        """
        Dotted keys and headers give one name per part, quoted or not, and
        a dotted key also locates the tables it defines.
        """
        locator = Locator(
            "work.max_attempts = 0\n"  # 1
            '["download"]\n'  # 2
            "concurrency = 0\n"  # 3
            "[[ 'reports' ]]\n"  # 4
            'name = "a"\n'  # 5
            "[[reports]]\n"  # 6
            'params . "node.x" = "X"\n'  # 7
            "[[reports]]\n"  # 8
            '[ reports . "params" ]\n'  # 9
            '"grp\\u005ftype" = "ALL"\n'  # 10
        )
        self.assertEqual(locator.line(("work",)), 1)
        self.assertEqual(locator.line(("work", "max_attempts")), 1)
        self.assertEqual(locator.line(("download", "concurrency")), 3)
        self.assertEqual(locator.line(("reports", 0, "name")), 5)
        self.assertEqual(locator.line(("reports", 1, "params", "node.x")), 7)
        self.assertEqual(locator.line(("reports", 2, "params")), 9)
        self.assertEqual(locator.line(("reports", 2, "params", "grp_type")), 10)

    def test_multiLineStrings(self) -> None:
        """
        What is inside a multi-line string, basic or literal, is not taken
        for a key, whether the string is a key's value or an element of an
        array spanning lines, nor is what follows a string's quotes or a
        comment on the line taken for an opening.
        """
        source = (
            '[work]\nnote = """\nmax_attempts = 1\n"""\nmax_attempts = 0\n'  # 1-5
            "[download]\nx = '''a\nconcurrency = 1\nb''' # '''\n"  # 6-9
            'y = [\n  "\\"",\n  """\ndirectory = "a"\n\\""" """,\n]\n'  # 10-15
            'z = """a""" # """\ndirectory = "b"\n'  # 16-17
        )
        self.assertEqual(tomllib.loads(source)["download"]["directory"], "b")
        locator = Locator(source)
        self.assertEqual(locator.line(("work", "max_attempts")), 5)
        self.assertEqual(locator.line(("download", "concurrency")), 6)
        self.assertEqual(locator.line(("download", "directory")), 17)
        ignored, problems = parse_file(
            "f.toml", '[work]\nnote = """\nmax_attempts = 1\n"""\nmax_attempts = 0\n'
        )
        self.assertEqual(
            [str(p) for p in problems][-1], "f.toml:5: work.max_attempts: must be at least 1, not 0"
        )

    def test_arrayOfInlineTables(self) -> None:
        """
        A table of an array of inline tables is at the line its C{{} is
        on, counted among the array's elements (what a string or comment
        holds, or a table nested in one, is not counted), and a problem
        within it is reported there, not at the array's first line.  A
        line of the array that looks like a header is not one.
        """
        source = (
            "reports = [\n"  # 1
            '  { name = "a", params = { x = "{" } },  # {\n'  # 2
            '  "[", [{ y = 1 }], { name = "b" },\n'  # 3
            '  ["x"],\n'  # 4
            '  { name = "c", bogus = 1 },\n'  # 5
            "]\n"  # 6
            "[work]\n"  # 7
            "max_attempts = 0\n"  # 8
        )
        locator = Locator(source)
        self.assertEqual([locator.line(("reports", i)) for i in range(6)], [2, 1, 1, 3, 1, 5])
        self.assertEqual(locator.line(("reports", 5, "bogus")), 5)
        self.assertEqual(locator.line(("x",)), 1)
        self.assertEqual(locator.line(("work", "max_attempts")), 8)
        ignored, problems = parse_file(
            "f.toml",
            'reports = [\n  { name = "a", queryname = "A" },\n  { name = "b", bogus = 1 },\n]\n',
        )
        self.assertEqual([(p.line, p.key) for p in problems if "bogus" in p.key], [(3, "reports[1].bogus")])

    def test_problemsOfDottedKeys(self) -> None:
        """
        A problem of a dotted key, or under a quoted header, is reported
        at its line.
        """
        ignored, problems = parse_file("a.toml", '\nwork.max_attempts = 0\n["download"]\n\nconcurrency = 0\n')
        self.assertEqual(
            [(p.line, p.key) for p in problems], [(2, "work.max_attempts"), (5, "download.concurrency")]
        )


class ResolveDayTests(SynchronousTestCase):
    """
    Tests for L{resolve_day}.
    """

    def test_relative(self) -> None:
        """
        Spans count back from today; months clamp to the month's length.
        """
        today = datetime.date(2025, 5, 31)
        self.assertEqual(resolve_day("-39mo", today), datetime.date(2022, 2, 28))
        self.assertEqual(resolve_day("-1y", today), datetime.date(2024, 5, 31))
        self.assertEqual(resolve_day("-10d", today), datetime.date(2025, 5, 21))
        self.assertEqual(resolve_day("today", today), today)
        self.assertEqual(resolve_day("2020-02-29", today), datetime.date(2020, 2, 29))

    def test_bounded(self) -> None:
        """
        A relative day reaches back at most a hundred years, whatever its
        unit, and ahead at most L{MOST_AHEAD_DAYS} days: beyond, counting
        from today leaves the calendar, and every refresh would fail.
        """
        start, end = day(), day(allow_today=True)
        for value in ("-36526d", "-1201mo", "-101y", "-40000mo", "-3000000d"):
            with self.assertRaises(Invalid) as caught:
                start(value)
            self.assertEqual(str(caught.exception), f"{value!r} reaches back more than a hundred years")
        self.assertEqual(end("+366d"), "+366d")
        with self.assertRaises(Invalid) as caught:
            end("+3000000d")
        self.assertEqual(str(caught.exception), "'+3000000d' reaches more than 366 days ahead")
        today = datetime.date(2026, 11, 23)
        self.assertEqual(resolve_day("-100y", today), datetime.date(1926, 11, 23))

    def test_relativeFrom1998(self) -> None:
        """
        A span back, for a start or an end, is refused as a date before
        1998-01-01 is if it reaches before that day from today (and so,
        days passing, from no later day), and at the line of its file.
        (The spans refused reach 40 years back or more, those taken 20 at
        most: so for years to come.)
        """
        start, end = day(), day(allow_today=True)
        for value in ("-39mo", "-20y", "-3650d"):
            self.assertEqual((start(value), end(value)), (value, value))
        for value in ("-40y", "-100y", "-1200mo", "-36525d"):
            for check in (start, end):
                with self.assertRaises(Invalid) as caught:
                    check(value)
                self.assertRegex(
                    str(caught.exception),
                    rf"^'{value}' reaches back to 19\d\d-\d\d-\d\d: must reach 1998-01-01 or later "
                    r"\(CAISO's markets began in 1998\)$",
                )
        ignored, problems = parse_file(
            "a.toml", '[manifest]\nstart = "-40y"\n[[reports]]\nname = "r"\nqueryname = "Q"\nend = "-50y"\n'
        )
        self.assertEqual([(p.line, p.key) for p in problems], [(2, "manifest.start"), (6, "reports[0].end")])

    def test_datesBounded(self) -> None:
        """
        A date, as TOML or text, lies from 1998-01-01 (CAISO's markets
        began in 1998) to 2099-12-31: beyond, planning overflows the
        calendar or asks for hundreds of thousands of requests.
        """
        start, end = day(), day(allow_today=True)
        for value in ("1998-01-01", datetime.date(1998, 1, 1)):
            self.assertEqual(start(value), "1998-01-01")
        for value in ("2099-12-31", datetime.date(2099, 12, 31)):
            self.assertEqual(end(value), "2099-12-31")
        refusals = [
            ("1997-12-31", "must be 1998-01-01 or later (CAISO's markets began in 1998), not 1997-12-31"),
            ("0202-01-01", "must be 1998-01-01 or later (CAISO's markets began in 1998), not 0202-01-01"),
            ("2100-01-01", "must be 2099-12-31 or earlier, not 2100-01-01"),
            ("9999-12-31", "must be 2099-12-31 or earlier, not 9999-12-31"),
        ]
        for value, message in refusals:
            for given in (value, datetime.date.fromisoformat(value)):
                for check in (start, end):
                    with self.assertRaises(Invalid) as caught:
                        check(given)
                    self.assertEqual(str(caught.exception), message)
        ignored, problems = parse_file(
            "a.toml",
            '[manifest]\nstart = 0202-01-01\n[[reports]]\nname = "r"\nqueryname = "Q"\nend = "9999-12-31"\n',
        )
        self.assertEqual([(p.line, p.key) for p in problems], [(2, "manifest.start"), (6, "reports[0].end")])


class DirectoryTests(SynchronousTestCase):
    """
    Tests for L{load_directory}.
    """

    def setUp(self) -> None:
        """
        Make an empty configuration directory.
        """
        self.directory = Path(self.mktemp())
        self.directory.mkdir()

    def write(self, name: str, text: str) -> None:
        """
        Write C{text} to the file C{name} of the configuration directory.
        """
        (self.directory / name).write_text(text)

    def test_empty(self) -> None:
        """
        An empty directory is the default configuration.
        """
        configuration, problems = load_directory(self.directory)
        self.assertEqual(problems, [])
        assert configuration is not None
        self.assertEqual(configuration.topics["reports"], [])
        self.assertEqual(configuration.payloads()["work"]["max_attempts"], 8)

    def test_topicInTwoFiles(self) -> None:
        """
        A topic defined in two files is an error naming both files.
        """
        self.write("a.toml", "[work]\nmax_attempts = 2\n")
        self.write("b.toml", "\n[work]\nmax_attempts = 3\n")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [str(p) for p in problems], ["b.toml:2: work: topic 'work' is also defined in a.toml"]
        )

    def test_oneBadFileSpoilsAll(self) -> None:
        """
        A problem in any file means no configuration at all (the caller
        keeps the last good one), with the problems of every file.
        """
        self.write("a.toml", "[work]\nmax_attempts = 0\n")
        self.write("b.toml", "[download]\nconcurrency = 0\n")
        self.write("c.toml", "[manifest]\nstart = 2024-01-01\n")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual([p.file for p in problems], ["a.toml", "b.toml"])

    def test_deeplyDottedKey(self) -> None:
        """
        A value nested thousands deep, as a dotted key of thousands of
        parts makes it (which the parser reads without recursing), is
        refused where it is, its message showing only its first levels:
        Python's own repr of it exceeds the recursion limit, which
        escaped the loader and hid every other file's errors.
        """
        deep = ".".join(["a"] * 3000)
        self.write("a.toml", "[work]\nmax_attempts = 0\n")
        self.write(
            "b.toml",
            f"[manifest]\nstart.{deep} = 1\n[download]\ndirectory.{deep} = 1\n\n"
            f'[[reports]]\nname = "x"\nqueryname = "PRC_LMP"\nmarket_run_id = "DAM"\nparams.{deep} = 1\n',
        )
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        shown = "{'a': {'a': {'a': {...}}}}"
        self.assertEqual(
            [str(p) for p in problems],
            [
                "a.toml:2: work.max_attempts: must be at least 1, not 0",
                (
                    'b.toml:2: manifest.start: must be a date (2024-01-31), a span back such as "-39mo",'
                    f' "-30d" or "-2y", not {shown}'
                ),
                f"b.toml:4: download.directory: must be a string, not {shown} (dict)",
                f"b.toml:10: reports[0].params: parameter 'a' must be a string or number, not {shown} (dict)",
            ],
        )

    def test_recursionInACheckLocated(self) -> None:
        """
        A check that recurses without bound all the same is an error of
        its topic, at its file and line, and every other problem is still
        reported.
        """
        build = schema.build

        def recursing(cls: type, table: Any, *args: Any, **kwargs: Any) -> Any:
            if cls is DownloadTopic:
                raise RecursionError("maximum recursion depth exceeded")
            return build(cls, table, *args, **kwargs)

        self.patch(schema, "build", recursing)
        self.write("a.toml", "[work]\nmax_attempts = 0\n")
        self.write("b.toml", "[manifest]\nstart = 2024-01-01\n\n[download]\nconcurrency = 3\n")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "a.toml:2: work.max_attempts: must be at least 1, not 0",
                "b.toml:4: download: cannot be checked: a key or value of it is nested too deeply",
            ],
        )

    def test_ignoresOtherFiles(self) -> None:
        """
        Hidden files, editor backups and other extensions are not read.
        """
        self.write(".a.toml", "garbage [")
        self.write("b.toml~", "garbage [")
        self.write("c.toml.swp", "garbage [")
        self.write("d.toml", "[work]\nmax_attempts = 2\n")
        configuration, problems = load_directory(self.directory)
        self.assertEqual(problems, [])
        assert configuration is not None
        self.assertEqual(configuration.sources, {"work": "d.toml"})

    def test_notUTF8(self) -> None:
        """
        A file that is not UTF-8 is a problem, not a crash.
        """
        (self.directory / "x.toml").write_bytes(b"[work]\nmax_attempts = 2 # \xff\n")
        configuration, problems = load_directory(self.directory)
        self.assertIn("not UTF-8", problems[0].message)

    def test_notUTF8Located(self) -> None:
        """
        A file that is not UTF-8 is reported at the line of its first byte
        that is not.
        """
        (self.directory / "x.toml").write_bytes(b"# caf\xc3\xa9\n[work]\n\nmax_attempts = 2 # caf\xe9\n")
        configuration, problems = load_directory(self.directory)
        self.assertEqual([str(p) for p in problems], ["x.toml:4: not UTF-8 text: invalid continuation byte"])

    def test_byteOrderMark(self) -> None:
        """
        A file that starts with a UTF-8 byte order mark, as some editors
        write, is read as the text after it.
        """
        (self.directory / "x.toml").write_bytes(b"\xef\xbb\xbf[work]\nmax_attempts = 0\n")
        (self.directory / "y.toml").write_bytes(b"\xef\xbb\xbf[download]\nconcurrency = 3\n\xff\n")
        configuration, problems = load_directory(self.directory)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "x.toml:2: work.max_attempts: must be at least 1, not 0",
                "y.toml:3: not UTF-8 text: invalid start byte",
            ],
        )
        (self.directory / "x.toml").write_bytes(b"\xef\xbb\xbf[work]\nmax_attempts = 2\n")
        (self.directory / "y.toml").unlink()
        configuration, problems = load_directory(self.directory)
        assert configuration is not None
        self.assertEqual(configuration.topics["work"].max_attempts, 2)

    def test_nameNotUTF8(self) -> None:
        """
        A file whose name is not UTF-8 is read, and its problems name it
        with each such byte written as C{\\xe9}, in their file and their
        messages: as Python gives the name, no UTF-8 encoder takes it.
        """
        for name, text in (
            (b"caf\xe9.toml", b"[download]\nconcurrency = 2\n"),
            (b"d\xe9j\xe0.toml", b"[download]\nconcurrency = 0\n"),
        ):
            (self.directory / os.fsdecode(name)).write_bytes(text)
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "d\\xe9j\\xe0.toml:2: download.concurrency: must be at least 1, not 0",
                "d\\xe9j\\xe0.toml:1: download: topic 'download' is also defined in caf\\xe9.toml",
            ],
        )
        for problem in problems:
            str(problem).encode("utf-8")

    def test_goneAsRead(self) -> None:
        """
        A file listed but gone by the time it is read is read as absent,
        and L{read_directory} names it, so that the config service can
        tell it from one that was never there.
        """
        self.write("a.toml", "[work]\nmax_attempts = 2\n")
        self.write("b.toml", "[download]\nconcurrency = 3\n")
        listing = schema.config_files

        def listed_then_removed(directory: Path) -> list[Path]:
            paths = listing(directory)
            (self.directory / "b.toml").unlink()
            return paths

        self.patch(schema, "config_files", listed_then_removed)
        loaded = read_directory(self.directory)
        self.assertEqual((loaded.problems, loaded.vanished), ([], ["b.toml"]))
        assert loaded.configuration is not None
        self.assertEqual(loaded.configuration.sources, {"work": "a.toml"})

    def test_notAFile(self) -> None:
        """
        A C{*.toml} that is not a regular file (a link to nothing, a loop of
        links, a directory, a FIFO) is a problem naming it: left out, the
        file of the reports would retire every task.  A FIFO is not opened
        (reading it would wait forever).
        """
        self.write("good.toml", "[work]\nmax_attempts = 2\n")
        (self.directory / "dangling.toml").symlink_to("gone.toml")
        (self.directory / "loop.toml").symlink_to("loop.toml")
        (self.directory / "folder.toml").mkdir()
        os.mkfifo(self.directory / "pipe.toml")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        messages = {p.file: p.message for p in problems}
        self.assertEqual(sorted(messages), ["dangling.toml", "folder.toml", "loop.toml", "pipe.toml"])
        self.assertEqual(messages["dangling.toml"], "a link to gone.toml, which does not exist")
        self.assertIn("cannot read", messages["loop.toml"])
        self.assertTrue(messages["folder.toml"].startswith("a directory"), messages["folder.toml"])
        self.assertTrue(messages["pipe.toml"].startswith("not a regular file"), messages["pipe.toml"])

    def test_fifoSwappedInRefused(self) -> None:
        """
        A FIFO put at a file's name after the file was checked, before it
        is opened, is refused as one the check finds is, without waiting
        for something to write to it.
        """
        self.write("work.toml", "[work]\nmax_attempts = 2\n")
        check = schema._not_a_file

        def checked_then_swapped(path: Path) -> str | None:
            refused = check(path)
            path.unlink()
            os.mkfifo(path)
            # Held open, with more in it than the cap below: read as if it
            # were a file, it would be read, not waited on for ever.
            held = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            self.addCleanup(os.close, held)
            os.write(held, b"x" * 64)
            return refused

        self.patch(schema, "_not_a_file", checked_then_swapped)
        self.patch(schema, "MAX_FILE_BYTES", 16)
        configuration, problems = load_directory(self.directory)
        self.assertEqual(
            [str(p) for p in problems],
            ["work.toml:1: not a regular file: a configuration file must be a file of TOML text"],
        )
        self.assertIsNone(configuration)

    def test_reportRangeReversedWithManifest(self) -> None:
        """
        A report's range runs from its own bound, else the manifest's, to
        its own, else the manifest's: when both are dates and the start is
        after the end, the configuration is refused at the report's own
        bound, naming the manifest's.  A relative end is not compared.
        """
        self.write("a.toml", '[manifest]\nstart = "2024-01-01"\nend = "2024-03-01"\n')
        self.write(
            "reports.toml",
            '[[reports]]\nname = "late"\nqueryname = "A"\nstart = "2024-06-01"\n'  # 1-4
            '[[reports]]\nname = "early"\nqueryname = "A"\nend = 2023-12-31\n'  # 5-8
            '[[reports]]\nname = "fine"\nqueryname = "A"\nstart = "2024-02-01"\n'  # 9-12
            '[[reports]]\nname = "relative"\nqueryname = "A"\nend = "-1d"\n'  # 13-16
            '[[reports]]\nname = "own"\nqueryname = "A"\nstart = "2025-01-01"\nend = "today"\n',  # 17-21
        )
        configuration, problems = load_directory(self.directory)
        self.assertEqual(
            [(p.file, p.line, p.key) for p in problems],
            [("reports.toml", 4, "reports[0].start"), ("reports.toml", 8, "reports[1].end")],
        )
        nothing = ": the range would ask for nothing"
        self.assertEqual(
            [p.message for p in problems],
            [
                "start 2024-06-01 is after end 2024-03-01 (the manifest's end, a.toml:3)" + nothing,
                "start 2024-01-01 is after end 2023-12-31 (the manifest's start, a.toml:2)" + nothing,
            ],
        )
        self.assertIsNone(configuration)

    def test_spanBackPastDateEnd(self) -> None:
        """
        A span back as start that is already after a date as end, which
        the days passing only put further after it, is refused as two
        dates reversed are, in the manifest, in a report, and between a
        report's own bound and the manifest's, showing the day it names.
        An end of C{"today"} or days ahead, and a span back before its
        date end, are not refused; the topics themselves, as rebuilt from
        the bus, are not refused for it.
        """
        today = datetime.date(2026, 11, 24)
        self.write("m.toml", '[manifest]\nstart = "-30d"\nend = "2025-01-31"\n')
        self.write(
            "reports.toml",
            '[[reports]]\nname = "own"\nqueryname = "A"\nstart = "-30d"\nend = 2025-01-31\n'  # 1-5
            '[[reports]]\nname = "ahead"\nqueryname = "A"\nstart = "-30d"\nend = "+1d"\n'  # 6-10
            '[[reports]]\nname = "before"\nqueryname = "A"\nstart = "-30d"\nend = 2026-11-20\n'  # 11-15
            '[[reports]]\nname = "now"\nqueryname = "A"\nend = "today"\n'  # 16-19
            '[[reports]]\nname = "late"\nqueryname = "A"\nstart = "-1d"\n',  # 20-23
        )
        configuration, problems = load_directory(self.directory, today=today)
        self.assertIsNone(configuration)
        nothing = ": the range would ask for nothing"
        self.assertEqual(
            [str(p) for p in problems],
            [
                "m.toml:2: manifest.start: start -30d (2026-10-25 as of today) is after end 2025-01-31"
                + nothing,
                "reports.toml:4: reports[0].start: start -30d (2026-10-25 as of today) is after end"
                " 2025-01-31" + nothing,
                "reports.toml:23: reports[4].start: start -1d (2026-11-23 as of today) is after end"
                " 2025-01-31 (the manifest's end, m.toml:3)" + nothing,
            ],
        )
        self.write("m.toml", '[manifest]\nstart = "-39mo"\n')
        self.write("reports.toml", '[[reports]]\nname = "old"\nqueryname = "A"\nend = "2023-06-30"\n')
        configuration, problems = load_directory(self.directory, today=today)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "reports.toml:4: reports[0].end: start -39mo (2023-08-24 as of today) is after end"
                " 2023-06-30 (the manifest's start, m.toml:2)" + nothing
            ],
        )
        self.write("reports.toml", '[[reports]]\nname = "old"\nqueryname = "A"\nend = "2023-09-30"\n')
        self.assertEqual(load_directory(self.directory, today=today)[1], [])
        self.assertEqual(
            ManifestTopic.from_payload({"start": "-30d", "end": "2025-01-31"}).start,
            "-30d",
        )

    def test_spanBackPastSpanBack(self) -> None:
        """
        A span back as start after a span back as end on every day (fewer
        of the same unit back, months and years being one; or, across
        days and months, whatever a month's length) is refused as a span
        back after a date is, in the manifest, in a report, and between a
        report's own bound and the manifest's, showing both days.  Spans
        whose order can change with the day are not refused.
        """
        today = datetime.date(2026, 11, 24)
        self.write("m.toml", '[manifest]\nstart = "-30d"\nend = "-40d"\n')
        self.write(
            "reports.toml",
            '[[reports]]\nname = "a"\nqueryname = "A"\nstart = "-1mo"\nend = "-40d"\n'  # 1-5
            '[[reports]]\nname = "b"\nqueryname = "A"\nstart = "-2y"\nend = "-25mo"\n'  # 6-10
            '[[reports]]\nname = "c"\nqueryname = "A"\nstart = "-1mo"\nend = "-30d"\n'  # 11-15
            '[[reports]]\nname = "d"\nqueryname = "A"\nstart = "-13mo"\nend = "-1y"\n'  # 16-20
            '[[reports]]\nname = "e"\nqueryname = "A"\nstart = "-40d"\nend = "-1mo"\n',  # 21-25
        )
        configuration, problems = load_directory(self.directory, today=today)
        self.assertIsNone(configuration)
        nothing = ": the range would ask for nothing"
        self.assertEqual(
            [str(p) for p in problems],
            [
                "m.toml:2: manifest.start: start -30d (2026-10-25 as of today) is after end -40d"
                " (2026-10-15 as of today)" + nothing,
                "reports.toml:4: reports[0].start: start -1mo (2026-10-24 as of today) is after end"
                " -40d (2026-10-15 as of today)" + nothing,
                "reports.toml:9: reports[1].start: start -2y (2024-11-24 as of today) is after end"
                " -25mo (2024-10-24 as of today)" + nothing,
            ],
        )
        self.write("m.toml", '[manifest]\nend = "-2mo"\n')
        self.write("reports.toml", '[[reports]]\nname = "late"\nqueryname = "A"\nstart = "-7d"\n')
        configuration, problems = load_directory(self.directory, today=today)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "reports.toml:4: reports[0].start: start -7d (2026-11-17 as of today) is after end"
                " -2mo (2026-09-24 as of today) (the manifest's end, m.toml:2)" + nothing
            ],
        )

    def test_spanBackPastDateEndFromToday(self) -> None:
        """
        Without a day given, spans back count from today: a span back of
        a day is after 1998-01-01, the earliest date an end may be.
        """
        self.write("m.toml", '[manifest]\nstart = "-1d"\nend = "1998-01-01"\n')
        configuration, problems = load_directory(self.directory)
        self.assertEqual([(p.line, p.key) for p in problems], [(2, "manifest.start")])
        self.assertRegex(
            problems[0].message, r"^start -1d \(\d{4}-\d\d-\d\d as of today\) is after end 1998-01-01"
        )

    def test_reportRangeReversedWithDefaultManifest(self) -> None:
        """
        A report's start after the end the loader's defaults give the
        manifest is refused too.
        """
        self.write("reports.toml", '[[reports]]\nname = "late"\nqueryname = "A"\nstart = "2024-06-01"\n')
        configuration, problems = load_directory(self.directory, {"manifest": {"end": "2024-03-01"}})
        self.assertEqual([(p.line, p.key) for p in problems], [(4, "reports[0].start")])
        self.assertEqual(
            problems[0].message,
            "start 2024-06-01 is after end 2024-03-01 (the manifest's end, by default): the range would ask"
            " for nothing",
        )
        self.assertIsNone(configuration)

    def test_reportTooLargeToPublish(self) -> None:
        """
        A report whose encoded form does not fit in one event refuses the
        whole configuration, at the report, with every other problem: the
        config service would otherwise publish the topics before it and
        not the reports.
        """
        huge = ",".join(f"NODE_{i:05d}" for i in range(7000))
        self.write("a.toml", '[manifest]\nstart = "2023-06-01"\n')
        self.write(
            "reports.toml",
            '[[reports]]\nname = "load"\nqueryname = "SLD_FCST"\nmarket_run_id = "DAM"\n'  # 1-4
            f'[[reports]]\nname = "x"\nqueryname = "MY_OTHER_SOURCE"\nparams = {{ node = "{huge}" }}\n'  # 5-8
            '[[reports]]\nname = "y"\n',  # 9-10
        )
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [(p.file, p.line, p.key) for p in problems],
            [("reports.toml", 9, "reports[2].queryname"), ("reports.toml", 5, "reports[1]")],
        )
        self.assertRegex(
            problems[1].message,
            r"^cannot publish: it is 77,\d{3} bytes encoded; one event may hold 65,535, so one report at "
            r"most 6\d,\d{3} beside its page's own keys$",
        )

    def test_topicTooLargeToPublish(self) -> None:
        """
        A topic whose encoded form does not fit in one event refuses the
        whole configuration, at the topic.
        """
        self.write("a.toml", f'[work]\nmax_attempts = 2\n[manifest]\nbase_url = "http://h/{"x" * LIMIT}"\n')
        configuration, problems = load_directory(self.directory)
        self.assertEqual([(p.file, p.line, p.key) for p in problems], [("a.toml", 3, "manifest")])
        self.assertIsNone(configuration)
        self.assertRegex(
            problems[0].message, r"^cannot publish: it is 65,\d{3} bytes encoded; one event may hold 65,535$"
        )

    def test_permissionNamesUser(self) -> None:
        """
        A file harbour may not read is an error naming the user harbour
        runs as (the file's owner is usually someone else), or its uid
        where the system knows no name for it.
        """
        self.write("work.toml", "[work]\nmax_attempts = 3\n")
        opened = os.open

        def refused(path: Any, *args: Any, **kwargs: Any) -> int:
            if Path(path).name == "work.toml":
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return opened(path, *args, **kwargs)

        self.patch(schema.os, "open", refused)
        self.patch(schema.os, "geteuid", lambda: 4321)
        self.patch(
            schema.pwd, "getpwuid", lambda uid: pwd.struct_passwd(("harbour", "x", uid, uid, "", "/", ""))
        )
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [str(p) for p in problems],
            ["work.toml:1: cannot read: Permission denied (harbour runs as user harbour (uid 4321))"],
        )

        def unknown(uid: int) -> pwd.struct_passwd:
            raise KeyError(uid)

        self.patch(schema.pwd, "getpwuid", unknown)
        configuration, problems = load_directory(self.directory)
        self.assertEqual(
            [str(p) for p in problems],
            ["work.toml:1: cannot read: Permission denied (harbour runs as uid 4321)"],
        )

    def test_fileTooLarge(self) -> None:
        """
        A file larger than L{schema.MAX_FILE_BYTES}, 4 MiB, is refused
        without being parsed, naming the file, its size and the cap, with
        every other file's errors; one of exactly the cap is read.
        """
        cap = 4 * 1024 * 1024
        work = "[work]\nmax_attempts = 3\n"
        padded = work + "#" * (cap - len(work) - 1) + "\n"
        self.write("work.toml", padded)
        configuration, problems = load_directory(self.directory)
        self.assertEqual(problems, [])
        assert configuration is not None
        self.assertEqual(configuration.topics["work"].max_attempts, 3)
        self.write("work.toml", padded + "\n")
        self.write("download.toml", "[download]\nconcurrency = 0\n")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [str(p) for p in problems],
            [
                "download.toml:2: download.concurrency: must be at least 1, not 0",
                (
                    "work.toml:1: too large (4,194,305 bytes): a configuration file may hold at most"
                    " 4,194,304 bytes (4 MiB)"
                ),
            ],
        )

    def test_wholeNumbersBounded(self) -> None:
        """
        C{max_bytes}, C{max_bytes_per_second} and a report's C{version}
        have a maximum, so that one of thousands of digits (which TOML
        allows in hex) is an error at its key, beside every other file's
        errors, where it crashed the loader as it encoded the topic.
        """
        huge = "0x" + "f" * 4000
        self.write("download.toml", f"[download]\nmax_bytes = {huge}\nmax_bytes_per_second = {huge}\n")
        self.write("reports.toml", f'[[reports]]\nname = "r"\nqueryname = "Q"\nversion = {huge}\n')
        self.write("work.toml", "[work]\nmax_attempts = 0\n")
        configuration, problems = load_directory(self.directory)
        self.assertIsNone(configuration)
        self.assertEqual(
            [(p.file, p.line, p.key, p.message) for p in problems],
            [
                (
                    "download.toml",
                    2,
                    "download.max_bytes",
                    "must be at most 1099511627776, not a number too long to show",
                ),
                (
                    "download.toml",
                    3,
                    "download.max_bytes_per_second",
                    "must be at most 1099511627776, not a number too long to show",
                ),
                (
                    "reports.toml",
                    4,
                    "reports[0].version",
                    "must be at most 99, not a number too long to show",
                ),
                ("work.toml", 2, "work.max_attempts", "must be at least 1, not 0"),
            ],
        )
        self.write("download.toml", f"[download]\nmax_bytes = {2**40}\nmax_bytes_per_second = {2**40}\n")
        self.write("reports.toml", '[[reports]]\nname = "r"\nqueryname = "Q"\nversion = 99\n')
        self.write("work.toml", "")
        configuration, problems = load_directory(self.directory)
        self.assertEqual(problems, [])

    def test_unwritableRefusedAtTopic(self) -> None:
        """
        A topic that cannot be encoded, should a check let through a
        number Python will not write out, is refused at the topic, not
        raised out of the loader.
        """
        work = schema.WorkTopic()
        object.__setattr__(work, "max_attempts", 16**4000)
        problems = schema._unpublishable({"work": work}, {"work": "a.toml"}, {"a.toml": "\n[work]\n"})
        self.assertEqual([(p.file, p.line, p.key) for p in problems], [("a.toml", 2, "work")])
        self.assertIn("cannot be written out", problems[0].message)

    def test_defaults(self) -> None:
        """
        Defaults given to the loader replace the schema's.
        """
        configuration, ignored = load_directory(
            self.directory, {"manifest": {"base_url": "http://127.0.0.1:1/oasisapi"}}
        )
        assert configuration is not None
        self.assertEqual(configuration.topics["manifest"].base_url, "http://127.0.0.1:1/oasisapi")


class TopicErrorTests(SynchronousTestCase):
    """
    The loader turns each problem of a L{TopicError} into a located
    L{harbour.config.schema.Problem}.
    """

    def test_inlineTablesKeepFieldOrder(self) -> None:
        """
        Problems on one line (an inline table) come unknown keys first, then
        in field order, each with its full key.
        """
        ignored, problems = parse_file("t.toml", 'reports = [{ queryname = 2, name = 1, windw = "1d" }]\n')
        self.assertEqual(
            [(p.line, p.key) for p in problems],
            [(1, "reports[0].windw"), (1, "reports[0].name"), (1, "reports[0].queryname")],
        )

    def test_notATable(self) -> None:
        """
        A report that is not a table is a problem at the report itself.
        """
        ignored, problems = parse_file("t.toml", "reports = [1]\n")
        self.assertEqual(
            [(p.key, p.message) for p in problems], [("reports[0]", "must be a table, not 1 (int)")]
        )

    def test_badDefault(self) -> None:
        """
        A default given by the program that its check refuses is a
        L{TopicError}, not a problem of any file.
        """
        self.assertRaises(TopicError, default_configuration, {"download": {"concurrency": 0}})

    def test_defaultsForOtherKeysIgnored(self) -> None:
        """
        Defaults naming keys a topic does not have are ignored, as the
        loader always has.
        """
        configuration = default_configuration({"work": {"nothing": 1}})
        self.assertEqual(configuration.payloads()["work"]["max_attempts"], 8)


class ExportTests(SynchronousTestCase):
    """
    L{harbour.config.schema} remains the one place to import the schema
    from, though the topics and checks live in their own modules.
    """

    def test_names(self) -> None:
        """
        Every name other modules import from L{harbour.config.schema} is
        there, as is every check factory.
        """
        names = [
            "ManifestTopic",
            "ReportTopic",
            "WorkTopic",
            "DownloadTopic",
            "TOPICS",
            "Problem",
            "load_directory",
            "read_directory",
            "Loaded",
            "parse_file",
            "to_payload",
            "resolve_day",
            "window_hours",
            "MAX_WINDOW_HOURS",
            "MONTH_WINDOW",
            "Configuration",
            "default_configuration",
            "config_files",
            "is_config_name",
            "suggest",
            "Locator",
            "printable",
            "build",
            "Invalid",
            "TopicError",
            "Topic",
            "setting",
            "Check",
            "GIB",
            "integer",
            "number",
            "boolean",
            "text",
            "file_name",
            "data_subdirectory",
            "optional",
            "url",
            "day",
            "timezone",
            "window",
            "query_params",
        ]
        self.assertEqual([name for name in names if not hasattr(schema, name)], [])
        self.assertEqual(sorted(set(schema.__all__) - set(names)), ["describe"])
