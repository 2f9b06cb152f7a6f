"""
The AMP commands of harbour's control port (SPEC section 5).

The daemon's listener (L{harbour.amp.server}) and every client
(L{harbour.amp.client}, C{harbourctl}) import these same classes.  JSON documents
travel as C{Unicode} JSON text; no value may exceed 65,535 bytes, so large
answers page (C{ListTasks}, C{Reports}) or are split over several values
(L{SplitUnicode}: C{Status}, C{Reload}).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.protocols import amp

from harbour.errors import BadRequest, PayloadTooLarge, StoreUnavailable, Unauthorized

#: Error codes shared by every command; order matters, subclasses first.
ERRORS: dict[type[Exception], bytes] = {
    Unauthorized: b"UNAUTHORIZED",
    PayloadTooLarge: b"PAYLOAD_TOO_LARGE",
    BadRequest: b"BAD_REQUEST",
    StoreUnavailable: b"STORE_UNAVAILABLE",
}


class SplitUnicode(amp.Argument):
    """
    Text of any length, in as many AMP values as it needs: the first under
    the argument's own name, the next under C{<name>.1}, C{<name>.2}, ...,
    each at most 65,535 bytes of UTF-8, joined again on arrival.

    Text that fits in one value travels exactly as L{amp.Unicode} would,
    so a peer that knows the argument as C{Unicode} reads it as long as it
    fits.  Only for answers: nothing a client sends should be unbounded.
    """

    def toBox(self, name: bytes, strings: amp.AmpBox, objects: dict[str, Any], proto: object) -> None:
        """
        Put the text of C{objects} in C{strings}, split into values.
        """
        data = objects.pop(_identifier(name)).encode("utf-8")
        step = amp.MAX_VALUE_LENGTH
        for part, start in enumerate(range(0, max(len(data), 1), step)):
            strings[_part_key(name, part)] = data[start : start + step]

    def fromBox(self, name: bytes, strings: amp.AmpBox, objects: dict[str, Any], proto: object) -> None:
        """
        Join the values of C{strings} back into the text, into C{objects}.
        """
        parts = [strings.pop(name)]
        while (key := _part_key(name, len(parts))) in strings:
            parts.append(strings.pop(key))
        objects[_identifier(name)] = b"".join(parts).decode("utf-8")


def _identifier(name: bytes) -> str:
    # As AMP names the Python keyword argument of a wire name.
    return name.decode("ascii").replace("-", "_")


def _part_key(name: bytes, part: int) -> bytes:
    return name if part == 0 else name + b".%d" % (part,)


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

    With C{tag}, those retained values are sent in L{Event}s carrying the
    same C{tag}, and the later events without: a client that fans one
    connection out to several local subscribers hands them to the
    subscriber that asked, and not again to those that have them already.
    """

    arguments = [(b"topic", amp.Unicode()), (b"tag", amp.Integer(optional=True))]
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
    topic's current value for later subscribers.  What clients keep
    retained is bounded (L{harbour.bus.RETAINED_TOPIC_LIMIT} topics,
    L{harbour.bus.RETAINED_BYTES_LIMIT} bytes of text): a retained value
    past either gets C{BAD_REQUEST}.  A retained C{null} payload clears the
    topic's retained value (and is delivered, not kept), unless the topic
    is the daemon's, which gets C{BAD_REQUEST}.
    """

    arguments = [
        (b"topic", amp.Unicode()),
        (b"payload", amp.Unicode()),
        (b"retain", amp.Boolean(optional=True)),
    ]
    response = [(b"delivered", amp.Integer())]


#: The topic of the last L{Event} the daemon sends a connection it drops
#: for not reading its events: C{{"reason": ...}}, whatever the
#: connection subscribed to, so that its client can tell that end from
#: the daemon stopping (and know it missed events).  No client may
#: publish on it.
DROPPED = "subscriber.dropped"


class Event(HarbourCommand):
    """
    Server to client: one event on a subscribed topic; C{tag} is that of
    the L{Subscribe} it answers as a retained value, if it had one.  The
    last a dropped connection is sent is on L{DROPPED}.
    """

    arguments = [(b"topic", amp.Unicode()), (b"payload", amp.Unicode()), (b"tag", amp.Integer(optional=True))]
    requiresAnswer = False


class Status(HarbourCommand):
    """
    The daemon's state as one JSON document, split over as many values as
    it needs (it grows with the reports).
    """

    arguments = []
    response = [(b"status", SplitUnicode())]


class Reload(HarbourCommand):
    """
    Read the configuration directory again now.

    C{topics} lists the topics republished; C{errors} the problems found
    (a configuration with errors changes nothing; a topic that could not be
    published is one too).  Both are JSON lists, split over as many values
    as they need.
    """

    arguments = []
    response = [(b"topics", SplitUnicode()), (b"errors", SplitUnicode())]


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


class Reparse(HarbourCommand):
    """
    Parse every downloaded file of C{report} (or of all reports) into its
    tables again; C{count} is how many files were queued.
    """

    arguments = [(b"report", amp.Unicode(optional=True))]
    response = [(b"count", amp.Integer())]


#: The most entries one page of a listing may ask for.
MAX_PAGE = 500


class Reports(HarbourCommand):
    """
    One page of the manifest: C{urls} is a JSON list of C{{url, filename,
    report, window_start, window_end}}; C{total} counts every request.  A
    page stops early rather than exceed one AMP value: continue from
    C{offset} plus the number received (L{harbour.amp.client.all_requests}
    does).  A request too large for a value on its own is refused with
    C{PAYLOAD_TOO_LARGE} rather than answered as an empty page.
    """

    arguments = [(b"offset", amp.Integer()), (b"limit", amp.Integer())]
    response = [(b"urls", amp.Unicode()), (b"total", amp.Integer())]


def json_page(items: Iterable[object], limit_bytes: int = amp.MAX_VALUE_LENGTH) -> tuple[str, int]:
    """
    Encode as many of C{items} (JSON-able values) as fit in one AMP value.

    @return: The JSON list text and how many items it holds.
    @raise PayloadTooLarge: if there are items and the first alone does
        not fit: a page of none would leave a client paging forever.
    """
    parts: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item, separators=(",", ":"), sort_keys=True)
        # The comma before every item but the first.
        size += len(text.encode("utf-8")) + (1 if parts else 0)
        if size > limit_bytes:
            if not parts:
                raise PayloadTooLarge(
                    f"one entry alone is {size:,} bytes; one AMP value holds {limit_bytes:,}"
                )
            break
        parts.append(text)
    return "[" + ",".join(parts) + "]", len(parts)


def encode_event(topic: str, payload_text: str, tag: int | None = None) -> bytes:
    """
    Serialise an L{Event} box once, so that fanning one event out to many
    connections costs one encoding.
    """
    box = amp.AmpBox(
        {b"_command": b"Event", b"topic": topic.encode("utf-8"), b"payload": payload_text.encode("utf-8")}
    )
    if tag is not None:
        box[b"tag"] = b"%d" % (tag,)
    return box.serialize()
