"""
Tests for L{harbour.oasis.catalogue}: the catalogue loads and validates,
holds every report and group of the specification's example URLs, allows
every one of those requests, and knows the limits and timing the
specification gives.

The example URLs are CAISO's own (interface specification 5.1.8, sections 6
and 8), as scraped by energy-analytics-project/energy-dashboard; copies live
in C{harbour/test/samples/} (whose C{README.md} gives their origin).  The
scrape kept some PDF noise, which L{example_requests} cleans.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from urllib.parse import parse_qsl

import attr
from twisted.trial.unittest import SynchronousTestCase

from harbour.oasis.catalogue import (
    GROUP,
    REPORT,
    Catalogue,
    CatalogueEntry,
    CatalogueError,
    check_request,
    load_catalogue,
    offset_hours,
    parse_catalogue,
    span_hours,
    warnings,
)

SAMPLES = Path(__file__).parents[2] / "test" / "samples"
SINGLEZIP_URLS = SAMPLES / "urls_singlezip_examples_energy-dashboard.txt"
GROUPZIP_URLS = SAMPLES / "urls_groupzip_examples_energy-dashboard.txt"

#: Example URLs of the specification that ask for more than 31 days; its
#: own typos (the years differ), which the catalogue rightly refuses.
SPEC_TYPOS = {
    ("ENE_EIM_TRANSFER_TIE", "20141001T07:00-0000", "20161002T07:00-0000"),
    ("ENE_EIM_FLEX_RAMP_INPUT", "20161001T07:00-0000", "20171002T07:00-0000"),
}

_NAME = re.compile(r"[A-Z0-9_]+\Z")
_LEADING_DIGITS = re.compile(r"[0-9]+")


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ExampleRequest:
    """
    One example URL, cleaned.

    @ivar kind: C{"report"} for SingleZip, C{"group"} for GroupZip.
    @ivar name: The C{queryname} or C{groupid}.
    @ivar params: Every query parameter, the name ones included.
    @ivar window_hours: C{enddatetime - startdatetime} in hours, or L{None}
        when either is absent or cut short in the scrape.
    @ivar line: The URL as scraped.
    """

    kind: str
    name: str
    params: dict[str, str]
    window_hours: float | None
    line: str


def gmt(value: str | None) -> datetime.datetime | None:
    """
    @param value: An OASIS time such as C{"20200101T08:00-0000"}, or L{None}.
    @return: That moment, or L{None} if absent or not of that form.
    """
    if value is None:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y%m%dT%H:%M%z")
    except ValueError:
        return None


def example_requests(path: Path) -> list[ExampleRequest]:
    """
    Read a file of example URLs, removing the PDF noise the scrape left: the
    spaces inside values, and text glued to the last value (only ever
    C{version}, whose leading digits are kept).

    @param path: One URL a line.
    @return: The requests whose report or group name is a name (a line
        whose C{queryname} is PDF text is left out).
    """
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        url = "".join(line.split())
        if "?" not in url:
            continue
        servlet, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        if "version" in params:
            digits = _LEADING_DIGITS.match(params["version"])
            params["version"] = digits.group(0) if digits else params["version"]
        kind, key = (GROUP, "groupid") if servlet.endswith("GroupZip") else (REPORT, "queryname")
        name = params.get(key, "")
        if not _NAME.match(name):
            continue
        start, end = gmt(params.get("startdatetime")), gmt(params.get("enddatetime"))
        window = None if start is None or end is None else (end - start).total_seconds() / 3600
        found.append(ExampleRequest(kind, name, params, window, line))
    return found


def lookup(catalogue: Catalogue, request: ExampleRequest) -> CatalogueEntry | None:
    """
    @return: The catalogue entry of an example request, or L{None}.
    """
    if request.kind == GROUP:
        return catalogue.entry(groupid=request.name)
    return catalogue.entry(queryname=request.name)


class ExamplesTests(SynchronousTestCase):
    """
    The catalogue against the specification's own example URLs.
    """

    def setUp(self) -> None:
        """
        Load the catalogue and both files of example URLs.
        """
        self.catalogue = load_catalogue()
        self.singles = example_requests(SINGLEZIP_URLS)
        self.groups = example_requests(GROUPZIP_URLS)

    def test_samplesRead(self) -> None:
        """
        The cleaning keeps every SingleZip and GroupZip example but the one
        line whose C{queryname} is PDF text.
        """
        lines = [line for line in SINGLEZIP_URLS.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.assertEqual(len(self.singles), len(lines) - 1)
        self.assertEqual(len(self.groups), 80)
        self.assertEqual({r.kind for r in self.singles}, {REPORT})
        self.assertEqual({r.kind for r in self.groups}, {GROUP})

    def test_everyExampleCatalogued(self) -> None:
        """
        Every C{queryname} and C{groupid} of the examples has an entry.
        """
        missing = sorted({r.name for r in self.singles + self.groups if lookup(self.catalogue, r) is None})
        self.assertEqual(missing, [])
        self.assertEqual(len({r.name for r in self.singles}), 106)
        self.assertEqual(len({r.name for r in self.groups}), 53)

    def test_everyExampleAllowed(self) -> None:
        """
        L{check_request} finds no problem in any example request but the
        specification's two typos, whose windows of a year or two it
        refuses, citing the 31-day limit.
        """
        refused = {}
        for request in self.singles + self.groups:
            entry = lookup(self.catalogue, request)
            assert entry is not None
            problems = check_request(entry, request.window_hours, request.params)
            if problems:
                key = (request.name, request.params.get("startdatetime"), request.params.get("enddatetime"))
                refused[key] = problems
        self.assertEqual(set(refused), SPEC_TYPOS)
        for problems in refused.values():
            self.assertEqual(len(problems), 1)
            self.assertIn("31d", problems[0])
            self.assertIn("spec section 3.2", problems[0])

    def test_exampleWindowsWithinLimits(self) -> None:
        """
        Each example's window, when it has one, is within
        L{CatalogueEntry.max_window_hours} for its parameters (one more hour
        for a limit in days, for the 25-hour autumn day).
        """
        checked = 0
        for request in self.singles + self.groups:
            entry = lookup(self.catalogue, request)
            assert entry is not None
            if (
                request.window_hours is None
                or (request.name, request.params.get("startdatetime"), request.params.get("enddatetime"))
                in SPEC_TYPOS
            ):
                continue
            slack = 1 if entry.max_window_span(request.params).endswith("d") else 0
            self.assertLessEqual(
                request.window_hours, entry.max_window_hours(request.params) + slack, request.line
            )
            checked += 1
        self.assertGreater(checked, 200)

    def test_exampleParametersKnown(self) -> None:
        """
        Every parameter an example SingleZip request sends is either a
        universal one or one of its report's parameters, and every
        C{market_run_id} it sends is one its entry lists.
        """
        for request in self.singles:
            entry = lookup(self.catalogue, request)
            assert entry is not None
            unknown = [
                w
                for w in warnings(entry, request.params)
                if "unknown parameter" in w or "market_run_id=" in w
            ]
            self.assertEqual(unknown, [], request.line)

    def test_exampleVersionsKnown(self) -> None:
        """
        Every C{version} an example sends is one its entry lists.
        """
        for request in self.singles + self.groups:
            entry = lookup(self.catalogue, request)
            assert entry is not None
            if "version" in request.params:
                self.assertIn(int(request.params["version"]), entry.versions, request.line)

    def test_longDay(self) -> None:
        """
        The long-day example of section 11 covers 25 hours, and is allowed.
        """
        long_day = [r for r in self.singles if r.params.get("enddatetime") == "20131104T08:00-0000"]
        self.assertEqual([r.window_hours for r in long_day], [25.0])


class LoadTests(SynchronousTestCase):
    """
    Loading and validating the catalogue data.
    """

    def test_loads(self) -> None:
        """
        The shipped catalogue loads, once: later calls share it.  Every
        entry cites a section, a span and a publication offset.
        """
        catalogue = load_catalogue()
        self.assertIs(load_catalogue(), catalogue)
        self.assertEqual(len(catalogue.reports), 113)
        self.assertEqual(len(catalogue.groups), 52)
        for entry in catalogue.reports + catalogue.groups:
            self.assertTrue(entry.section)
            self.assertGreater(span_hours(entry.max_span), 0)
            offset_hours(entry.publication)
            self.assertTrue(entry.publication_note)
            self.assertTrue(entry.csv)

    def test_lookup(self) -> None:
        """
        L{Catalogue.entry} finds reports by C{queryname} and groups by
        C{groupid}, by name or alias, and returns L{None} for unknown names
        or the wrong kind.
        """
        catalogue = load_catalogue()
        report = catalogue.entry(queryname="PRC_LMP")
        assert report is not None
        self.assertEqual((report.queryname, report.groupid), ("PRC_LMP", None))
        group = catalogue.entry(groupid="DAM_LMP_GRP")
        assert group is not None
        self.assertEqual((group.queryname, group.groupid), (None, "DAM_LMP_GRP"))
        self.assertIs(
            catalogue.entry(groupid="PUB_CRR_BID_MTHLY_GRP"),
            catalogue.entry(groupid="PUB_CRR_BID_MONTHLY_GRP"),
        )
        self.assertIs(
            catalogue.entry(queryname="ATL_TAC_AREA"), catalogue.entry(queryname="ATL_TAC_AREA_MAP")
        )
        self.assertIsNone(catalogue.entry(queryname="DAM_LMP_GRP"))
        self.assertIsNone(catalogue.entry(queryname="NO_SUCH_REPORT"))
        self.assertRaises(TypeError, catalogue.entry)
        self.assertRaises(TypeError, catalogue.entry, queryname="PRC_LMP", groupid="DAM_LMP_GRP")

    def test_closest(self) -> None:
        """
        L{Catalogue.closest} corrects a misspelt or lower-case name to the
        canonical one, and gives L{None} when nothing is close.
        """
        catalogue = load_catalogue()
        self.assertEqual(catalogue.closest("prc_lmp"), "PRC_LMP")
        self.assertEqual(catalogue.closest("PRC_INTVL_LPM"), "PRC_INTVL_LMP")
        self.assertEqual(catalogue.closest("DAM_LMP_GROUP"), "DAM_LMP_GRP")
        self.assertEqual(catalogue.closest("PUB_CRR_BID_MTHLY_GRP"), "PUB_CRR_BID_MONTHLY_GRP")
        self.assertIsNone(catalogue.closest("nothing like it"))

    def test_groupsAndReportsAgree(self) -> None:
        """
        Every report a group holds lists that group, and the reverse.
        """
        catalogue = load_catalogue()
        for group in catalogue.groups:
            for queryname in group.reports:
                report = catalogue.entry(queryname=queryname)
                assert report is not None
                self.assertIn(group.name, report.groups)


#: A small valid catalogue, for the malformed variants below.
VALID = """
[[report]]
name = "PRC_X"
description = "A report."
section = "6"
market_run_ids = ["DAM"]
versions = [1]
csv = true
params = [{ name = "grp_type", required = false, all_nodes = ["ALL"] }]
max_span = "31d"
max_span_all_nodes = "1d"
publication = "-10h"
publication_note = "Not given."
groups = ["X_GRP"]

