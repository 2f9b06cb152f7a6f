"""
Benchmark of the catalogue's defaults: the requests (and hours at OASIS's
five-second rule) to mirror 39 months of a typical analyst's ten reports
with the windows the catalogue allows, against one request per trading
day, as most scripts ask.  Counts, not times: one run says it all.
"""

from __future__ import annotations

import datetime
from typing import NotRequired, TypedDict

from harbour.config.schema import ManifestTopic, ReportTopic
from harbour.oasis.plan import plan, trading_days


class Typical(TypedDict):
    """
    A report of L{TYPICAL}: the settings of its C{[[reports]]} table.
    """

    name: str
    queryname: str
    market_run_id: NotRequired[str]
    params: NotRequired[dict[str, str]]


#: Ten reports an analyst of the CAISO market asks for first: day-ahead and
#: real-time hub prices, load and renewables forecasts, ancillary service
#: prices, fuel prices, transmission, and the wind and solar summary.
TYPICAL: list[Typical] = [
    {
        "name": "dam-hub-lmp",
        "queryname": "PRC_LMP",
        "market_run_id": "DAM",
        "params": {"node": "TH_NP15_GEN-APND,TH_SP15_GEN-APND,TH_ZP26_GEN-APND"},
    },
    {
        "name": "rtm-hub-lmp",
        "queryname": "PRC_INTVL_LMP",
        "market_run_id": "RTM",
        "params": {"node": "TH_NP15_GEN-APND,TH_SP15_GEN-APND,TH_ZP26_GEN-APND"},
    },
    {"name": "load-forecast-dam", "queryname": "SLD_FCST", "market_run_id": "DAM"},
    {"name": "load-actual", "queryname": "SLD_FCST", "market_run_id": "ACTUAL"},
    {"name": "renewables-dam", "queryname": "SLD_REN_FCST", "market_run_id": "DAM"},
    {
        "name": "as-prices-dam",
        "queryname": "PRC_AS",
        "market_run_id": "DAM",
        "params": {"anc_type": "ALL", "anc_region": "ALL"},
    },
    {"name": "fuel-prices", "queryname": "PRC_FUEL", "params": {"fuel_region_id": "ALL"}},
    {
        "name": "transmission-dam",
        "queryname": "TRNS_ATC",
        "market_run_id": "DAM",
        "params": {"ti_id": "ALL", "ti_direction": "ALL"},
    },
    {"name": "wind-solar-summary", "queryname": "ENE_WIND_SOLAR_SUMMARY"},
    {"name": "ghg-allowance", "queryname": "PRC_GHG_ALLOWANCE"},
]


def requests(today: datetime.date = datetime.date(2026, 11, 22)) -> dict[str, float]:
    """
    @return: The requests with the catalogue's windows and at one per
        trading day, and the hours each takes at 5 s a request.
    """
    manifest = ManifestTopic(start="-39mo", end="today")
    reports = [ReportTopic(resultformat="csv", **report) for report in TYPICAL]
    plans = plan(manifest, reports, today)
    catalogue = sum(p.requests for p in plans)
    daily = trading_days(plans)
    return {
        "catalogue_requests": catalogue,
        "daily_requests": daily,
        "catalogue_hours": catalogue * 5 / 3600,
        "daily_hours": daily * 5 / 3600,
    }


if __name__ == "__main__":
    print(requests())
