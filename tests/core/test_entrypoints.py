"""The fast entry-point reader gives exactly importlib.metadata's answer, or asks it.

Why: ``drillbook.entrypoints`` copies importlib.metadata's rules to spare every drill process the
import (issue 9); a reader that drifted would silently drop or reorder a third party's backend.
So each test compares with importlib.metadata itself: on the real ``sys.path``, on planted
distributions that exercise each rule (shadowing by normalised name, egg-info, comments and
spacing, unreadable metadata), and on the cases that must fall back (a zip or egg on
``sys.path``, a custom distribution finder), in subprocesses so ``sys.path`` and ``sys.modules``
are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Sequence
from importlib.metadata import EntryPoints, PathDistribution, Prepared
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drillbook.entrypoints import _name_from_folder, _normalize, _parse, _read, _Unsure

GROUPS = ["drillbook.backends", "pytest11", "console_scripts", "other", " other ", ""]

COMPARE = textwrap.dedent(
    """
    import json, sys
    exec(sys.argv[2])
    from drillbook.entrypoints import backend_entry_points
    groups = json.loads(sys.argv[1])
    fast = {g: backend_entry_points(g) for g in groups}
    fell_back = "importlib.metadata" in sys.modules
    from importlib.metadata import entry_points
    slow = {g: [[ep.name, ep.value] for ep in entry_points(group=g)] for g in groups}
    print(json.dumps({"fast": fast, "slow": slow, "fell_back": fell_back}))
    """
)


def _run(code: str, *args: str, path: Sequence[Path] = (), cwd: Path | None = None) -> Any:
    old = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), *([old] if old else [])])}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _compare(path: list[Path], cwd: Path, setup: str = "") -> Any:
    result = _run(COMPARE, json.dumps(GROUPS), setup, path=path, cwd=cwd)
    fast, slow = result["fast"], result["slow"]
    for group in GROUPS:
        assert fast[group] == slow[group], group
    return result


def _dist(site: Path, folder: str, entry_points: str | None, name: str | None = None) -> Path:
    dist = site / folder
    dist.mkdir(parents=True)
    if name is not None:
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (dist / "entry_points.txt").write_bytes(entry_points.encode())
    return dist


def test_real_sys_path_matches_importlib_metadata(tmp_path: Path) -> None:
    result = _compare([], tmp_path)
    assert not result["fell_back"]
    # The comparison is not vacuous: the dev environment has these groups filled.
    assert ["drillbook", "drillbook.plugin"] in result["fast"]["pytest11"]
    assert ["local", "drillbook.backends.local:register"] in result["fast"]["drillbook.backends"]
    assert result["fast"]["console_scripts"]


def test_planted_distributions_follow_importlib_metadata_rules(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    # Same normalised name on two path entries: the first wins, the second is never read.
    _dist(
        first,
        "Acme.Drills-2.0.dist-info",
        "\ufeff# a comment\n  [drillbook.backends]  \r\n  acme   =  acme_a : register  \n"
        "\n#hidden = x:y\n   # indented comment\n[ other ]\nspaced = yes = really\n"
        "[other]\n=nameless\n[drillbook.backends]\nlater=acme_a:late\n",
    )
    _dist(second, "acme_drills-1.0.dist-info", "[drillbook.backends]\nacme = acme_b:register\n")
    # Shadowing a real installed distribution by its normalised name.
    _dist(first, "DrillBook-9.9.dist-info", "[drillbook.backends]\nlocal = fake:register\n")
    # An old-style egg-info *file* still claims its name (and has no entry points).
    (first / "zzz.egg-info").write_text("Metadata-Version: 1.0\nName: zzz\n")
    _dist(second, "zzz-1.0.dist-info", "[drillbook.backends]\nzzz = zzz:register\n")
    # An egg-info folder, a dist-info without entry_points.txt, one whose file is a folder.
    _dist(second, "legacy_pkg-0.1-py3.11.egg-info", "[drillbook.backends]\nlegacy=legacy:reg\n")
    _dist(second, "bare-1.0.dist-info", None, name="bare")
    _dist(second, "weird-1.0.dist-info", None, name="weird")
    (second / "weird-1.0.dist-info" / "entry_points.txt").mkdir()
    _dist(second, "crlf-1.0.dist-info", "[pytest11]\r\ncrlf = crlf.plugin\r\n")
    # Text before any section is dropped unparsed (even without '=').
    _dist(second, "preamble-1.0.dist-info", "no equals here\n[pytest11]\npre = pre.mod\n")

    result = _compare([first, tmp_path / "missing", second], tmp_path)
    assert not result["fell_back"]
    backends = result["fast"]["drillbook.backends"]
    # In file order; the shadowed acme_drills, zzz and the installed drillbook give nothing.
    acme = backends.index(["acme", "acme_a : register"])
    assert backends[acme + 1] == ["later", "acme_a:late"]
    assert ["legacy", "legacy:reg"] in backends
    assert [name for name, _ in backends].count("acme") == 1
    assert [value for name, value in backends if name == "local"] == ["fake:register"]
    assert "zzz" not in [name for name, _ in backends]
    assert result["fast"][" other "] == [["spaced", "yes = really"]]
    assert result["fast"]["other"] == [["", "nameless"]]
    assert ["crlf", "crlf.plugin"] in result["fast"]["pytest11"]
    assert ["pre", "pre.mod"] in result["fast"]["pytest11"]


def test_a_line_importlib_metadata_rejects_falls_back_and_raises_the_same(tmp_path: Path) -> None:
    _dist(tmp_path / "site", "broken-1.0.dist-info", "[pytest11]\nno equals sign\n")
    code = textwrap.dedent(
        """
        import json
        from drillbook.entrypoints import backend_entry_points
        try:
            print(json.dumps(backend_entry_points("console_scripts")))
        except Exception as exc:
            print(json.dumps(type(exc).__name__))
        """
    )
    assert _run(code, path=[tmp_path / "site"], cwd=tmp_path) == "TypeError"


def test_zip_on_sys_path_falls_back(tmp_path: Path) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "zipped_pkg-1.0.dist-info/entry_points.txt",
            "[drillbook.backends]\nzipped = zipped_pkg:register\n",
        )
        # In a zip importlib.metadata takes every name from METADATA (no folder name to read).
        zf.writestr("zipped_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\n")
    result = _compare([archive], tmp_path)
    assert result["fell_back"]
    assert ["zipped", "zipped_pkg:register"] in result["fast"]["drillbook.backends"]


def test_egg_directory_on_sys_path_falls_back(tmp_path: Path) -> None:
    egg = tmp_path / "old-1.0-py3.11.egg"
    _dist(egg, "EGG-INFO", "[drillbook.backends]\nold = old:register\n")
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: old\nVersion: 1.0\n")
    result = _compare([egg], tmp_path)
    assert result["fell_back"]
    assert ["old", "old:register"] in result["fast"]["drillbook.backends"]


def test_metadata_folder_without_a_name_in_its_folder_name_falls_back(tmp_path: Path) -> None:
    _dist(tmp_path / "site", "Shouty-1.0.DIST-INFO", "[pytest11]\nshouty = s\n", name="shouty")
    result = _compare([tmp_path / "site"], tmp_path)
    assert result["fell_back"]
    assert ["shouty", "s"] in result["fast"]["pytest11"]


def test_custom_distribution_finder_falls_back(tmp_path: Path) -> None:
    ghost = _dist(tmp_path / "elsewhere", "ghost-1.0.dist-info", "[pytest11]\nghost = g\n")
    setup = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path

        class Finder:
            def find_spec(self, *args):
                return None

            def find_distributions(self, context=None):
                from importlib.metadata import PathDistribution
                return [PathDistribution(Path({str(ghost)!r}))]

        sys.meta_path.append(Finder())
        """
    )
    result = _compare([], tmp_path, setup)
    assert result["fell_back"]
    assert ["ghost", "g"] in result["fast"]["pytest11"]


