"""
An OASIS simulator: a C{twisted.web} resource serving C{/oasisapi/SingleZip}
and C{/oasisapi/GroupZip} the way CAISO's OASIS does.

- Every answer is HTTP 200 with a zip.  Errors are one XML member with
  C{ERR_CODE}/C{ERR_DESC} under an C{m:} prefix, as in the real samples:
  1000 outside the available days, 1001 a market the report lacks or a
  parameter it requires there left out (C{execution_type} for C{SLD_FCST}
  in RTM), 1002 a bad date-time, 1004 a window over a limit in days (31
  for most reports), 1005 an unknown report, 1011 a request without any
  parameter, 1015 the first request of a GroupZip window, 1016 an unknown
  group, 1017 over 10 nodes, 1018 a window over a limit in hours (one
  hour of C{PRC_INTVL_LMP} for all nodes), 1020 a missing or bad version.
- The limits are those of harbour's catalogue
  (L{harbour.oasis.catalogue.load_catalogue}); for all nodes (C{PRC_LMP}
  with C{grp_type=ALL}) OASIS ignores C{enddatetime} and answers the
  all-nodes span from C{startdatetime}, a window asked for longer or
  shorter (a longer one in hours is refused).  A GroupZip asked for by
  C{startdatetime} alone answers the whole trading day that starts there,
  or for a group whose one answer holds its month, that calendar month of
  trading days.  See L{limits}.
- Data zips are named and laid out like the real ones: CSV with the real
  columns (C{resultformat=6}), or XML in the C{OASISReport} layout with one
  member per price component.  Content is deterministic from the seed:
  each trading day of a report, market and resource (a node, a TAC area,
  a data item) is drawn from a source of its own (L{formats.Draws}), so
  that a day holds the same values in every answer, whatever its window,
  until it is revised; only an answer's creation time depends on its URL.
  C{nodes} sets the size.  Every other report and group of the
  catalogue gets generic data (L{generic}).
- A request that starts less than C{min_interval} after the previous
  accepted one gets OASIS's Acceptable Use Policy page with HTTP 429 and no
  C{Retry-After}, as OASIS sends it (or, with C{throttle_page}, with HTTP
  200, as some clients report it).
- L{Faults} adds latency, 5xx with C{Retry-After} (with a short body, or
  one that never ends), connections reset mid-body, truncated zips, slow
  trickles and heads flooded with header lines, decided per (URL, attempt)
  so that a retried request meets a repeatable fate.
- C{ATL_PUB} (the Publications and Revisions log) and C{ATL_PUB_SCHED} (the
  Publication Schedule) agree with the data: trading day D of every report
  is published C{publish_offset} seconds after D starts, and is served from
  then on; the log lists the publications of the reports with generators
  of their own (L{CATALOGUE}), and L{OasisSimulator.revise} changes a day
  of one of them and logs a revision (it refuses the others, which the log
  does not cover).

C{twistd oasis-sim} runs it stand-alone; L{makeService} is that plugin.

The modules, one job each: L{formats} (times, intervals, error codes, the
data's random sources), L{documents} (zips, XML, CSV), L{reports} (the
data of the reports with generators of their own), L{generic} (the data
of the others), L{limits} (what one request may ask for), L{publications}
(when data is published, and the log saying so), L{answers} (SingleZip and
GroupZip answers), L{faults} (faults and throttling), L{resource}
(L{OasisSimulator} and its endpoints) and L{service} (C{twistd oasis-sim}).
"""

from harbour.testing.simulator.documents import (
    DISCLAIMER,
    NAMESPACE,
    THROTTLE_PAGE,
    deterministic_zip,
    error_document,
)
from harbour.testing.simulator.faults import Faults
from harbour.testing.simulator.formats import (
    GMT_FORMAT,
    MESSAGES,
    PACIFIC,
    UTC,
    Interval,
    OasisError,
    intervals,
    iso,
    parse_gmt,
)
from harbour.testing.simulator.generic import GenericReport
from harbour.testing.simulator.publications import (
    PUBLICATION_COLUMNS,
    PUBLICATIONS_LOG,
    PUBLICATIONS_SCHEDULE,
    SCHEDULE_COLUMNS,
)
from harbour.testing.simulator.reports import (
    CATALOGUE,
    GROUPS,
    HUBS,
    PRICE_ITEMS,
    SECTIONS,
    TAC_AREAS,
    SimReport,
)
from harbour.testing.simulator.resource import OasisSimulator
from harbour.testing.simulator.service import Options, SimulatorService, makeService

__all__ = [
    "CATALOGUE",
    "DISCLAIMER",
    "GMT_FORMAT",
    "GROUPS",
    "HUBS",
    "MESSAGES",
    "NAMESPACE",
    "PACIFIC",
    "PRICE_ITEMS",
    "PUBLICATIONS_LOG",
    "PUBLICATIONS_SCHEDULE",
    "PUBLICATION_COLUMNS",
    "SCHEDULE_COLUMNS",
    "SECTIONS",
    "TAC_AREAS",
    "THROTTLE_PAGE",
    "UTC",
    "Faults",
    "GenericReport",
    "Interval",
    "OasisError",
    "OasisSimulator",
    "Options",
    "SimReport",
    "SimulatorService",
    "deterministic_zip",
    "error_document",
    "intervals",
    "iso",
    "makeService",
    "parse_gmt",
]
