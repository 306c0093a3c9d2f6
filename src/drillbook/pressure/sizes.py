"""Byte sizes as people write them in a scenario: ``512MiB``, ``1G``, ``64k``, or a number."""

from __future__ import annotations

import re

from drillbook.errors import ConfigError

__all__ = ["SIZE_PATTERN", "parse_size"]

SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$"
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: object, *, field: str) -> int:
    """Bytes; binary multiples (``1G`` and ``1GiB`` are both 2**30: a cap errs on the larger)."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a size, got {value!r}", field=field)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError("expected a size of at least 0", field=field)
        return value
    if isinstance(value, str) and re.match(SIZE_PATTERN, value):
        m = re.match(r"^\s*([0-9.]+)\s*([a-zA-Z]*)\s*$", value)
        assert m is not None
        unit = m.group(2).lower().replace("ib", "").rstrip("b")
        return int(float(m.group(1)) * _UNITS[unit])
    raise ConfigError(f"expected a size like 256MiB or 1G, got {value!r}", field=field)
