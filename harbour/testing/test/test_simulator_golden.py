"""
The simulator's answers to representative requests are byte for byte what
they were before it followed harbour's catalogue and was split into parts:
the SHA-256 digests below were taken from that earlier simulator (same
seed, clock and requests).  Those of the change days' answers were taken
again when their hours came to be labelled as OASIS labels them (the
spring day has no hour 3, the autumn day's repeated hour is 25), those
of sub-hourly XML when its C{INTERVAL_NUM} came to number an interval
within its trading day, and those of C{SLD_FCST} XML when it came to name
its TAC areas in C{RESOURCE_NAME}, as the real samples do.
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
    ("ren-hasp-spring-xml", single("SLD_REN_FCST", SPRING, "HASP")),
    ("slrs-rtm-winter-csv", single("ENE_SLRS", WINTER, "RTM", "&resultformat=6")),
    ("slrs-ruc-31days-csv", single("ENE_SLRS", MONTH, "RUC", "&resultformat=6")),
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
    "lmp-autumn-xml": "54b8139510d842058f80c10f38085baaf191832b94f014a40aba3755abf46540",
    "lmp-autumn-csv": "09f15a12f39b7082ebe18d7d8db1f60f1572139367cdc33cf24701840e2543ad",
    "lmp-ruc-3days-v2-csv": "16734b821b37c0edcd97a59e8ae9dc9c36488b452c0f84ea226996f901763bbb",
    "lmp-spring-node-v2-xml": "6e415210b36c8b8837c1a0adc762875a0fd3fecdf7166969f4a7aaef174f93a0",
    "lmp-summer-apnodes-csv": "94eeafffe1ca71920b486442d688c95fbd05ced12345699a294b91a305965700",
    "intvl-hour-all-xml": "78bb669fcf967a4b46b81fb45890e59aca05aa94d5d07568a481d732f32d8afd",
    "intvl-hour-v3-csv": "0e2a7ab498b6a65fb127068eb1d2f0ec9af4cf189498cb5ad43bebc6e8f152b3",
    "rtpd-hour-csv": "da23f2b5af88186ce963e0a994289ddeb3b7b864da7df56fbfae2100aef9f50b",
    "sld-3days-xml": "0952a4610c63fb7976f347b1fdaa936c858058d01f3b7acf0c3c800568ffd729",
    "sld-7da-autumn-csv": "5f89615c1ea0f1988e2854217dae3554f33eeaf9b8925532030d9a41ba3c1b17",
    "ren-hasp-spring-xml": "d508f8cbfcf40cdc11e192752dfe7f7df87f4fc00648f662a13179ba66d38e51",
    "slrs-rtm-winter-csv": "c3acca0014c7b34a659e5aad8ff06379ee919ffd9ce4bc7c88e289531dfd5b13",
    "slrs-ruc-31days-csv": "fe0ee9a5f76df603b4af20305e6ed6c39d4fb16111c843a2c0587253ff6403ef",
    "lmp-past-last-day-csv": "58bc1970327720f7f3b961c07d27f9b68a786697b8f876255839a14533dc7d6a",
    "group-dam-lmp": "1869ad630ab8ae3df2c3ff53fbab927d933f0b323c5406312bdc1f44ec811d9a",
    "group-rtm-lmp-hour": "8d7c7c132816a6df24905ce1acb27f7c5773b1bdf8b38d2bbde29f6a129f3767",
    "group-dam-sld-3days": "1592f543d1ebea6421b1260208ddf11c7c6884c04145717606d850e9014c1e8c",
    "error-1005": "2ee2e6010acb4695de38027bae0a051cbd756d29f36674f5608abd81cc8059b6",
    "error-1020": "d75b2d9df1669b31f76299dc92e419396285dc1ea3b2f6a144be273f11d78ff9",
    "error-1002": "a5dc529ddea9d9e115d5d1c06097e2bde4d3f413482774d10a94695f4e93b2cd",
    "error-1001": "19c70b10a8e4331c152bfec32e717db947e0fb1271f838e83f1c348d82e76cb0",
    "error-1004": "f60595d530259c79f14a30f6ef2a20f4a2ddfc49cf6f27c32621d01aec4728ff",
    "error-1017": "83e9b497aabad25750f9cb6bd8b3db156f60ba4a3558b4059b4c8feaaa99eb3c",
    "error-1000": "cd4bc0bf17b610237df92fd62fd6c218b97226d3d5136ee6afd1543018958dbb",
    "error-1018": "3f43f5739eb46e15f776c6c0c1f8b2322839dcab7ca95324bf0f49e7057d4560",
    "error-1016": "4cb2b8030fed33d16249139ecf16e56ab8000fe7c8a569b3b78d385266cd3db2",
    "atl-pub-xml": "ca181ea62dcd4c1422898b7e74edbf22954ca6cad9971340c714f8229471822e",
    "atl-pub-dam-csv": "bd6c84ef01b5fe55128481856e87028836a9e11dbd8833c0356215e75641c338",
    "atl-pub-sched-csv": "d446a4499286e20064ac8da91c685d19980d1093d1b08811dad6cd29e82f6e30",
    "atl-pub-sched-rtm-xml": "44e6017e72fed59e7c885c180dfb56f981ee27e386cf561b52421dfef99021f5",
    "lmp-revised-csv": "dc09044bd9b0462fd0cc9591f0ec31374020733e8cfb0b9ed787dcca233ca012",
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
