"""
Where Redis is: the C{--redis} URL parsed into a L{RedisAddress}, which
says how to reach the server (TCP, TLS, a unix socket, or the Sentinels of
a service), how to log in to it and how to trust it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, unquote, urlsplit

import attr
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL.crypto import FILETYPE_ASN1
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IReactorTime, IStreamClientEndpoint
from twisted.internet.ssl import (
    Certificate,
    PrivateCertificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)

from harbour.errors import ConfigurationError
from harbour.store.sentinel import SentinelEndpoint

#: The URL forms C{--redis} accepts, for error messages.
URL_FORMS = (
    "redis://host:port/db, rediss://host:port/db?ca=CA.pem[&cert=CERT.pem&key=KEY.pem] (TLS) "
    "unix:///path.sock?db=N or redis+sentinel://host:port[,host:port...]/service/db (Sentinel), "
    "with [user]:password@ after the // to log in"
)

#: Where a Sentinel listens unless its URL says otherwise.
SENTINEL_PORT = 26379


def _mask(password: str | None) -> str:
    # A password is never shown, not even in reprs: they end up in logged
    # tracebacks.
    return "None" if password is None else "'***'"


def _bracketed(host: str | None) -> str | None:
    """
    @return: C{host} as a URL writes it: an IPv6 literal in brackets, so
        that its colons are not taken for the port's.
    """
    if host is not None and ":" in host:
        return f"[{host}]"
    return host


@attr.s(frozen=True, auto_attribs=True)
class RedisAddress:
    """
    Where a Redis server listens (a TCP host and port, or a unix socket),
    and how to log in to it and trust it.

    @ivar username: The Redis 6 ACL user to C{AUTH} as, or L{None} for the
        C{default} user.
    @ivar password: The password to C{AUTH} with, or L{None} to send no
        C{AUTH}.  It never appears in L{str} or L{repr}.
    @ivar tls: Whether to speak TLS (C{rediss://}); the server is verified
        against the certificates in the C{ca} file.
    @ivar ca: A PEM file of the certificates trusted to sign the server's.
    @ivar cert: A PEM file of the client certificate, if the server asks
        for one (its key too, unless C{key} names another file).
    @ivar key: A PEM file of the client certificate's private key.
    @ivar sentinels: The C{(host, port)} of the Sentinels to ask, in turn,
        where the master of C{service} is (C{redis+sentinel://}); C{host}
        and C{port} are then unused.
    @ivar service: The name of the master the Sentinels monitor, or L{None}
        for a fixed address.
    """

    host: str | None = None
    port: int | None = None
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = attr.ib(default=None, repr=_mask)
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """
        Parse C{redis://[[user]:password@]host:port/db}, the same with
        C{rediss://} and C{?ca=CA.pem[&cert=CERT.pem&key=KEY.pem]} for TLS,
        C{unix://[[user]:password@]/path.sock?db=N}, or
        C{redis+sentinel://[[user]:password@]host:port[,host:port...]/service/db}
        (the user and password are the master's; the Sentinels are asked
        without).  The user and password are percent-decoded.

        @raise ConfigurationError: for anything else, without the password.
        """
        try:
            # urlsplit refuses some malformed URLs itself ("redis://[::1").
            parts = urlsplit(url)
            query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
            # An empty password ("redis://user:@host") is no password.
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
            if parts.scheme in ("redis", "rediss"):
                db = int(parts.path.strip("/") or 0)
                if db < 0:
                    raise ValueError(db)
                tls = parts.scheme == "rediss"
                if tls and not query.get("ca"):
                    raise ConfigurationError(
                        "a rediss:// URL needs ?ca=FILE, the certificates that may sign the server's: "
                        "harbour does not connect over TLS to a server it cannot verify"
                    )
                if not tls and query.keys() & {"ca", "cert", "key"}:
                    raise ConfigurationError("ca, cert and key are for rediss:// (TLS) URLs only")
                if query.get("key") and not query.get("cert"):
                    raise ConfigurationError("a rediss:// URL with key= also needs cert=")
                if not parts.hostname:
                    # "redis://:6379" (a host variable left empty) would
                    # otherwise reach whatever listens on this host.
                    raise ConfigurationError(f"Redis URL {cls._masked(url)!r} names no host")
                return cls(
                    host=parts.hostname,
                    port=parts.port or 6379,
                    db=db,
                    tls=tls,
                    ca=query.get("ca"),
                    cert=query.get("cert"),
                    key=query.get("key"),
                    username=username,
                    password=password,
                )
            if parts.scheme == "redis+sentinel":
                return cls._parse_sentinel(parts.netloc, parts.path, username, password)
            if parts.scheme == "unix" and parts.path:
                db = int(query.get("db", "0"))
                return cls(path=parts.path, db=db, username=username, password=password)
        except ValueError:
            pass
        raise ConfigurationError(f"bad Redis URL {cls._masked(url)!r}: use {URL_FORMS}")

    @classmethod
    def _parse_sentinel(
        cls, netloc: str, path: str, username: str | None, password: str | None
    ) -> RedisAddress:
        """
        Parse the part of a C{redis+sentinel://} URL after the scheme.

        @raise ValueError: if it is malformed.
        """
        # urlsplit cannot take several host:port pairs apart (its .port
        # raises on "h1:1,h2:2"): split them here.
        sentinels = []
        for item in netloc.rpartition("@")[2].split(","):
            if item.startswith("["):
                # An IPv6 literal, "[::1]:26379" or "[::1]": its own colons
                # are no port's, and its brackets are no part of the host.
                host, bracket, rest = item[1:].partition("]")
                if not bracket or rest[:1] not in ("", ":"):
                    raise ValueError(item)
                port = rest[1:] or str(SENTINEL_PORT)
            else:
                host, colon, port = item.rpartition(":")
                if not colon:
                    host, port = item, str(SENTINEL_PORT)
            if not host or not 0 < int(port) < 65536:
                raise ValueError(item)
            sentinels.append((host, int(port)))
        service, slash, db = path.strip("/").partition("/")
        if not service or "/" in db:
            raise ValueError(path)
        return cls(
            db=int(db or 0),
            username=username,
            password=password,
            sentinels=tuple(sentinels),
            service=unquote(service),
        )

    @staticmethod
    def _masked(url: str) -> str:
        """
        @return: C{url} with any password in it replaced by C{***}, to
            quote it in an error.
        """
        # Greedy up to the last "@": a password that should have been
        # percent-encoded may hold "/", ":", "?" or "@"; masking too much
        # is harmless.
        return re.sub(r"^([^:/]*://[^:/@]*:).*@", r"\1***@", url, flags=re.DOTALL)

    def with_password(self, password: str | None) -> RedisAddress:
        """
        @return: This address with C{password}, unless it has one already:
            a password in the URL wins over one from elsewhere.
        """
        if self.password is not None or password is None:
            return self
        return attr.evolve(self, password=password)

    def refused_login(self, message: str) -> Exception:
        """
        Explain why Redis here refused, for good, to let the store's first
        connections in (see L{harbour.store.wire.refused_for_good}).

        @param message: The pool's error: C{"Redis error: could not auth:
            <reply>"} when C{AUTH} failed, C{"... could not set dbid=N:
            <reply>"} when C{SELECT} did (C{NOAUTH} there: a password is
            needed), C{<reply>} being C{Lost connection} if a TLS handshake
            failed.  Replies never quote the password.

        @return: A L{ConfigurationError} saying so, or a L{ValueError}
            with C{message} for anything else.
        """
        reply = message.split(": ", 2)[-1]
        if reply == "Lost connection":
            # Not an answer: the connection closed before AUTH or SELECT was
            # answered (over TLS, most likely a failed verification).
            hint = " (is its certificate signed by one in the ca file?)" if self.tls else ""
            return ConfigurationError(f"Redis at {self} closed the connection as harbour logged in{hint}")
        if "could not auth" in message:
            user = self.username or "default"
            return ConfigurationError(f"Redis at {self} refused the password for user {user}: {reply}")
        if "NOAUTH" in message:
            return ConfigurationError(
                f"Redis at {self} requires a password: put it in the URL, "
                f"--redis-password-file or HARBOUR_REDIS_PASSWORD ({reply})"
            )
        if "could not set dbid" in message:
            return ConfigurationError(f"Redis at {self} refused database {self.db}: {reply}")
        return ValueError(message)

    def client_tls(self) -> IOpenSSLClientConnectionCreator:
        """
        @return: The TLS options of a C{rediss://} address: the server's
            certificate must be signed by one in the C{ca} file and name
            the host, and the client certificate is presented if any.

        @raise ConfigurationError: if a file cannot be read or holds no
            certificate (or key).
        """
        if not self.ca:
            raise ConfigurationError("a rediss:// URL needs ?ca=FILE: no TLS without trust roots")
        host = self.host or "127.0.0.1"
        try:
            with open(self.ca, "rb") as f:
                roots = [
                    Certificate.load(c.public_bytes(Encoding.DER), FILETYPE_ASN1)
                    for c in x509.load_pem_x509_certificates(f.read())
                ]
            client = None
            if self.cert:
                with open(self.cert, "rb") as f:
                    pem = f.read()
                if self.key:
                    with open(self.key, "rb") as f:
                        pem += b"\n" + f.read()
                client = PrivateCertificate.loadPEM(pem)
        except (OSError, ValueError, SSL.Error) as e:
            raise ConfigurationError(f"cannot load the TLS files of Redis at {self}: {e}") from None
        return optionsForClientTLS(host, trustRoot=trustRootFromCertificates(roots), clientCertificate=client)

    def endpoint(self, reactor: IReactorTime, timeout: float) -> IStreamClientEndpoint:
        """
        @param reactor: Also an L{twisted.internet.interfaces.IReactorTCP}
            or L{twisted.internet.interfaces.IReactorUNIX}, as this address
            needs.

        @return: A client endpoint reaching this address, through TLS for
            C{rediss://}.
        """
        if self.path is not None:
            return UNIXClientEndpoint(reactor, self.path, timeout=timeout)
        if self.service is not None:
            return SentinelEndpoint(reactor, self, timeout)
        if self.host is None or self.port is None:
            raise ConfigurationError("a Redis address needs a host and port, or a path")
        tcp = TCP4ClientEndpoint(reactor, self.host, self.port, timeout=timeout)
        if self.tls:
            return wrapClientTLS(self.client_tls(), tcp)
        return tcp

    def __str__(self) -> str:
        login = ""
        if self.password is not None:
            login = f"{quote(self.username or '', safe='')}:***@"
        elif self.username is not None:
            login = f"{quote(self.username, safe='')}@"
        if self.path is not None:
            return f"unix://{login}{self.path}?db={self.db}"
        if self.service is not None:
            hosts = ",".join(f"{_bracketed(host)}:{port}" for host, port in self.sentinels)
            return f"redis+sentinel://{login}{hosts}/{quote(self.service, safe='')}/{self.db}"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{login}{_bracketed(self.host)}:{self.port}/{self.db}"
