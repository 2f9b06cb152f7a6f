"""
The AMP commands of harbour's control port (SPEC section 5).

The daemon's listener (L{harbour.amp.server}) and every client
(L{harbour.amp.client}, C{harbourctl}) import these same classes.  JSON documents
travel as C{Unicode} JSON text; no value may exceed 65,535 bytes, so large
answers page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from twisted.protocols import amp

from harbour.errors import BadRequest, PayloadTooLarge, StoreUnavailable, Unauthorized

#: Error codes shared by every command; order matters, subclasses first.
ERRORS: dict[type[Exception], bytes] = {
    Unauthorized: b"UNAUTHORIZED",
    PayloadTooLarge: b"PAYLOAD_TOO_LARGE",
    BadRequest: b"BAD_REQUEST",
    StoreUnavailable: b"STORE_UNAVAILABLE",
}


class HarbourCommand(amp.Command):
    """
    Base of harbour's commands: they share one error vocabulary.
    """

    errors = ERRORS


class Authenticate(HarbourCommand):
    """
    Present the shared token; must be the first command of a connection.
    """

    arguments = [(b"token", amp.Unicode())]
    response = []


class Subscribe(HarbourCommand):
    """
    Receive an L{Event} for each event on C{topic} (exact, or a prefix
    ending in C{*}); retained values are sent at once.
    """

    arguments = [(b"topic", amp.Unicode())]
    response = []


class Unsubscribe(HarbourCommand):
    """
    Stop the events of an earlier L{Subscribe} with the same C{topic}.
    """

    arguments = [(b"topic", amp.Unicode())]
    response = []


class Publish(HarbourCommand):
    """
    Publish a JSON C{payload} on C{topic}; C{retain} keeps it as the
    topic's current value for later subscribers.
    """

    arguments = [
        (b"topic", amp.Unicode()),
        (b"payload", amp.Unicode()),
        (b"retain", amp.Boolean(optional=True)),
    ]
    response = [(b"delivered", amp.Integer())]


class Event(HarbourCommand):
    """
    Server to client: one event on a subscribed topic.
    """

    arguments = [(b"topic", amp.Unicode()), (b"payload", amp.Unicode())]
    requiresAnswer = False


class Status(HarbourCommand):
    """
    The daemon's state as one JSON document.
    """

    arguments = []
    response = [(b"status", amp.Unicode())]


class Reload(HarbourCommand):
    """
    Read the configuration directory again now.

    C{topics} lists the topics republished; C{errors} the problems found
    (a configuration with errors changes nothing).
    """

    arguments = []
    response = [(b"topics", amp.Unicode()), (b"errors", amp.Unicode())]


class Refresh(HarbourCommand):
    """
    Create the tasks of every request the store lacks, now.
    """

    arguments = []
    response = [(b"created", amp.Integer())]


class Pause(HarbourCommand):
    """
    Pause one service (C{download}: claim nothing new; C{work}: refresh
    nothing), or every pausable service if C{service} is not given.
    """

    arguments = [(b"service", amp.Unicode(optional=True))]
    response = [(b"services", amp.Unicode())]


class Resume(Pause):
    """
    Resume what L{Pause} paused.
    """


class ListTasks(HarbourCommand):
    """
    A page of the tasks in C{state} (of C{report}, if given), newest window
    first: C{tasks} is a JSON list, C{total} counts them all.
    """

    arguments = [
        (b"state", amp.Unicode()),
        (b"report", amp.Unicode(optional=True)),
        (b"offset", amp.Integer()),
        (b"limit", amp.Integer()),
    ]
    response = [(b"tasks", amp.Unicode()), (b"total", amp.Integer())]


class Retry(HarbourCommand):
    """
    Put the tasks in C{state} (default C{failed}) of C{report} (or of all
    reports) back to C{pending}, with no attempts used.
    """

    arguments = [(b"state", amp.Unicode(optional=True)), (b"report", amp.Unicode(optional=True))]
    response = [(b"count", amp.Integer())]


#: The most entries one page of a listing may ask for.
MAX_PAGE = 500


class Reports(HarbourCommand):
    """
    One page of the manifest: C{urls} is a JSON list of C{{url, filename,
    report, window_start, window_end}}; C{total} counts every request.  A
    page stops early rather than exceed one AMP value: continue from
    C{offset} plus the number received.
    """

    arguments = [(b"offset", amp.Integer()), (b"limit", amp.Integer())]
    response = [(b"urls", amp.Unicode()), (b"total", amp.Integer())]


def json_page(items: Iterable[object], limit_bytes: int = 0xFFFF) -> tuple[str, int]:
    """
    Encode as many of C{items} (JSON-able values) as fit in one AMP value.

    @return: The JSON list text and how many items it holds.
    """
    parts: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item, separators=(",", ":"), sort_keys=True)
        size += len(text.encode("utf-8")) + 1
        if size > limit_bytes:
            break
        parts.append(text)
    return "[" + ",".join(parts) + "]", len(parts)


def encode_event(topic: str, payload_text: str) -> bytes:
    """
    Serialise an L{Event} box once, so that fanning one event out to many
    connections costs one encoding.
    """
    box = amp.AmpBox(
        {b"_command": b"Event", b"topic": topic.encode("utf-8"), b"payload": payload_text.encode("utf-8")}
    )
    return box.serialize()