def test_get_registry_reads_entry_points_without_importlib_metadata(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # Shadow the installed drillbook's own entry points, so the built-ins come from
    # BUILTIN_BACKENDS, except "local", which a same-named entry point overrides.
    _dist(site, "drillbook-0.dist-info", None, name="drillbook")
    _dist(site, "acme_drills-1.0.dist-info", "[drillbook.backends]\nacme = acme_drills:register\n")
    _dist(site, "localfake-1.0.dist-info", "[drillbook.backends]\nlocal = localfake:register\n")
    (site / "acme_drills.py").write_text(
        "def register(registry):\n    registry.add_backend('acme', lambda s: None, 'acme help')\n"
    )
    (site / "localfake.py").write_text(
        "def register(registry):\n    registry.add_backend('local', lambda s: None, 'fake')\n"
    )
    code = textwrap.dedent(
        """
        import json, sys
        preloaded = "importlib.metadata" in sys.modules
        from drillbook.backends.base import get_registry
        registry = get_registry()
        print(json.dumps({
            "preloaded": preloaded,
            "imported": "importlib.metadata" in sys.modules,
            "help": {name: info.help for name, info in registry.backends.items()},
            "broken": registry.broken,
        }))
        """
    )
    result = _run(code, path=[site], cwd=tmp_path)
    assert not result["preloaded"], "this interpreter imports importlib.metadata at start-up"
    assert not result["imported"]
    assert result["broken"] == {}
    assert result["help"]["acme"] == "acme help"
    assert result["help"]["local"] == "fake"  # a same-named entry point overrides the built-in
    assert {"postgres", "docker", "kubernetes", "aws"} <= set(result["help"])


def test_an_interpreter_whose_rules_were_not_checked_is_unsure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 99, 0, "final", 0))
    with pytest.raises(_Unsure, match=r"importlib.metadata of cpython \(3, 99\)"):
        _read("pytest11")


