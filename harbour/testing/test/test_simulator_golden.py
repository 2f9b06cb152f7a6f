"""
The simulator's answers to representative requests are byte for byte what
they were before it followed harbour's catalogue and was split into parts:
the SHA-256 digests below were taken from that earlier simulator (same
seed, clock and requests).  Those of the change days' answers were taken
again when their hours came to be labelled as OASIS labels them (the
spring day has no hour 3, the autumn day's repeated hour is 25), those
of sub-hourly XML when its C{INTERVAL_NUM} came to number an interval
within its trading day, and those of C{SLD_FCST} XML when it came to name
its TAC areas in C{RESOURCE_NAME}, as the real samples do.  Those of
every data answer were taken again when each trading day of a report,
market and resource came to be drawn from a source of its own (the same
values in every window holding the day, until revised): the answers'
names and every column but the values are as before.  Those of errors
were taken again when their member came to name the report's market, as
the real ones do, and those of four answers when whole numbers came to be
written without C{.0} (C{23740}, as in the real files).  Those of errors
were taken again when their document came to end without a newline and
to be dated (zip and C{TimeDate}, to the millisecond) by the request's
time, as the real one is.  C{SLD_REN_FCST} and C{ENE_SLRS} are asked
for in RTD and HASP, with digests taken then, since the markets asked
before (HASP, RUC), which harbour's catalogue does not give them, came to
be refused with 1001; the log for all markets was taken again then, as it
no longer lists them.  That of the 7DA CSV was taken again when each
day-ahead forecast came to be labelled and named as its own series
(C{SYS_FCST_7DA_MW}, not C{SYS_FCST_DA_MW}).
"""

from __future__ import annotations

import datetime
import hashlib

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from harbour.testing.simulator import OasisSimulator
from harbour.testing.test.rendering import render

#: 2025-03-12T12:00Z.
NOW = 1741780800.0

WINTER = ("20250115T08:00-0000", "20250116T08:00-0000")
SPRING = ("20250309T08:00-0000", "20250310T07:00-0000")
SUMMER = ("20250701T07:00-0000", "20250702T07:00-0000")
AUTUMN = ("20251102T07:00-0000", "20251103T08:00-0000")
THREE_DAYS = ("20250114T08:00-0000", "20250117T08:00-0000")
HOUR = ("20250115T15:00-0000", "20250115T16:00-0000")
MONTH = ("20250101T08:00-0000", "20250201T08:00-0000")


def single(
    queryname: str, window: tuple[str, str], market: str | None, extra: str = "", version: str = "1"
) -> str:
    """
    @return: The path of a SingleZip request.
    """
    path = f"/oasisapi/SingleZip?queryname={queryname}&startdatetime={window[0]}&enddatetime={window[1]}"
    if market is not None:
        path += f"&market_run_id={market}"
    if version:
        path += f"&version={version}"
    return path + extra


def group(groupid: str, start: str, end: str | None = None) -> str:
    """
    @return: The path of a GroupZip request, version 1.
    """
    window = f"&startdatetime={start}" + (f"&enddatetime={end}" if end else "")
    return f"/oasisapi/GroupZip?groupid={groupid}{window}&version=1"


#: The data requests: label, path.
REPORTS = [
    ("lmp-autumn-xml", single("PRC_LMP", AUTUMN, "DAM")),
    ("lmp-autumn-csv", single("PRC_LMP", AUTUMN, "DAM", "&resultformat=6")),
    ("lmp-ruc-3days-v2-csv", single("PRC_LMP", THREE_DAYS, "RUC", "&resultformat=6", "2")),
    ("lmp-spring-node-v2-xml", single("PRC_LMP", SPRING, "DAM", "&node=TH_NP15_GEN-APND", "2")),
    ("lmp-summer-apnodes-csv", single("PRC_LMP", SUMMER, "DAM", "&grp_type=ALL_APNODES&resultformat=6")),
    ("intvl-hour-all-xml", single("PRC_INTVL_LMP", HOUR, "RTM", "&grp_type=ALL")),
    ("intvl-hour-v3-csv", single("PRC_INTVL_LMP", HOUR, "RTM", "&resultformat=6", "3")),
    ("rtpd-hour-csv", single("PRC_RTPD_LMP", HOUR, "RTPD", "&resultformat=6")),
    ("sld-3days-xml", single("SLD_FCST", THREE_DAYS, "DAM")),
    ("sld-7da-autumn-csv", single("SLD_FCST", AUTUMN, "7DA", "&resultformat=6")),
    ("ren-rtd-spring-xml", single("SLD_REN_FCST", SPRING, "RTD")),
    ("slrs-rtm-winter-csv", single("ENE_SLRS", WINTER, "RTM", "&resultformat=6")),
    ("slrs-hasp-31days-csv", single("ENE_SLRS", MONTH, "HASP", "&resultformat=6")),
    (
        "lmp-past-last-day-csv",
        single("PRC_LMP", ("20251230T08:00-0000", "20260102T08:00-0000"), "DAM", "&resultformat=6"),
    ),
]

