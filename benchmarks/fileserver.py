"""
A plain file server for throughput benchmarks: every GET, whatever its path
and query, gets the same zip of C{--size} bytes, streamed from disk.

    python -m benchmarks.fileserver --size 100000

prints C{serving http://127.0.0.1:PORT/} once it listens.
"""

import argparse
import os
import tempfile
import zipfile

from twisted.internet import reactor
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File

from benchmarks import port_number


def make_zip(path: str, size: int) -> None:
    """
    Write a valid zip of about C{size} bytes (one stored member of random
    bytes, so it does not compress).
    """
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open("data.csv", "w", force_zip64=size > 2**31) as member,
    ):
        remaining = max(0, size - 200)
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            member.write(chunk)
            remaining -= len(chunk)


class Everything(Resource):
    """
    Answers every path with the same file.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = File(path, defaultType="application/zip")

    def getChild(self, name: bytes, request: Request) -> IResource:
        return self

    def render_GET(self, request: Request) -> bytes | int:
        return self.file.render_GET(request)


class QuietSite(Site):
    """
    A site that does nothing for a request but answer it: no log line.
    """

    def log(self, request: http.Request) -> None:
        pass


def clean_up(path: str, directory: str) -> None:
    """
    Remove the answer served and its directory.
    """
    os.unlink(path)
    os.rmdir(directory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, required=True)
    arguments = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="hb-files-")
    path = os.path.join(directory, "answer.zip")
    make_zip(path, arguments.size)
    site = QuietSite(Everything(path))
    # Twisted names listenTCP's factory ServerFactory[_ProtoWithFactory], a
    # type variable held invariant, which no Site (a
    # ServerFactory[_GenericHTTPChannelProtocol]) matches.
    port = reactor.listenTCP(0, site, backlog=256, interface="127.0.0.1")  # type: ignore[arg-type]
    print(f"serving http://127.0.0.1:{port_number(port)}/", flush=True)
    reactor.addSystemEventTrigger("after", "shutdown", clean_up, path, directory)
    reactor.run()


if __name__ == "__main__":
    main()
