"""
The operators' HTTP side: what a running harbour shows to monitoring and
to people.

 - L{harbour.web.health}: the health state of each report (ok, behind,
   retrying, failing, idle) and its thresholds, shared with
   C{harbourctl status}.
 - L{harbour.web.coverage}: the coverage map, the state of every trading
   day of every report.
 - L{harbour.web.snapshot}: the immutable picture of the daemon that the
   metrics and the page are drawn from.
 - L{harbour.web.monitor}: the C{monitor} service, which follows the bus
   and keeps that snapshot current.
 - L{harbour.web.metrics}: the Prometheus collector of the snapshot.
 - L{harbour.web.page}: the status page, rendered with
   L{twisted.web.template}.
 - L{harbour.web.resources}: the resource tree and its authentication.
 - L{harbour.web.service}: the C{http} service listening on C{--http}.

May import: L{harbour.interfaces}, L{harbour.bus}, L{harbour.store},
L{harbour.oasis}, L{harbour.config.topics} (the names of the
configuration's topics, and the manifest's, whose time zone the map's days
are of), L{harbour.services.knowledge} (the publications
log's modes) and L{harbour.amp.server} (the listening policy and the
token); never L{harbour.service}.
"""
