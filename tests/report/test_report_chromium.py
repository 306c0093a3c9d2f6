"""Real rendering: report.html and trend.html in headless Chromium (DOM and a screenshot)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from pngcheck import decode_png, gray_stats
from report_fixtures import sample_run, synthetic_journals

from drillbook.history import record_runs, trend
from drillbook.report import write_run_reports
from drillbook.report.trend import write_trend_html

Chromium = Callable[..., subprocess.CompletedProcess[bytes]]


class _Collect(HTMLParser):
    """Elements of interest from the DOM Chromium dumped."""

    def __init__(self) -> None:
        super().__init__()
        self.drills: dict[str, str] = {}
        self.series: list[str] = []
        self.tags: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "section" and a.get("data-drill"):
            self.drills[str(a["data-drill"])] = str(a.get("data-verdict"))
        if tag == "section" and a.get("data-scenario"):
            self.series.append(str(a["data-scenario"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _dom(chromium: Chromium, page: Path) -> _Collect:
    done = chromium("--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    parsed = _Collect()
    parsed.feed(done.stdout.decode())
    return parsed


def _screenshot(chromium: Chromium, page: Path, out: Path) -> bytes:
    done = chromium(f"--screenshot={out}", "--window-size=1000,900", page.as_uri())
    assert done.returncode == 0 and out.is_file(), done.stderr.decode(errors="replace")[-2000:]
    return out.read_bytes()


def _assert_not_blank(png: bytes) -> None:
    width, height, _, _ = decode_png(png)
    assert (width, height) == (1000, 900)
    variance, colours, share = gray_stats(png)
    assert variance > 100.0, variance  # real contrast, not a flat page
    assert colours > 20 and share > 0.05, (colours, share)


def test_report_html_renders_in_chromium(chromium: Chromium, tmp_path: Path) -> None:
    write_run_reports(tmp_path, sample_run(), environ={})
    page = tmp_path / "report.html"
    dom = _dom(chromium, page)
    assert dom.drills == {
        "process_restart": "passed",
        "db_restore": "failed",
        "region_loss": "aborted",
    }
    # Timelines and measure bars are live SVG in the rendered DOM.
    assert dom.tags.get("svg", 0) >= 3 + 3 * 2 and dom.tags.get("rect", 0) > 100
    text = " ".join(dom.text)
    for needle in (
        "41.5s [41.0s–41.5s]",
        "1.21s [960ms–1.22s]",
        "objective missed",
        "within objective",
        "restore base backup",
        "SLOW",
        "TRIPPED",
        "How the measures are defined",
    ):
        assert needle in text, needle
    _assert_not_blank(_screenshot(chromium, page, tmp_path / "report.png"))


def test_trend_html_renders_in_chromium(chromium: Chromium, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    record_runs(db, [(j, "syn") for j in synthetic_journals(1500, 6)])
    series = trend(db)
    page = write_trend_html(tmp_path / "trend.html", series)
    dom = _dom(chromium, page)
    assert dom.series == [f"scenario_{i:02d}" for i in range(6)]
    assert dom.tags.get("svg", 0) >= 6
    text = " ".join(dom.text)
    assert "RTA p50 / p90" in text and "MTTR / MTTD trend" in text
    assert ("no regressions" in text) == (not any(s.regression for s in series))
    _assert_not_blank(_screenshot(chromium, page, tmp_path / "trend.png"))