#: Group requests, each answered the second time it is made.
GROUPS = [
    ("group-dam-lmp", group("DAM_LMP_GRP", WINTER[0])),
    ("group-rtm-lmp-hour", group("RTM_LMP_GRP", *HOUR)),
    ("group-dam-sld-3days", group("DAM_SLD_GRP", *THREE_DAYS)),
]

ERRORS = [
    ("error-1005", single("NOPE", WINTER, "DAM")),
    ("error-1020", single("PRC_LMP", WINTER, "DAM", version="")),
    ("error-1002", single("PRC_LMP", ("2025-01-15", "x"), "DAM")),
    ("error-1001", single("PRC_LMP", WINTER, "XYZ")),
    ("error-1004", single("PRC_LMP", ("20250101T08:00-0000", "20250203T08:00-0000"), "DAM")),
    ("error-1017", single("PRC_LMP", WINTER, "DAM", "&node=" + ",".join(f"N{i}" for i in range(11)))),
    ("error-1000", single("PRC_LMP", ("20300101T08:00-0000", "20300102T08:00-0000"), "DAM")),
    ("error-1018", single("PRC_INTVL_LMP", WINTER, "RTM", "&grp_type=ALL")),
    ("error-1016", group("NOPE", WINTER[0])),
]

#: Publication requests, at C{NOW} + 90 s, PRC_LMP 2025-03-11 revised at C{NOW}.
PUBLICATIONS = [
    ("atl-pub-xml", single("ATL_PUB", ("20250309T07:00-0000", "20250313T07:00-0000"), "ALL")),
    (
        "atl-pub-dam-csv",
        single("ATL_PUB", ("20250309T07:00-0000", "20250313T07:00-0000"), "DAM", "&resultformat=6"),
    ),
    (
        "atl-pub-sched-csv",
        single("ATL_PUB_SCHED", ("20250312T07:00-0000", "20250313T07:00-0000"), "ALL", "&resultformat=6"),
    ),
    ("atl-pub-sched-rtm-xml", single("ATL_PUB_SCHED", ("20250312T07:00-0000", "20250313T07:00-0000"), "RTM")),
    (
        "lmp-revised-csv",
        single("PRC_LMP", ("20250311T07:00-0000", "20250312T07:00-0000"), "DAM", "&resultformat=6"),
    ),
]

