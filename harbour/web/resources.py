"""
The HTTP resource tree: C{/} (the status page), C{/live} (its updates),
C{/assets/}, C{/login}, and the open C{/metrics}, C{/healthz},
C{/readyz} and C{/favicon.ico}.

On a listener other hosts can reach, the page and its updates need the
control port's token: as C{Authorization: Bearer TOKEN}, or through the
login form, which sets a cookie holding a digest of the token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable
from typing import Any

import attr
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.defer import Deferred, FirstError, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import EncodingResourceWrapper, IResource, Resource
from twisted.web.server import NOT_DONE_YET, GzipEncoderFactory, Request
from twisted.web.template import Tag, tags

from harbour.web.assets import SCRIPT, STYLE
from harbour.web.monitor import Monitor
from harbour.web.page import fragment, page, parts, render
from harbour.web.snapshot import Snapshot

#: The cookie the login form sets.
COOKIE = b"harbour_session"


def session(token: str) -> bytes:
    """
    @return: The cookie value that stands for C{token}: a digest, so that
        the token itself is never kept by a browser.
    """
    return hmac.new(token.encode(), b"harbour status page", hashlib.sha256).hexdigest().encode()


def _text(request: Request, code: int, text: str, reason: bytes | None = None) -> bytes:
    request.setResponseCode(code, reason)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return text.encode() + b"\n"


def headless(request: Request, body: int | bytes) -> int | bytes:
    """
    Answer a C{HEAD} with the status and headers C{body} came with, and
    none of it: Twisted, handed a body for a C{HEAD}, drops it but logs a
    warning with the resource's C{repr}, for every probe of an uptime
    checker or a load balancer.

    @param body: The answer to the request as a C{GET}: bytes, or
        L{NOT_DONE_YET} (the request then writes the body itself, which
        Twisted drops for a C{HEAD} without a word).
    @return: C{body}, or for a C{HEAD}, C{b""} (with C{body}'s length as
        its C{Content-Length}, as a C{GET} is sent).
    """
    if request.method == b"HEAD" and isinstance(body, bytes) and body:
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return b""
    return body


class HeadAsGet(Resource):
    """
    A leaf resource: it answers its own path only, a path under it with
    L{NotFound} (Twisted hands a leaf every path under it); and C{HEAD} as
    it answers C{GET}, without the body (see L{headless}).
    """

    isLeaf = True

    def render(self, request: Request) -> int | bytes:
        """
        @return: L{NotFound}'s answer for a path under this one, else this
            resource's own.
        """
        if request.postpath:
            return NotFound().render(request)
        return super().render(request)

    def render_HEAD(self, request: Request) -> int | bytes:
        """
        @return: Nothing, with the status and headers of a C{GET}.
        """
        return headless(request, self.render_GET(request))  # type: ignore[attr-defined]


class NotFound(Resource):
    """
    404, to any method, for a path nothing answers (Twisted's own page for
    it returns its body for a C{HEAD} too).
    """

    isLeaf = True

    def render(self, request: Request) -> int | bytes:
        """
        @return: C{404}.
        """
        return headless(request, _text(request, 404, "no such page"))


class Folder(Resource):
    """
    A resource that only holds others: the paths under it that none of
    them has, and its own path, are L{NotFound}.  (A L{Resource} without
    C{render_GET} answers its own path's C{HEAD} with a traceback in the
    log, and a C{GET} with 405.)
    """

    def getChild(self, path: bytes, request: Request) -> Resource:
        """
        @return: L{NotFound}.
        """
        return NotFound()

    def render(self, request: Request) -> int | bytes:
        """
        @return: C{404}.
        """
        return NotFound().render(request)


@attr.s(eq=False)
class Asset(HeadAsGet):
    """
    One of the page's files: the same bytes for every C{GET}.
    """

    data: bytes = attr.ib(repr=False)
    content_type: bytes = attr.ib()

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> bytes:
        """
        @return: The file.
        """
        request.setHeader(b"content-type", self.content_type)
        return self.data


@attr.s(eq=False)
class Remembered:
    """
    The last answer rendered from a snapshot and a version of the map,
    given again until either is replaced: every open page polls, and a
    scraper or a stranger may ask as often as it likes, while a snapshot
    is taken every few seconds (at 2,000 reports, C{/metrics} takes 0.3 s
    of the reactor to render, the page and C{/live}'s parts 0.2 s).
    """

    # Out of the repr, as every large attribute of a resource: Twisted
    # logs a resource's repr on some paths (a whole answer, or the daemon
    # behind a monitor, would fill the log).
    _shot: Snapshot | None = attr.ib(default=None, init=False, repr=False)
    _version: int = attr.ib(default=-1, init=False)
    _answer: bytes = attr.ib(default=b"", init=False, repr=False)

    def get(self, shot: Snapshot, version: int, render: Callable[[], Deferred[bytes]]) -> Deferred[bytes]:
        """
        @param shot: The snapshot the answer is rendered from (the same
            object: a snapshot is replaced, never changed).
        @param version: The map's version it is rendered from.
        @return: The answer remembered, or that C{render} gives, then
            remembered.
        """
        if shot is self._shot and version == self._version:
            return succeed(self._answer)
        return render().addCallback(self._remember, shot, version)

    def get_now(self, shot: Snapshot, version: int, render: Callable[[], bytes]) -> bytes:
        """
        L{get}, for an answer rendered at once.
        """
        if shot is self._shot and version == self._version:
            return self._answer
        return self._remember(render(), shot, version)

    def _remember(self, answer: bytes, shot: Snapshot, version: int) -> bytes:
        self._shot, self._version, self._answer = shot, version, answer
        return answer


class Rendered(HeadAsGet):
    """
    A resource whose answers are rendered by L{twisted.web.template}, and
    so arrive later, or fail.
    """

    log = Logger()

    def send(self, request: Request, render: Callable[[], Deferred[bytes]], content_type: bytes) -> int:
        """
        Finish C{request} with what C{render} gives; if it fails (or
        raises, the page's parts not to be built from what there is), log
        why and answer 500.

        @return: L{NOT_DONE_YET}.
        """
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda failure: gone.append(True))

        def write(body: bytes) -> None:
            if not gone:
                request.setHeader(b"content-type", content_type)
                request.setHeader(b"cache-control", b"no-store")
                request.write(body)
                request.finish()

        def failed(failure: Failure) -> None:
            if isinstance(failure.value, FirstError):
                failure = failure.value.subFailure
            self.log.failure(
                "cannot render {path}", failure, path=request.uri.decode("ascii", "replace"), service="http"
            )
            if not gone:
                request.write(_text(request, 500, "cannot render the page"))
                request.finish()

        maybeDeferred(render).addCallback(write).addErrback(failed)
        return NOT_DONE_YET


@attr.s(eq=False)
class Healthz(HeadAsGet):
    """
    C{/healthz}: 200 whenever the reactor answers.
    """

    isLeaf = True

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> bytes:
        """
        @return: C{ok}.
        """
        return _text(request, 200, "ok")


@attr.s(eq=False)
class NoIcon(HeadAsGet):
    """
    C{/favicon.ico}: 204, no icon.  A browser asks for one whatever the
    page says, and logs a 404 as an error.
    """

    isLeaf = True

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> int:
        """
        Answer nothing, for a day before it is asked again.
        """
        request.setResponseCode(204)
        request.setHeader(b"cache-control", b"max-age=86400")
        # Finished here, not by returning b"": Twisted would then send
        # Content-Length, which a 204 must not have.
        request.finish()
        return NOT_DONE_YET


@attr.s(eq=False)
class Readyz(HeadAsGet):
    """
    C{/readyz}: 200 once the configuration is loaded, Redis answers and
    every service has started; 503 with the reason otherwise.
    """

    isLeaf = True
    monitor: Monitor = attr.ib(repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> bytes:
        """
        @return: C{ready}, or why not.
        """
        why = self.monitor.current.ready
        return _text(request, 503, why) if why else _text(request, 200, "ready")


@attr.s(eq=False)
class Metrics(HeadAsGet):
    """
    C{/metrics}: the Prometheus text of C{registry}, generated on the
    reactor from the monitor's snapshot (a few milliseconds for a few
    reports, 0.3 s at 2,000), once per snapshot.

    @ivar snapshot: The snapshot C{registry} collects from.
    """

    isLeaf = True
    registry: CollectorRegistry = attr.ib(repr=False)
    snapshot: Callable[[], Snapshot] = attr.ib(repr=False)
    _remembered: Remembered = attr.ib(factory=Remembered, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> bytes:
        """
        @return: The metrics.
        """
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return self._remembered.get_now(self.snapshot(), 0, lambda: generate_latest(self.registry))


@attr.s(eq=False)
class StatusPage(Rendered):
    """
    C{/}: the status page.
    """

    isLeaf = True
    monitor: Monitor = attr.ib(repr=False)
    _remembered: Remembered = attr.ib(factory=Remembered, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> int:
        """
        Render the page from the current snapshot and map (or give it again,
        rendered from the same).
        """
        coverage = self.monitor.coverage
        shot = self.monitor.current

        def rendered() -> Deferred[bytes]:
            return self._remembered.get(
                shot, coverage.version, lambda: render(page(shot, coverage.rows(), coverage.stamp()))
            )

        return self.send(request, rendered, b"text/html; charset=utf-8")


@attr.s(eq=False)
class Live(Rendered):
    """
    C{/live?since=VERSION}: the page's overview, map heading and tables
    again, and the map's rows changed after C{VERSION}, a L{Coverage.stamp}
    (all of them, with C{reset}, when reports came or went, or the stamp is
    not of this process's map).
    """

    isLeaf = True
    monitor: Monitor = attr.ib(repr=False)
    # The parts, as JSON: the same for every poll until the snapshot or
    # the map is replaced.
    _remembered: Remembered = attr.ib(factory=Remembered, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> int:
        """
        Answer with JSON: C{version}, C{reset}, C{rows} and C{parts}
        (C{{name: HTML}}, the map's heading among them).
        """
        since = (request.args or {}).get(b"since", [b""])[0].decode("utf-8", "replace")
        coverage = self.monitor.coverage
        shot = self.monitor.current

        def drawn() -> Deferred[bytes]:
            redrawn = parts(shot, coverage.rows())

            def done(html: list[bytes]) -> bytes:
                named = {name: part.decode() for name, part in zip(redrawn, html)}
                return json.dumps(named, separators=(",", ":")).encode()

            return gatherResults(
                [fragment(part) for part in redrawn.values()], consumeErrors=True
            ).addCallback(done)

        def rendered() -> Deferred[bytes]:
            changed = coverage.changed_since_stamp(since)
            answer: dict[str, Any] = {
                "version": coverage.stamp(),
                "reset": changed is None,
                "rows": [row.to_json() for row in (coverage.rows() if changed is None else changed)],
            }
            head = json.dumps(answer, separators=(",", ":")).encode()

            def whole(named: bytes) -> bytes:
                return head[:-1] + b',"parts":' + named + b"}"

            return self._remembered.get(shot, coverage.version, drawn).addCallback(whole)

        return self.send(request, rendered, b"application/json")


@attr.s(eq=False)
class Login(Rendered):
    """
    C{/login}: a form asking for the control token; a right one sets the
    session cookie and goes back to the page.
    """

    isLeaf = True
    token: str = attr.ib(repr=False)

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render_GET(self, request: Request) -> int:
        """
        @return: The form.
        """
        return self.send(request, lambda: render(login_form("")), b"text/html; charset=utf-8")

    def render_POST(self, request: Request) -> int | bytes:
        """
        Check the token given; set the cookie if it is right.
        """
        given = ((request.args or {}).get(b"token") or [b""])[0].strip()
        if not hmac.compare_digest(given, self.token.encode()):
            request.setResponseCode(401)
            form = login_form("That is not the control token.")
            return self.send(request, lambda: render(form), b"text/html; charset=utf-8")
        # Secure over TLS only: a browser never sends back a Secure cookie
        # it got over plain HTTP (a listener systemd hands over may be one).
        request.addCookie(
            COOKIE,
            session(self.token),
            path=b"/",
            httpOnly=True,
            secure=request.isSecure(),
            sameSite="strict",
        )
        request.redirect(b"./")
        return b""


def login_form(problem: str) -> Tag:
    """
    @return: The login page, saying C{problem} if there is one.
    """
    return tags.html(lang="en")(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.title("harbour: log in"),
            tags.link(rel="stylesheet", href="assets/page.css"),
        ),
        tags.body(
            Tag("main")(
                tags.section(
                    tags.h2("harbour status"),
                    tags.p("Paste the control token (the daemon's token file, as harbourctl uses)."),
                    tags.p(problem, class_="problems") if problem else "",
                    tags.form(method="post", action="login")(
                        tags.input(
                            type="password", name="token", autocomplete="current-password", required=""
                        ),
                        " ",
                        tags.button("Log in", type="submit"),
                    ),
                )
            )
        ),
    )


@attr.s(eq=False)
class Guarded(Rendered):
    """
    Lets a request through to C{resource} only with the token (as a bearer
    header, or the login form's cookie); sends others to the login form.
    """

    resource: IResource = attr.ib()
    token: str = attr.ib(repr=False)

    isLeaf = True

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def allowed(self, request: Request) -> bool:
        """
        @return: Whether C{request} carries the token or its session.
        """
        header = request.getHeader(b"authorization") or b""
        if header.lower().startswith(b"bearer ") and hmac.compare_digest(
            header[7:].strip(), self.token.encode()
        ):
            return True
        cookie = request.getCookie(COOKIE) or b""
        return hmac.compare_digest(cookie, session(self.token))

    def render(self, request: Request) -> int | bytes:
        """
        Render C{resource}, or the way to the login form.
        """
        if self.allowed(request):
            return headless(request, self.resource.render(request))
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Bearer realm="harbour"')
        return self.send(request, lambda: render(login_form("")), b"text/html; charset=utf-8")


def local_name(host: str) -> bool:
    """
    @param host: A request's host name, as its C{Host} header gives it.
    @return: Whether a browser reaches C{host} only on this machine, or
        only by its address: C{localhost}, a name under C{.localhost}, or
        an IP address.  Any other name may be one a web site rebinds to
        this machine's loopback address after its page has loaded.
    """
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


@attr.s(eq=False)
class LocalOnly(Resource):
    """
    Lets a request through to C{resource} only if its C{Host} is a local
    name or an address (L{local_name}): on a loopback listener, where the
    page needs no token, a web site the operator visits could otherwise
    rebind its own name to loopback and read the page through the
    operator's browser.
    """

    resource: IResource = attr.ib()

    isLeaf = True

    def __attrs_post_init__(self) -> None:
        Resource.__init__(self)

    def render(self, request: Request) -> int | bytes:
        """
        Render C{resource}, or answer 421 naming the hosts answered to.  A
        request without C{Host} (HTTP/1.0, or a client of its own) names
        nothing a web site could have rebound, and a browser always sends
        one: it is answered.  (Twisted would take the listener's address
        for a missing C{Host}, and a UNIX socket's has no host.)
        """
        if request.getHeader(b"host") is None:
            return headless(request, self.resource.render(request))
        host = request.getRequestHostname().decode("ascii", "replace")
        if local_name(host):
            return headless(request, self.resource.render(request))
        answer = _text(
            request,
            421,
            f"this page answers to localhost or an IP address, not to {host[:100]!r}"
            " (a proxy in front of it must pass one of those as Host)",
            # Twisted knows no phrase for 421: it would say Unknown Status.
            b"Misdirected Request",
        )
        return headless(request, answer)


class QuickGzip(GzipEncoderFactory):
    """
    gzip at level 6, for C{/metrics}: compressed anew for every scrape, the
    4.4 MB of 2,000 reports take 14 ms of the reactor (0.20 MB) where
    Twisted's level 9 takes 76 ms (0.19 MB).
    """

    compressLevel = 6


def site_root(monitor: Monitor, registry: CollectorRegistry, token: str | None) -> Resource:
    """
    @param token: The token the page needs, or L{None} on a loopback
        listener, where it needs none but answers only to local names.
    @return: The resource tree.
    """

    def guard(resource: Resource) -> IResource:
        guarded = LocalOnly(resource) if token is None else Guarded(resource, token)
        # Outermost: Twisted compresses only an answer whose resource, as
        # the tree gives it for the URL, is the encoding wrapper itself.
        return EncodingResourceWrapper(guarded, [GzipEncoderFactory()])

    root = Folder()
    root.putChild(b"", guard(StatusPage(monitor)))
    root.putChild(b"live", guard(Live(monitor)))
    # Prometheus asks for gzip: its answer is a twentieth of the text.
    metrics = Metrics(registry, lambda: monitor.current)
    root.putChild(b"metrics", EncodingResourceWrapper(metrics, [QuickGzip()]))
    root.putChild(b"healthz", Healthz())
    root.putChild(b"favicon.ico", NoIcon())
    root.putChild(b"readyz", Readyz(monitor))
    assets = Folder()
    assets.putChild(b"page.css", Asset(STYLE.encode(), b"text/css; charset=utf-8"))
    assets.putChild(b"page.js", Asset(SCRIPT.encode(), b"text/javascript; charset=utf-8"))
    root.putChild(b"assets", assets)
    if token is not None:
        root.putChild(b"login", Login(token))
    return root
