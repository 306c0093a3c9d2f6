"""Entry points of one group, read from ``sys.path`` without importing ``importlib.metadata``.

Why: every drill process looks up the ``drillbook.backends`` group once, and
``importlib.metadata`` imports email, csv, zipfile, calendar and more to answer it: about 10 ms of
a trivial drill warm, 35 ms cold, for modules nothing else on the run path needs (issue 9).

The answer must stay ``importlib.metadata``'s, so this reader covers only the case it can copy
exactly (``importlib/metadata/__init__.py`` of CPython 3.11, whose rules 3.12 and 3.13 keep; any
other interpreter asks importlib.metadata): the standard ``PathFinder`` is the only distribution
finder, every ``sys.path`` entry is a directory or missing, and each metadata folder's name gives
its distribution name. Then, as there: ``sys.path`` order, a directory's
listing order, the first distribution of a normalised name wins (``Prepared.normalize`` of the
name in ``<name>-<version>.dist-info``; ``_unique`` keeps the first), and ``entry_points.txt`` is
parsed like ``Sectioned`` (stripped lines, ``#`` comments, ``[group]`` headers, ``name = value``).
Anything else (a zip or egg on ``sys.path``, another finder with ``find_distributions``, a folder
whose name needs its METADATA read, a file that cannot be read or a line that would not parse)
asks ``importlib.metadata`` itself.
"""

from __future__ import annotations

import os
import re
import sys
from importlib.machinery import PathFinder

__all__ = ["backend_entry_points"]

#: The errors ``PathDistribution.read_text`` turns into "no entry_points.txt" (the rest raise).
_ABSENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
_SEPARATORS = re.compile(r"[-_.]+")
#: The CPython versions whose importlib.metadata was read for these rules (and tested against).
_VERIFIED = ((3, 11), (3, 12), (3, 13))


class _Unsure(Exception):
    """This reader cannot be sure to give importlib.metadata's answer here."""


def backend_entry_points(group: str) -> list[tuple[str, str]]:
    """``(name, value)`` of each entry point in ``group``, as ``importlib.metadata`` orders them."""
    try:
        return _read(group)
    except Exception:  # _Unsure, or anything unexpected: the slow path decides (or raises)
        from importlib.metadata import entry_points

        return [(ep.name, ep.value) for ep in entry_points(group=group)]


def _read(group: str) -> list[tuple[str, str]]:
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in _VERIFIED:
        raise _Unsure(f"importlib.metadata of {sys.implementation.name} {sys.version_info[:2]}")
    _check_finders()
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for entry in sys.path:
        for child in _listing(entry):
            if not child.lower().endswith((".dist-info", ".egg-info")):
                continue
            key = _normalize(_name_from_folder(child))
            if key in seen:
                continue  # shadowed by an earlier distribution of the same name
            seen.add(key)
            try:
                with open(os.path.join(entry, child, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except _ABSENT:
                continue
            found.extend(_parse(text, group))
    return found


def _check_finders() -> None:
    """Only the standard PathFinder may find distributions (``Distribution.discover``)."""
    standard = False
    for finder in sys.meta_path:
        if finder is PathFinder:
            standard = True
        elif getattr(finder, "find_distributions", None):
            raise _Unsure(f"distribution finder {finder!r}")
    if not standard:
        raise _Unsure("no PathFinder on sys.meta_path")


def _listing(entry: object) -> list[str]:
    """``FastPath.children`` for a directory; a missing entry has none; anything else is unsure."""
    if not isinstance(entry, str):
        raise _Unsure(f"sys.path entry {entry!r}")
    if os.path.basename(entry).lower().endswith(".egg"):
        raise _Unsure(f"egg on sys.path: {entry}")  # Lookup also looks for EGG-INFO in it
    try:
        return os.listdir(entry or ".")
    except OSError:
        if os.path.lexists(entry or "."):
            raise _Unsure(f"sys.path entry {entry} is not a readable directory") from None
        return []


def _name_from_folder(child: str) -> str:
    """``PathDistribution._name_from_stem``; when it gives nothing, the name is in METADATA."""
    stem, ext = os.path.splitext(child)
    name = stem.partition("-")[0]
    if ext not in (".dist-info", ".egg-info") or not name:
        raise _Unsure(f"metadata folder {child!r} does not name its distribution")
    return name


def _normalize(name: str) -> str:
    """``Prepared.normalize``: PEP 503 plus dashes as underscores."""
    return _SEPARATORS.sub("-", name).lower().replace("-", "_")


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    """``Sectioned.section_pairs`` then ``Pair.parse``, keeping the lines of ``group``."""
    pairs: list[tuple[str, str]] = []
    section: str | None = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue  # before any section: importlib.metadata drops it unparsed
        name, sep, value = line.partition("=")
        if not sep:
            raise _Unsure(f"entry point line without '=': {line!r}")  # importlib.metadata raises
        if section == group:
            pairs.append((name.strip(), value.strip()))
    return pairs
