"""Durations as people write them in runbooks: ``90s``, ``5m``, ``1h30m``, ``PT5M``, ``1.5``.

One parser, so a scenario, the config and the CLI all accept the same spellings and reject the
same nonsense with the same message.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_DURATION_S", "format_duration", "parse_duration"]

#: Anything longer than a week is a typo, not a drill.
MAX_DURATION_S = 7 * 24 * 3600.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_COMPOUND = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|d|h|m|s))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_ISO = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: object, *, allow_zero: bool = True) -> float:
    """Seconds from a duration; ``ValueError`` with the accepted spellings otherwise."""
    if isinstance(value, bool):
        raise ValueError(
            f"expected a duration such as 90s, 5m, 1h30m, PT5M or seconds, got {value!r}"
        )
    seconds: float
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            raise ValueError(
                f"expected a duration such as 90s, 5m, 1h30m, PT5M or seconds, got {value!r}"
            )
        try:
            seconds = float(text)
        except ValueError:
            low = text.lower()
            if _COMPOUND.match(low):
                seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(low))
            else:
                iso = _ISO.match(text.upper())
                if not iso or text.upper() in ("P", "PT") or text.upper().endswith("T"):
                    raise ValueError(
                        f"expected a duration such as 90s, 5m, 1h30m, PT5M or seconds, got {value!r}"
                    ) from None
                seconds = sum(
                    float(iso.group(k) or 0) * f
                    for k, f in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
                )
    else:
        raise ValueError(
            f"expected a duration such as 90s, 5m, 1h30m, PT5M or seconds, got {value!r}"
        )
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a duration >= 0, got {value!r}")
    if seconds == 0 and not allow_zero:
        raise ValueError(f"expected a duration > 0, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"expected a duration of at most 7 days, got {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Short human form for tables: ``850ms``, ``12.4s``, ``3m05s``, ``1h02m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s"
    h, rem = divmod(round(seconds), 3600)
    return f"{h}h{rem // 60:02d}m"
