"""
The names of harbour's Redis keys: every key of one harbour carries one hash
tag, so that all of them live in one Redis Cluster slot and every script may
touch any of them.

C{--prefix harbour} makes the prefix C{{harbour}:}, so a task is
C{{harbour}:t:<id>}.  A prefix that already holds a hash tag (C{{h}:x}) is
taken as it is, with a C{:} added.  Before hash tags, the prefix was
C{harbour:}; L{harbour.store.migrate} renames such keys once.
"""

from __future__ import annotations

import re

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
)

#: Keys of a harbour before hash tags, after its prefix, other than those in
#: L{FIXED_KEYS}: exact names, then name prefixes (a task, a state listing,
#: a report's counts, a host's politeness slot).
LEGACY_NAMES = (*FIXED_KEYS, "pub", "pub:days")
LEGACY_PREFIXES = ("t:", "s:", "c:", "pc:", "slot:")

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


def is_legacy_key(suffix: str) -> bool:
    """
    @param suffix: A key found under the legacy prefix, without it.
    @return: Whether harbour wrote it (and so moves it under the tag).
    """
    return suffix in LEGACY_NAMES or suffix.startswith(LEGACY_PREFIXES)