[[group]]
name = "X_GRP"
description = "A group."
section = "7, 8"
market_run_ids = ["DAM"]
versions = [1]
csv = true
reports = ["PRC_X"]
max_span = "1d"
publication = "-10h"
publication_note = "Not given."
"""


class ValidationTests(SynchronousTestCase):
    """
    A malformed entry fails the load with an error naming it.
    """

    def assertMalformed(self, old: str, new: str, *expected: str) -> None:
        """
        Replacing C{old} by C{new} in L{VALID} makes L{parse_catalogue} fail
        with a message holding every one of C{expected}.
        """
        self.assertIn(old, VALID)
        error = self.assertRaises(CatalogueError, parse_catalogue, VALID.replace(old, new, 1))
        for text in expected:
            self.assertIn(text, str(error))

    def test_valid(self) -> None:
        """
        The unaltered small catalogue loads.
        """
        catalogue = parse_catalogue(VALID)
        self.assertEqual(catalogue.names(), ("PRC_X", "X_GRP"))
        self.assertEqual(catalogue.names(REPORT), ("PRC_X",))

    def test_missingKey(self) -> None:
        """
        A missing key is named, with the entry.
        """
        self.assertMalformed('max_span = "31d"\n', "", "report PRC_X", "max_span is missing")

    def test_badSpan(self) -> None:
        """
        A span that is not a count of hours or days is refused.
        """
        self.assertMalformed('max_span = "31d"', 'max_span = "31 days"', "report PRC_X", "max_span")

    def test_allNodesLonger(self) -> None:
        """
        An all-nodes limit longer than the general one is refused.
        """
        self.assertMalformed(
            'max_span_all_nodes = "1d"', 'max_span_all_nodes = "40d"', "report PRC_X", "longer than max_span"
        )

    def test_badOffset(self) -> None:
        """
        A publication offset without a sign is refused.
        """
        self.assertMalformed('publication = "-10h"', 'publication = "10h"', "report PRC_X", "publication")

    def test_unknownKey(self) -> None:
        """
        An unknown key is named with the closest known one.
        """
        self.assertMalformed(
            'max_span = "31d"', 'max_span = "31d"\nmax_spn = "1d"', "report PRC_X", "'max_spn'", "'max_span'"
        )

    def test_unknownParameterKey(self) -> None:
        """
        An unknown key in a parameter table is named with the parameter.
        """
        self.assertMalformed(
            "all_nodes = [", "al_nodes = [", "report PRC_X", "params: grp_type", "'all_nodes'"
        )

    def test_currentWithoutHistory(self) -> None:
        """
        Values making a report current-only are refused on a report that
        is current-only whatever its parameters.
        """
        self.assertMalformed(
            'all_nodes = ["ALL"] }]',
            'all_nodes = ["ALL"], current = ["CURR"] }]\nhistory = false',
            "report PRC_X",
            "current values without history",
        )

    def test_sinceVersionUnknown(self) -> None:
        """
        A parameter's first version must be one of the entry's versions.
        """
        self.assertMalformed(
            'all_nodes = ["ALL"] }]',
            'all_nodes = ["ALL"], since_version = 2 }]',
            "report PRC_X",
            "params: grp_type: since_version 2 is not among versions",
        )

    def test_universalParameter(self) -> None:
        """
        A universal parameter may not be listed as a report's own.
        """
        self.assertMalformed('name = "grp_type"', 'name = "market_run_id"', "report PRC_X", "universal")

    def test_unknownGroup(self) -> None:
        """
        A report naming a group that does not exist is refused, with the
        closest group.
        """
        self.assertMalformed('groups = ["X_GRP"]', 'groups = ["X_GRPP"]', "report PRC_X", "'X_GRP'")

    def test_groupsDisagree(self) -> None:
        """
        A group holding a report that does not list it is refused.
        """
        self.assertMalformed('groups = ["X_GRP"]\n', "", "group X_GRP", "PRC_X")

    def test_duplicateName(self) -> None:
        """
        Two reports of one name are refused.
        """
        twice = VALID.split("[[group]]")[0] + VALID
        error = self.assertRaises(CatalogueError, parse_catalogue, twice)
        self.assertIn("PRC_X", str(error))
        self.assertIn("twice", str(error))

    def test_notToml(self) -> None:
        """
        Text that is not TOML is refused, naming its source.
        """
        error = self.assertRaises(CatalogueError, parse_catalogue, "[[report]\n", "mine.toml")
        self.assertIn("mine.toml", str(error))


class LimitTests(SynchronousTestCase):
    """
    The window limits the specification gives, for known reports.
    """

    def setUp(self) -> None:
        """
        Load the catalogue.
        """
        self.catalogue = load_catalogue()

    def entry(self, queryname: str) -> CatalogueEntry:
        """
        @return: The report of that name, which must exist.
        """
        found = self.catalogue.entry(queryname=queryname)
        assert found is not None
        return found

    def test_prcLmpAllNodes(self) -> None:
        """
        PRC_LMP for all nodes (grp_type=ALL or ALL_APNODES, node=ALL)
        covers one day per request; for named nodes 31 days.
        """
        lmp = self.entry("PRC_LMP")
        self.assertEqual(lmp.max_window_hours({"grp_type": "ALL"}), 24)
        self.assertEqual(lmp.max_window_hours({"GRP_TYPE": "all_apnodes"}), 24)
        self.assertEqual(lmp.max_window_hours({"node": "ALL"}), 24)
        self.assertEqual(lmp.max_window_hours({"node": "LAPLMG1_7_B2,TH_NP15_GEN-APND"}), 31 * 24)
        self.assertEqual(lmp.max_window_hours({}), 31 * 24)
        problems = check_request(lmp, 48, {"market_run_id": "DAM", "grp_type": "ALL"})
        self.assertEqual(len(problems), 1)
        self.assertIn("1d", problems[0])
        self.assertIn("spec section 6", problems[0])

    def test_intervalLmpAllNodes(self) -> None:
        """
        PRC_INTVL_LMP, PRC_RTPD_LMP and PRC_HASP_LMP for all nodes cover one
        hour per request.
        """
        for queryname in ("PRC_INTVL_LMP", "PRC_RTPD_LMP", "PRC_HASP_LMP"):
            entry = self.entry(queryname)
            self.assertEqual(entry.max_window_hours({"grp_type": "ALL"}), 1)
            self.assertEqual(entry.max_window_hours({"node": "LAPLMG1_7_B2"}), 31 * 24)
        problems = check_request(self.entry("PRC_INTVL_LMP"), 2, {"market_run_id": "RTM", "grp_type": "ALL"})
        self.assertEqual(len(problems), 1)
        self.assertIn("1h", problems[0])

    def test_typical(self) -> None:
        """
        A typical report covers 31 days (error 1004), 31 trading days of up
        to 745 hours across the autumn change.
        """
        slrs = self.entry("ENE_SLRS")
        self.assertEqual(slrs.max_window_hours({"tac_zone_name": "ALL"}), 744)
        params = {"market_run_id": "DAM", "tac_zone_name": "ALL", "schedule": "ALL"}
        self.assertEqual(check_request(slrs, 745, params), [])
        [problem] = check_request(slrs, 746, params)
        self.assertIn("31d", problem)
        self.assertIn("spec section 3.2", problem)

    def test_oneDayReports(self) -> None:
        """
        PRC_AS, PRC_RTM_LAP and PUB_BID cover one trading day per request
        whatever the parameters: 23 to 25 hours pass, 26 do not.
        """
        for queryname, market in (("PRC_AS", "DAM"), ("PRC_RTM_LAP", "RTM"), ("PUB_BID", "DAM")):
            entry = self.entry(queryname)
            self.assertEqual(entry.max_window_hours({}), 24)
            params = {"market_run_id": market, "node": "ELAP_PACE-APND"}
            self.assertEqual(check_request(entry, 25, params), [])
            [problem] = check_request(entry, 26, params)
            self.assertIn("spec section 5", problem)

    def test_groups(self) -> None:
        """
        A group covers one trading day (section 2.2); the hourly real-time
        LMP groups one hour; a request without enddatetime is not checked.
        """
        dam = self.catalogue.entry(groupid="DAM_LMP_GRP")
        hasp = self.catalogue.entry(groupid="HASP_LMP_GRP")
        assert dam is not None and hasp is not None
        self.assertEqual(dam.max_window_hours({}), 24)
        self.assertFalse(dam.enddatetime)
        self.assertEqual(hasp.max_window_hours({}), 1)
        self.assertTrue(hasp.enddatetime)
        self.assertEqual(check_request(dam, None, {}), [])
        self.assertNotEqual(check_request(hasp, 24, {}), [])

    def test_missingRequired(self) -> None:
        """
        A missing required parameter, C{market_run_id} or C{one_of} set is a
        problem; a parameter required for one market only is not missed in
        another.
        """
        fcst = self.entry("SLD_FCST")
        [problem] = check_request(fcst, 24, {"market_run_id": "RTM"})
        self.assertIn("execution_type", problem)
        self.assertEqual(check_request(fcst, 24, {"market_run_id": "RTM", "execution_type": "RTD"}), [])
        self.assertEqual(check_request(fcst, 24, {"market_run_id": "DAM"}), [])
        self.assertEqual([p.name for p in fcst.required_params], [])
        problems = check_request(self.entry("PRC_LMP"), 24, {})
        self.assertEqual(len(problems), 2)
        self.assertIn("market_run_id is required", problems[0])
        self.assertIn("grp_type, node", problems[1])
        self.assertEqual(check_request(self.entry("ATL_PRC_CORR_MSG"), 24, {}), [])

    def test_tooManyNodes(self) -> None:
        """
        More than ten nodes in one request is a problem (error 1017).
        """
        nodes = ",".join(f"NODE_{n}" for n in range(11))
        [problem] = check_request(self.entry("PRC_LMP"), 24, {"market_run_id": "DAM", "node": nodes})
        self.assertIn("1017", problem)

    def test_unknownParameterWarns(self) -> None:
        """
        An unknown parameter warns, naming the closest known one; a value,
        market or version the spec does not use warns too, but none of
        these is a problem.
        """
        lmp = self.entry("PRC_LMP")
        params = {"market_run_id": "DAMM", "grp_typ": "ALL", "node": "X", "version": "12"}
        found = warnings(lmp, params)
        self.assertIn("PRC_LMP: unknown parameter 'grp_typ'; did you mean 'grp_type'?", found)
        self.assertTrue(any("DAMM" in w and "'DAM'" in w for w in found))
        self.assertTrue(any("version=12" in w for w in found))
        self.assertEqual(check_request(lmp, 24, params), [])
        [value] = warnings(lmp, {"market_run_id": "DAM", "grp_type": "ALL_APNODE"})
        self.assertIn("'ALL_APNODES'", value)

    def test_recommendedWarns(self) -> None:
        """
        Leaving out a parameter every example sends warns with an example.
        """
        [found] = warnings(self.entry("AS_REQ"), {"market_run_id": "DAM", "anc_type": "ALL"})
        self.assertIn("anc_region=ALL", found)

    def test_groupOnlyWarns(self) -> None:
        """
        Asking SingleZip for a report the spec requests only through groups
        warns, naming the groups.
        """
        [found] = warnings(self.entry("PUB_BID"), {"market_run_id": "DAM"})
        self.assertIn("PUB_DAM_GRP, PUB_RTM_GRP", found)

    def test_currentOnlyWarns(self) -> None:
        """
        A report without history warns, saying what harbour asks of it:
        nothing before today, and of a report published once its window
        is over (+0h) only windows of today shorter than a day, not the
        last of each day; of one published ahead (C{TRNS_CURR_USAGE}, -6d), today and later days,
        each fetched again every day until it is today.
        """
        [current] = warnings(self.entry("PRC_CURR_LMP"), {"node": "ALL"})
        self.assertIn("only current data", current)
        self.assertIn("harbour asks for no day before today", current)
        self.assertIn("only windows of today shorter than a day are fetched (an hour by default)", current)
        self.assertIn("such as the day's last hour, never is", current)
        [ahead] = warnings(self.entry("TRNS_CURR_USAGE"), {"ti_id": "ALL", "ti_direction": "ALL"})
        self.assertIn("harbour asks for no day before today, and for today and later days", ahead)
        self.assertIn("a day at a time, each fetched again every day until it is today", ahead)


class CurrentByParameterTests(SynchronousTestCase):
    """
    A parameter value can make a report current-only: C{PRC_FLEX_RAMP}
    with C{grp_type=CURR} "ignores the input datetime range" (spec
    section 6).
    """

    def setUp(self) -> None:
        """
        Find C{PRC_FLEX_RAMP}.
        """
        entry = load_catalogue().entry(queryname="PRC_FLEX_RAMP")
        assert entry is not None
        self.flex = entry

    def test_historyFor(self) -> None:
        """
        C{grp_type=CURR}, in any case of name and value, takes its history
        away; C{grp_type=ALL} or none keeps it.  A report without history
        has none whatever its parameters, and one with no such parameter
        keeps it.
        """
        self.assertTrue(self.flex.history)
        self.assertTrue(self.flex.history_varies)
        for params in [{"grp_type": "CURR"}, {"GRP_TYPE": "curr"}]:
            self.assertFalse(self.flex.history_for(params), params)
        self.assertEqual(self.flex.current_by({"GRP_TYPE": "curr"}), ("grp_type", "curr"))
        for params in [{"grp_type": "ALL"}, {}, {"baa_grp_id": "CURR"}]:
            self.assertTrue(self.flex.history_for(params), params)
            self.assertIsNone(self.flex.current_by(params))
        curr = load_catalogue().entry(queryname="PRC_CURR_LMP")
        lmp = load_catalogue().entry(queryname="PRC_LMP")
        assert curr is not None and lmp is not None
        self.assertEqual((curr.history_for({}), curr.history_varies), (False, False))
        self.assertEqual((lmp.history_for({"grp_type": "ALL"}), lmp.history_varies), (True, False))

    def test_warns(self) -> None:
        """
        With C{grp_type=CURR} the report warns as those without history
        do, naming the parameter and the publication of its market; with
        C{grp_type=ALL} it does not.
        """
        [found] = warnings(self.flex, {"market_run_id": "RTD", "grp_type": "CURR"})
        self.assertIn("PRC_FLEX_RAMP with grp_type=CURR: OASIS serves only current data", found)
        self.assertIn("for a window once it is over (+1h)", found)
        [ahead] = warnings(self.flex, {"market_run_id": "DAM", "grp_type": "CURR"})
        self.assertIn("for today and later days once their data can exist (-10h)", ahead)
        self.assertEqual(warnings(self.flex, {"market_run_id": "RTD", "grp_type": "ALL"}), [])


class SinceVersionTests(SynchronousTestCase):
    """
    A parameter the spec sends only from some version on warns when sent
    with an earlier one.
    """

    def test_baaGroupWithVersionOne(self) -> None:
        """
        C{PRC_FLEX_RAMP}'s C{baa_grp_id}, which the spec's examples send
        from version 2 on ("EIM release will add the baa_grp_id
        parameter"), warns with version 1, in any case of its name, and
        not with version 2 or without it.
        """
        flex = load_catalogue().entry(queryname="PRC_FLEX_RAMP")
        assert flex is not None
        [found] = warnings(flex, {"market_run_id": "RTD", "BAA_GRP_ID": "ISO", "version": "1"})
        self.assertEqual(
            found,
            "PRC_FLEX_RAMP: the spec sends baa_grp_id only from version 2 on (spec sections 5, 6); "
            "with version=1 OASIS may ignore or refuse it",
        )
        self.assertEqual(warnings(flex, {"market_run_id": "RTD", "baa_grp_id": "ISO", "version": "2"}), [])
        self.assertEqual(warnings(flex, {"market_run_id": "RTD", "version": "1"}), [])


class PublicationTests(SynchronousTestCase):
    """
    When data appears, relative to the trading day or the interval.
    """

    def test_delays(self) -> None:
        """
        Day-ahead data precedes its trading day, real-time data follows its
        interval, public bids follow 90 days later; an offset per market
        overrides the entry's.
        """
        catalogue = load_catalogue()

        def delay(queryname: str, market: str | None = None) -> float:
            """
            @return: The publication offset of a report, for a market.
            """
            entry = catalogue.entry(queryname=queryname)
            assert entry is not None
            return entry.publication_delay_hours_for(market)

        self.assertEqual(delay("PRC_LMP"), -10)
        self.assertEqual(delay("PRC_INTVL_LMP"), 1)
        self.assertEqual(delay("PUB_BID"), 90 * 24)
        self.assertEqual(delay("AGGR_OUTAGE_SCH"), -19)
        self.assertEqual(delay("SLD_FCST", "7DA"), -6 * 24)
        self.assertEqual(delay("SLD_FCST", "dam"), -12)
        self.assertEqual(delay("SLD_FCST", "RTM"), 1)
        self.assertEqual(delay("SLD_FCST"), 1)
        self.assertEqual(delay("ENE_EA"), 24)

    def test_offsets(self) -> None:
        """
        L{offset_hours} reads minutes, hours and days with their sign;
        L{span_hours} counts a day as 24 hours.
        """
        self.assertEqual(offset_hours("+15m"), 0.25)
        self.assertEqual(offset_hours("-10h"), -10)
        self.assertEqual(offset_hours("+90d"), 2160)
        self.assertRaises(ValueError, offset_hours, "10h")
        self.assertEqual(span_hours("31d"), 744)
        self.assertEqual(span_hours("1h"), 1)
        self.assertRaises(ValueError, span_hours, "0d")
