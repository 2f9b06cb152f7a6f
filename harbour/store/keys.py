"""
The names of harbour's Redis keys: every key of one harbour carries one hash
tag, so that all of them live in one Redis Cluster slot and every script may
touch any of them.

C{--prefix harbour} makes the prefix C{{harbour}:}, so a task is
C{{harbour}:t:<id>}.  A prefix that already holds a hash tag (C{{h}:x}) is
taken as it is, with a C{:} added.  Before hash tags, the prefix was
C{harbour:}; L{harbour.store.migrate} renames such keys once
(L{legacy_key_type} tells them from another harbour's).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from types import MappingProxyType

#: The store's fixed keys, after the prefix, in the order every task script
#: receives them as C{KEYS} (see C{lua/move.lua}).
FIXED_KEYS = (
    "ids",
    "ready",
    "delayed",
    "leases",
    "reports",
    "revisions",
    "revise:due",
    "retired",
    "parse:queue",
    "parse:leases",
    "retired:tables",
)

#: The task states an older harbour listed its tasks by (C{s:<state>}).
LEGACY_STATES = frozenset(("pending", "downloading", "downloaded", "empty", "failed", "retired"))

#: Keys of a harbour before hash tags, after its prefix, whose name is
#: fixed, by the Redis type each had.  (The parse queue's keys came with
#: hash tags; they are moved too, should a store have written them under
#: the old prefix, as its tasks' hashes carry their parse states.)
LEGACY_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "ids": "set",
        "ready": "zset",
        "delayed": "zset",
        "leases": "zset",
        "reports": "set",
        "revisions": "hash",
        "revise:due": "hash",
        "retired": "zset",
        "pub": "hash",
        "pub:days": "hash",
        "parse:queue": "zset",
        "parse:leases": "zset",
    }
)

#: A task's hash: C{t:} and the 20 hex digits of its id.
_LEGACY_TASK = re.compile(r"t:[0-9a-f]{20}")

#: A politeness slot: C{slot:} and the host part of an OASIS URL, a name or
#: address with an optional port.
_LEGACY_SLOT = re.compile(r"slot:(\[[0-9A-Fa-f:.]+\]|[^:\[\]@/]+)(:[0-9]{1,5})?")

_HASH_TAG = re.compile(r"\{[^{}]+\}")


def tagged_prefix(name: str) -> str:
    """
    @param name: A C{--prefix} value, such as C{harbour}.
    @return: The prefix of every key of that harbour, with one hash tag:
        C{{harbour}:}; C{name} (with a C{:} added) if it has a tag already.
    @raise ValueError: for an empty name, or one with unbalanced braces.
    """
    base = name[:-1] if name.endswith(":") else name
    if not base:
        raise ValueError("the key prefix must not be empty")
    if _HASH_TAG.search(base):
        return base + ":"
    if "{" in base or "}" in base:
        raise ValueError(f"the key prefix {name!r} has a brace but no hash tag: use {{name}} or no braces")
    return "{" + base + "}:"


def legacy_prefix(name: str) -> str:
    """
    @return: The prefix of C{name}'s keys before hash tags: C{harbour:}.
    """
    return name if name.endswith(":") else name + ":"


def legacy_key_type(suffix: str, reports: Collection[str]) -> str | None:
    """
    Tell an older harbour's key from another's: a second harbour whose
    prefix begins with this one's (C{harbour:s} beside C{harbour}) has keys
    under this one's old prefix too (C{harbour:s:ids}), so only the exact
    shapes this harbour wrote are taken.

    @param suffix: A key found under the legacy prefix, without it.
    @param reports: The reports of the older store (its C{reports} set):
        the only names its per-report keys carry.
    @return: The Redis type harbour gave the key (C{"hash"}, C{"zset"}...)
        if it has the name of one harbour wrote, else L{None}.
    """
    if suffix in LEGACY_NAMES:
        return LEGACY_NAMES[suffix]
    if _LEGACY_TASK.fullmatch(suffix):
        return "hash"
    if _LEGACY_SLOT.fullmatch(suffix):
        return "string"
    family, colon, rest = suffix.partition(":")
    if family in ("c", "pc") and rest in reports:
        return "hash"
    if family == "s":
        state, colon, report = rest.partition(":")
        if state in LEGACY_STATES and (not colon or report in reports):
            return "zset"
    return None
