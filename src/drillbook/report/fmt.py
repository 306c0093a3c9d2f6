"""Number formatting shared by the HTML, Markdown and terminal reports (one style everywhere)."""

from __future__ import annotations

from drillbook.durations import format_duration

__all__ = ["fmt_bracket", "fmt_pct", "fmt_s"]


def fmt_s(seconds: float | None) -> str:
    """``0.24`` → ``240ms``, ``1.214`` → ``1.21s``, ``95`` → ``1m35s``; None → ``-``."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + fmt_s(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_duration(seconds)


def fmt_bracket(bracket: object) -> str:
    """``[0.96, 1.22]`` → ``960ms–1.22s``; anything else → empty."""
    if (
        isinstance(bracket, list | tuple)
        and len(bracket) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bracket)
    ):
        return f"{fmt_s(float(bracket[0]))}–{fmt_s(float(bracket[1]))}"
    return ""


def fmt_pct(fraction: float | None) -> str:
    """``0.5`` → ``50%``."""
    return "-" if fraction is None else f"{fraction * 100:.0f}%"
