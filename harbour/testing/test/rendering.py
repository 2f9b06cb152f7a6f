"""
Fetch from a simulator without a network: its resource renders a request
in memory, synchronously when no fault or latency delays the answer.
"""

from __future__ import annotations

import io
import zipfile
from urllib.parse import parse_qsl

from twisted.web.resource import IResource, getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest


class _Request(DummyRequest):
    """
    A request in memory, with the path the simulator's endpoints read.
    """

    def __init__(self, path: str) -> None:
        super().__init__([segment.encode() for segment in path.strip("/").split("/")])
        self.path = path.encode()


def render(root: IResource, path: str) -> tuple[int, bytes]:
    """
    @param root: The simulator (its C{/oasisapi} tree).
    @param path: Such as C{"/oasisapi/SingleZip?queryname=PRC_LMP&..."}.
    @return: The HTTP status and body of the answer.
    @raise AssertionError: If the answer is not sent at once.
    """
    where, _, query = path.partition("?")
    request = _Request(where)
    for key, value in parse_qsl(query, keep_blank_values=True):
        request.addArg(key.encode(), value.encode())
    body = getChildForRequest(root, request).render(request)
    assert body is not NOT_DONE_YET and isinstance(body, bytes), f"{path} was not answered at once"
    return request.responseCode or 200, body


def members(answer: bytes) -> dict[str, bytes]:
    """
    @return: The members of a zip answer, by name.
    """
    with zipfile.ZipFile(io.BytesIO(answer)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