DIGESTS = {
    "lmp-autumn-xml": "67479fc6c3a6fb4e5ebc047b445e135b397741d81a15721fd98310eeb42d5fde",
    "lmp-autumn-csv": "ccbc6e47d6413e9ffa63e0925a77b6c1886488055524a0759b91686b947d9be2",
    "lmp-ruc-3days-v2-csv": "d99243f154950443460602fab9dc259731ae44caaeffdece78960cd6af130ae8",
    "lmp-spring-node-v2-xml": "b3a258f45236060d0a6b5cdd7216582ab053500c5a4b12aaf1ee291801f7fe0f",
    "lmp-summer-apnodes-csv": "7c692f0ab5e959de526bd13912cbf5a904280f1e0f407d57efa068e060cb0a4c",
    "intvl-hour-all-xml": "47d759db31fc0b9304abe97f8e4240358b2c4c6f79a2be64718ec5f94058bb16",
    "intvl-hour-v3-csv": "e73f0f22c81f2b58f3e771389ce5bf94a0e62acd74e4c89717abc455c3ff7785",
    "rtpd-hour-csv": "884d2521c36ff1060870644698488d86378e206a80fcdf4acd60f596f9400056",
    "sld-3days-xml": "6cf40a4553ddce752f6d5756c77d575aa7f278760f186881180d25710a110692",
    "sld-7da-autumn-csv": "8757e1502a78a13571e8125463813c5ff454b724beed246d79a8416083d74a1c",
    "ren-rtd-spring-xml": "24b3eeefab4b88edfad6d531935fbae35131ef07acb0bb6efc4ce2737a32b95f",
    "slrs-rtm-winter-csv": "b61d6a480ab9c9b59bc926eedb43af6a86aa0d420c05b168ce1160b1adb081c8",
    "slrs-hasp-31days-csv": "a27b63e9e4b643acd0fa643c41c9c1d70b4c7cbe7195c5eefaad73d1552c4040",
    "lmp-past-last-day-csv": "1bf8eb9d06b959a28b3c6b4f2325affc05eadda2f7628c996e62c40803d91199",
    "group-dam-lmp": "a0dffde34b6fa9921a4d33645be49816b9f12ea21f55adab2b7d309c9f9ecce1",
    "group-rtm-lmp-hour": "e0fa3218fdb20caa350d2f8203addb6e7e6343783859dd627ef153cdcf5f7130",
    "group-dam-sld-3days": "06db56d8a56d76fc21d1d53a8cbf0c366c8a8e55fa269e1c94ef7e8e3ce255b3",
    "error-1005": "2b35f13ff16c3f077aaf1678e5001cdac63bd391677e40a04713595b570d93ed",
    "error-1020": "3008f66eaa04bc7990aefc7effb659454eabe6c56b748f8421dfdce23094b20d",
    "error-1002": "18ea2a42278048fc7c21769ac8a32ebbaef657eb3636845c6859333f01088efc",
    "error-1001": "3f7f6a815f17b960ce0332680a9e6fc0518bced6303f7926bec9c98f9db5170e",
    "error-1004": "5326384bd0a7bcfacb154806b255be02a49fa9d0f6a235a068dde0006ddda872",
    "error-1017": "ede83ae6fe505a60ab87d770b072d6c185904a342010c2df2b952fb88b7133d5",
    "error-1000": "1f82c351324d293f01e8c849cf5c9a0e1c3ad62c3917f4a1f243873b01b46118",
    "error-1018": "685bee2536b67ece4b6d4a17e821a14a9fd79deccffefc26d3c0a52dc80611b2",
    "error-1016": "477b1fe2e2b993a0a4414672af0e2eefd30af1590a6c2bb934acd98cc88ab5e0",
    "atl-pub-xml": "02290bba111c3c9de33d7338ef9de22a65225b89bb65ef96a53a603bc115fb86",
    "atl-pub-dam-csv": "bd6c84ef01b5fe55128481856e87028836a9e11dbd8833c0356215e75641c338",
    "atl-pub-sched-csv": "20553979a40e93dcfea14c6c44d1806f563e581f2b43b8021d1ce248472d0d97",
    "atl-pub-sched-rtm-xml": "44e6017e72fed59e7c885c180dfb56f981ee27e386cf561b52421dfef99021f5",
    "lmp-revised-csv": "4f948c9ffb5d8481766a3d7ce498ce883a41ee2f7829f6445aca145f51219107",
}


class GoldenAnswerTests(SynchronousTestCase):
    """
    Answers of reports the simulator served before it read the catalogue,
    for windows within the catalogue's limits, are unchanged.
    """

    def simulator(
        self, last_day: datetime.date | None = None, publish_offset: float = 0.0
    ) -> tuple[OasisSimulator, Clock]:
        """
        @return: A simulator with seed 11 and 4 nodes at C{NOW}, and its clock.
        """
        clock = Clock()
        clock.advance(NOW)
        simulator = OasisSimulator(clock, seed=11, nodes=4, last_day=last_day, publish_offset=publish_offset)
        return simulator, clock

    def assertDigests(
        self, simulator: OasisSimulator, cases: list[tuple[str, str]], repeat: bool = False
    ) -> None:
        """
        Each request of C{cases} (made twice if C{repeat}) is answered with
        HTTP 200 and the bytes its digest names.
        """
        for label, path in cases:
            if repeat:
                render(simulator, path)
            code, body = render(simulator, path)
            self.assertEqual(code, 200, label)
            self.assertEqual(hashlib.sha256(body).hexdigest(), DIGESTS[label], label)

    def test_reports(self) -> None:
        """
        Data of every report with a generator of its own, in CSV and XML,
        on ordinary and daylight-saving days, up to 31 days, for nodes or
        all nodes, and cut at the last day with data.
        """
        simulator, ignored = self.simulator(last_day=datetime.date(2025, 12, 31))
        self.assertDigests(simulator, REPORTS)

    def test_groups(self) -> None:
        """
        The simulator's own groups, answered after their 1015.
        """
        simulator, ignored = self.simulator(last_day=datetime.date(2025, 12, 31))
        self.assertDigests(simulator, GROUPS, repeat=True)

    def test_errors(self) -> None:
        """
        The error zip of each refusal.
        """
        simulator, ignored = self.simulator(last_day=datetime.date(2025, 12, 31))
        self.assertDigests(simulator, ERRORS)

    def test_publications(self) -> None:
        """
        C{ATL_PUB} and C{ATL_PUB_SCHED} in CSV and XML, with a revision in
        the log and in the revised day's data.
        """
        simulator, clock = self.simulator(publish_offset=-11 * 3600)
        simulator.revise("PRC_LMP", datetime.date(2025, 3, 11))
        clock.advance(90)
        self.assertDigests(simulator, PUBLICATIONS)
