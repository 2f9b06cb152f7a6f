"""
A plain file server for throughput benchmarks: every GET, whatever its path
and query, gets the same zip of C{--size} bytes, streamed from disk.

    python -m benchmarks.fileserver --size 100000

prints C{serving http://127.0.0.1:PORT/} once it listens.
"""

import argparse
import os
import sys
import tempfile
import zipfile

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File


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

    def getChild(self, name, request):
        return self

    def render_GET(self, request):
        return self.file.render_GET(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, required=True)
    arguments = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="hb-files-")
    path = os.path.join(directory, "answer.zip")
    make_zip(path, arguments.size)
    site = Site(Everything(path))
    site.log = lambda request: None
    port = reactor.listenTCP(0, site, backlog=256, interface="127.0.0.1")
    print(f"serving http://127.0.0.1:{port.getHost().port}/", flush=True)
    reactor.addSystemEventTrigger("after", "shutdown", lambda: (os.unlink(path), os.rmdir(directory)))
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