# In-process differentials for the pure parts, against importlib.metadata's own functions.

LINE_PARTS = st.sampled_from(
    ["[", "]", "=", "#", " ", "\t", "g", "h", "a", "b", ":", ".", "-", "\ufeff", "\u00a0", "é"]
)
TYPICAL = st.sampled_from(
    [
        "[g]",
        "[h]",
        " [ g ] ",
        "[ g]",
        "[[g]]",
        "[]",
        "a = b",
        "#c = d",
        "  a=b=c ",
        "x",
        "",
        "= v",
        "k =",
    ]
)
LINES = st.lists(st.one_of(TYPICAL, st.text(LINE_PARTS, max_size=8)), max_size=12)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r", "\x0c", "\u2028", "\x1c"])


@settings(max_examples=300)
@given(lines=LINES, newline=NEWLINES, group=st.sampled_from(["g", "h", " g", "[g]", ""]))
@example(lines=["[ g]", "a = b", "[g]", "c=d"], newline="\n", group=" g")
@example(lines=["[g]", "a=b", "[h]", "c = d ", "#[g]", "e=f"], newline="\u2028", group="g")
@example(lines=["x", "[g]", "x=", "[h]", "y"], newline="\r", group="g")
def test_parse_matches_importlib_metadata(lines: list[str], newline: str, group: str) -> None:
    text = newline.join(lines)
    try:
        expected: list[tuple[str, str]] | None = [
            (ep.name, ep.value) for ep in EntryPoints._from_text(text) if ep.group == group
        ]
    except TypeError:  # Pair.parse of a line without '='
        expected = None
    try:
        got: list[tuple[str, str]] | None = _parse(text, group)
    except _Unsure:
        got = None
    assert got == expected


@given(st.text(st.sampled_from("aZ09-_.é~ ")))
def test_normalize_matches_prepared(name: str) -> None:
    assert _normalize(name) == Prepared.normalize(name)


@given(
    st.text(st.sampled_from("aZ-._"), max_size=8),
    st.sampled_from([".dist-info", ".egg-info", ".DIST-INFO", ".Egg-Info", ".txt", ""]),
)
def test_folder_name_matches_path_distribution(stem: str, ext: str) -> None:
    folder = stem + ext
    expected = PathDistribution._name_from_stem(folder)
    try:
        got: str | None = _name_from_folder(folder)
    except _Unsure:
        got = None
    if expected:
        assert got == expected
    else:  # importlib.metadata would read the name from METADATA: the fast reader declines
        assert got is None
