"""
The agent that sends harbour's HTTP requests: Twisted's, with the part of
each URI before its query parsed once.

Harbour asks one host for many answers, which differ only in their
queries.  Twisted's agent parses every URI whole (C{urlparse}, then the
network location, then C{urlunparse} for the request line), which costs a
small answer about a twentieth of the reactor's time spent on it.
L{QueriesApart} parses the part before the query once, and puts the query
back on it.
"""

from __future__ import annotations

import re

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse

#: What Twisted's agent takes as a URI: printable ASCII, no spaces.
_PLAIN = re.compile(rb"[\x21-\x7e]+")

#: The most URIs-before-their-query kept: more than the hosts and paths
#: harbour ever asks (OASIS's few, and the hosts it redirects to).
KEPT_BASES = 64


class QueriesApart(Agent):
    """
    An agent that parses the part of a URI before its query once, and
    sends exactly what L{Agent} would.

    A URI with a fragment or an empty query, whose path is empty, does
    not start with C{/} or starts with C{//}, or with anything Twisted's
    agent would refuse, goes the agent's own way.  It relies on two of
    L{Agent}'s private methods, C{_getEndpoint} and
    C{_requestWithEndpoint}: every download test goes through them.
    """

    # Made on first use: Agent.usingEndpointFactory does not call __init__.
    _bases: dict[bytes, tuple[URI, bytes]] | None = None

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        See L{Agent.request}.
        """
        base, mark, query = uri.partition(b"?")
        known = self._base(base) if query and b"#" not in uri and _PLAIN.fullmatch(uri) else None
        if known is None:
            return super().request(method, uri, headers, bodyProducer)
        parsed, origin = known
        whole = URI(
            parsed.scheme, parsed.netloc, parsed.host, parsed.port, parsed.path, parsed.params, query, b""
        )
        try:
            endpoint = self._getEndpoint(whole)
        except SchemeNotSupported:
            return fail(Failure())
        key = (whole.scheme, whole.host, whole.port)
        return self._requestWithEndpoint(
            key, endpoint, method, whole, headers, bodyProducer, origin + b"?" + query
        )

    def _base(self, base: bytes) -> tuple[URI, bytes] | None:
        """
        @return: C{base} (a URI without its query) parsed, and the start of
            the request line's target (the path and parameters); or
            L{None} for a path Twisted's agent treats its own way (empty,
            not starting with C{/}, or starting with C{//}).
        """
        if self._bases is None:
            self._bases = {}
        known = self._bases.get(base)
        if known is None:
            parsed = URI.fromBytes(base)
            if not parsed.path.startswith(b"/") or parsed.path.startswith(b"//"):
                return None
            if len(self._bases) >= KEPT_BASES:
                self._bases.clear()
            origin = parsed.path + (b";" + parsed.params if parsed.params else b"")
            known = self._bases[base] = (parsed, origin)
        return known
