"""Bad input, hand-written and generated: every case ends with exit 2, one line naming the file
(and line/field where there is one), no traceback, and nothing injected.

In-process through ``drillbook.cli.main`` for speed; a handful through real ``drillbook``
subprocesses (validate and run) to prove the same holds for the installed command.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drillbook.cli import main

CASES: list[str] = []  # every case run, for the count in RELIABILITY.md

GOOD = {
    "id": "victim_kill",
    "description": "kill the victim",
    "objectives": {"rto": "30s", "severity": "P2"},
    "probe_interval": "250ms",
    "stable_for": "1s",
    "timeout": "1m",
    "fault": {"type": "process.kill", "target": "victim", "signal": "KILL", "ttl": "5m"},
    "probes": [{"name": "health", "type": "tcp", "target": "victim", "port": 9}],
    "recovery": [{"kind": "automatic"}],
}


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """A project whose one target is a live process: if anything were injected, it would die."""
    with tempfile.TemporaryDirectory(prefix="drillbook-badinput-") as tmp:
        root = Path(tmp)
        victim = subprocess.Popen(["sleep", "600"], start_new_session=True)
        (root / "victim.pid").write_text(str(victim.pid))
        (root / "drillbook.yaml").write_text(
            "environment: sandbox\n"
            "safety: {max_targets: 1, max_percent: 100}\n"
            "targets:\n  victim: {backend: local, pid_file: victim.pid}\n"
        )
        (root / "scenarios").mkdir()
        (root / "cases").mkdir()
        (root / "good.yaml").write_text(yaml.safe_dump(GOOD))
        try:
            yield root
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait()


def _victim_untouched(root: Path) -> None:
    pid = int((root / "victim.pid").read_text())
    with open(f"/proc/{pid}/stat") as fh:
        state = fh.read().rsplit(") ", 1)[1][:1]
    assert state in ("S", "R"), f"victim state {state}: something was injected"
    assert not (root / ".drillbook" / "intents.jsonl").exists(), "an intent was recorded"


def _one_line(err: str, name: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {err[:500]!r}"
    assert name in lines[0], f"message does not name {name}: {lines[0]!r}"
    return lines[0]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def check_scenario(
    root: Path, name: str, content: str | bytes, capsys: pytest.CaptureFixture[str]
) -> str:
    path = root / "cases" / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    CASES.append(name)
    code, out, err = run_cli(
        ["--config", str(root / "drillbook.yaml"), "validate", str(path)], capsys
    )
    assert code == 2, f"exit {code} for {name}: {out} {err}"
    line = _one_line(err, name)
    # file, then line and/or field, then the reason
    assert re.match(rf"^\S*{re.escape(name)}(:\d+)?: \S", line), line
    _victim_untouched(root)
    return line


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data: Any = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data  # type: ignore[no-any-return]


def _without(*keys: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k not in keys}


BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *[
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ],
    ]
)

HAND: list[Any] = [
    # malformed YAML
    ("unclosed_flow.yaml", "id: x\nprobes: [{name: h\n"),
    ("bad_indent.yaml", "id: x\n  probes:\n- a\n b: c\n"),
    ("tab_indent.yaml", "id: x\nfault:\n\ttype: process.kill\n"),
    ("unclosed_quote.yaml", 'id: "x\n'),
    ("colon_soup.yaml", "id: x: y: z\n"),
    ("dup_key.yaml", "id: x\nid: y\n"),
    ("dup_nested.yaml", "id: x\nfault: {type: process.kill, type: process.stop}\n"),
    ("multi_doc.yaml", "id: x\n---\nid: y\n"),
    ("empty.yaml", ""),
    ("only_comment.yaml", "# nothing\n"),
    ("null_doc.yaml", "~\n"),
    ("top_list.yaml", "- id: x\n"),
    ("top_scalar.yaml", "just a string\n"),
    ("top_int.yaml", "42\n"),
    ("bad_anchor.yaml", "id: *nope\n"),
    ("directive.yaml", "%YAML 9.9\n---\nid: x\n"),
    ("bad_escape.yaml", 'id: "\\q"\n'),
    # hostile YAML
    ("billion_laughs.yaml", BOMB),
    ("python_tag.yaml", "id: !!python/object/apply:os.system ['true']\n"),
    ("python_name.yaml", "fault: !!python/name:os.system\nid: x\n"),
    ("custom_tag.yaml", "id: !evil x\n"),
    ("binary_tag.yaml", "id: !!binary aGVsbG8=\n"),
    ("set_tag.yaml", "id: x\ntags: !!set {a, b}\n"),
    ("timestamp_tag.yaml", "id: x\ndescription: !!timestamp 2001-12-14\n"),
    ("huge_scalar.yaml", "id: x\ndescription: " + "A" * 70_000 + "\n"),
    ("huge_file.yaml", "id: x\n" + "# pad\n" * 200_000),
    ("deep_lists.yaml", "id: x\ntags: " + "[" * 200 + "]" * 200 + "\n"),
    ("deep_maps.yaml", "id: x\nrunbook: " + "{a: " * 100 + "1" + "}" * 100 + "\n"),
    ("very_deep.yaml", "id: x\ntags: " + "[" * 2000 + "]" * 2000 + "\n"),
    ("complex_key.yaml", "? [a, b]\n: 1\nid: x\n"),
    ("merge_key.yaml", "base: &b {type: process.kill}\nid: x\nfault:\n  <<: *b\n"),
    ("not_utf8.yaml", b"id: \xff\xfe\xfd\n"),
    ("utf16.yaml", "id: x\n".encode("utf-16")),
    ("nul_bytes.yaml", b"id: x\x00\nprobes: []\n"),
    ("control_chars.yaml", "id: x\x07\x1b[31m\n"),
    ("lone_surrogate.yaml", b"id: \xed\xa0\x80\n"),
    # wrong shapes and types
    ("no_id.yaml", _dump(_without("id"))),
    ("id_int.yaml", _dump(_with(("id",), 7))),
    ("id_list.yaml", _dump(_with(("id",), ["a"]))),
    ("id_null.yaml", _dump(_with(("id",), None))),
    ("id_upper.yaml", _dump(_with(("id",), "Victim"))),
    ("id_space.yaml", _dump(_with(("id",), "victim kill"))),
    ("id_unicode.yaml", _dump(_with(("id",), "vïctim"))),
    ("id_emoji.yaml", _dump(_with(("id",), "kill_💥"))),
    ("id_rtl.yaml", _dump(_with(("id",), "kill\u202egnp"))),
    ("id_too_long.yaml", _dump(_with(("id",), "a" * 200))),
    ("id_shell.yaml", _dump(_with(("id",), "x;rm -rf /"))),
    ("fault_str.yaml", _dump(_with(("fault",), "process.kill"))),
    ("fault_list.yaml", _dump(_with(("fault",), [{"type": "process.kill"}]))),
    ("fault_no_type.yaml", _dump(_with(("fault",), {"target": "victim"}))),
    ("fault_unknown.yaml", _dump(_with(("fault", "type"), "process.explode"))),
    ("fault_type_upper.yaml", _dump(_with(("fault", "type"), "Process.Kill"))),
    ("fault_type_int.yaml", _dump(_with(("fault", "type"), 3))),
    ("fault_bad_signal.yaml", _dump(_with(("fault", "signal"), "SIGNOPE"))),
    ("fault_signal_range.yaml", _dump(_with(("fault", "signal"), 999))),
    ("fault_signal_list.yaml", _dump(_with(("fault", "signal"), ["KILL"]))),
    ("fault_unknown_param.yaml", _dump(_with(("fault", "blast"), "everything"))),
    ("fault_unknown_target.yaml", _dump(_with(("fault", "target"), "prod-db"))),
    ("fault_target_int.yaml", _dump(_with(("fault", "target"), 5))),
    ("fault_target_path.yaml", _dump(_with(("fault", "target"), "../../etc/passwd"))),
    ("fault_targets_str.yaml", _dump(_with(("fault", "targets"), "victim"))),
    ("fault_ttl_bad.yaml", _dump(_with(("fault", "ttl"), "forever"))),
    ("fault_ttl_neg.yaml", _dump(_with(("fault", "ttl"), -5))),
    ("probes_empty.yaml", _dump(_with(("probes",), []))),
    ("probes_str.yaml", _dump(_with(("probes",), "health"))),
    ("probes_map.yaml", _dump(_with(("probes",), {"name": "h", "type": "tcp"}))),
    ("probe_no_type.yaml", _dump(_with(("probes", 0), {"name": "h", "target": "victim"}))),
    ("probe_unknown.yaml", _dump(_with(("probes", 0, "type"), "ping"))),
    ("probe_bad_param.yaml", _dump(_with(("probes", 0, "colour"), "red"))),
    ("probe_port_str.yaml", _dump(_with(("probes", 0, "port"), "http"))),
    ("probe_item_int.yaml", _dump(_with(("probes", 0), 5))),
    ("probe_null.yaml", _dump(_with(("probes", 0), None))),
    ("recovery_str.yaml", _dump(_with(("recovery",), "automatic"))),
    ("recovery_no_kind.yaml", _dump(_with(("recovery", 0), {"name": "x"}))),
    ("recovery_bad_kind.yaml", _dump(_with(("recovery", 0), {"kind": "magic"}))),
    ("recovery_scripted_no_type.yaml", _dump(_with(("recovery", 0), {"kind": "scripted"}))),
    (
        "recovery_unknown_step.yaml",
        _dump(_with(("recovery", 0), {"kind": "scripted", "type": "pray"})),
    ),
    (
        "recovery_bad_timeout.yaml",
        _dump(_with(("recovery", 0), {"kind": "automatic", "timeout": "soon"})),
    ),
    ("objectives_list.yaml", _dump(_with(("objectives",), ["30s"]))),
    ("objectives_unknown.yaml", _dump(_with(("objectives", "mttr"), "5m"))),
    ("severity_bad.yaml", _dump(_with(("objectives", "severity"), "P9"))),
    ("severity_int.yaml", _dump(_with(("objectives", "severity"), 1))),
    ("rto_word.yaml", _dump(_with(("objectives", "rto"), "thirty seconds"))),
    ("rto_negative.yaml", _dump(_with(("objectives", "rto"), -30))),
    ("rto_bool.yaml", _dump(_with(("objectives", "rto"), True))),
    ("rto_list.yaml", _dump(_with(("objectives", "rto"), [30]))),
    ("rto_units.yaml", _dump(_with(("objectives", "rto"), "30 parsecs"))),
    ("rto_iso_bad.yaml", _dump(_with(("objectives", "rto"), "PXYZ"))),
    ("rpo_text.yaml", _dump(_with(("objectives", "rpo"), "none"))),
    ("interval_zero.yaml", _dump(_with(("probe_interval",), "0s"))),
    ("interval_word.yaml", _dump(_with(("probe_interval",), "fast"))),
    ("interval_nan.yaml", _dump(_with(("probe_interval",), ".nan"))),
    ("interval_inf.yaml", "id: x\nprobe_interval: .inf\nprobes: [{name: h, type: tcp, port: 9}]\n"),
    ("interval_huge.yaml", _dump(_with(("probe_interval",), "9" * 70 + "s"))),
    ("stable_for_bad.yaml", _dump(_with(("stable_for",), "1 fortnight"))),
    ("timeout_neg.yaml", _dump(_with(("timeout",), "-1m"))),
    ("timeout_map.yaml", _dump(_with(("timeout",), {"m": 1}))),
    ("unknown_top.yaml", _dump(_with(("blast_radius",), "all"))),
    ("unknown_top2.yaml", _dump(_with(("rollback",), False))),
    ("typo_probes.yaml", _dump({**_without("probes"), "probe": GOOD["probes"]})),
    ("tags_str.yaml", _dump(_with(("tags",), "nightly"))),
    ("tags_nested.yaml", _dump(_with(("tags",), [["a"]]))),
    ("controls_map.yaml", _dump(_with(("controls",), {"SOC2": 1}))),
    ("targets_map.yaml", _dump(_with(("targets",), {"victim": 1}))),
    ("guards_bad.yaml", _dump(_with(("guards",), [{"max_failures": 3}]))),
    ("guards_str.yaml", _dump(_with(("guards",), "none"))),
    ("verify_map.yaml", _dump(_with(("verify",), {"type": "tcp"}))),
    ("ledger_list.yaml", _dump(_with(("ledger",), ["x"]))),
    ("ledger_unknown.yaml", _dump(_with(("ledger",), {"type": "nope.ledger"}))),
    ("description_map.yaml", _dump(_with(("description",), {"a": 1}))),
    ("runbook_list.yaml", _dump(_with(("runbook",), ["a"]))),
]


def _id(case: Any) -> str:
    return str(case.values[0] if hasattr(case, "values") else case[0])


@pytest.mark.parametrize(("name", "content"), HAND, ids=[_id(c) for c in HAND])
def test_hand_written_scenario(
    project: Path, name: str, content: str | bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    check_scenario(project, name, content, capsys)


def test_good_scenario_is_valid(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline every mutation starts from must itself be valid, or the rest proves nothing."""
    code, out, err = run_cli(
        ["--config", str(project / "drillbook.yaml"), "validate", str(project / "good.yaml")],
        capsys,
    )
    assert code == 0, err
    assert "1 valid, 0 invalid" in out


# ----------------------------------------------------------------------------- generated
_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TOP_KEYS = set(GOOD) | {
    "runbook",
    "tags",
    "severity",
    "controls",
    "targets",
    "steady_state",
    "verify",
    "guards",
    "ledger",
    "description",
}
DURATION_FIELDS = [
    ("probe_interval",),
    ("stable_for",),
    ("timeout",),
    ("objectives", "rto"),
    ("objectives", "rpo"),
    ("fault", "ttl"),
]
bad_duration = st.one_of(
    st.from_regex(r"[a-oq-zA-OQ-Z!@#][\w !?]{0,20}", fullmatch=True),  # not a number, not ISO
    st.floats(max_value=-0.001, allow_nan=False, allow_infinity=False),
    st.integers(max_value=-1),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    st.booleans(),
)
wrong_for_mapping = st.one_of(
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.booleans(),
)
_n = 0


def _name(prefix: str) -> str:
    global _n
    _n += 1
    return f"{prefix}_{_n}.yaml"


@_SETTINGS
@given(
    key=st.from_regex(r"[a-z][a-z0-9_]{0,24}", fullmatch=True).filter(lambda k: k not in TOP_KEYS)
)
def test_generated_unknown_key(project: Path, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = check_scenario(project, _name("unknown_key"), _dump(_with((key,), 1)), capsys)
    assert key in line


@_SETTINGS
@given(where=st.sampled_from(DURATION_FIELDS), value=bad_duration)
def test_generated_bad_duration(
    project: Path, where: tuple[str, ...], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    line = check_scenario(project, _name("bad_duration"), _dump(_with(where, value)), capsys)
    assert where[-1] in line


@_SETTINGS
@given(
    where=st.sampled_from([("fault",), ("objectives",), ("probes", 0), ("recovery", 0)]),
    value=wrong_for_mapping,
)
def test_generated_wrong_type(
    project: Path, where: tuple[str | int, ...], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    check_scenario(project, _name("wrong_type"), _dump(_with(where, value)), capsys)


@_SETTINGS
@given(
    ident=st.text(min_size=1, max_size=40).filter(
        lambda s: not re.fullmatch(r"[a-z][a-z0-9_-]{0,79}", s)
    )
)
def test_generated_bad_id(project: Path, ident: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = _dump(_with(("id",), ident))
    check_scenario(project, _name("bad_id"), text, capsys)


@_SETTINGS
@given(blob=st.binary(max_size=300))
def test_generated_garbage_bytes(
    project: Path, blob: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    check_scenario(project, _name("garbage"), blob, capsys)


@_SETTINGS
@given(depth=st.integers(min_value=66, max_value=400), kind=st.sampled_from("[{"))
def test_generated_deep_nesting(
    project: Path, depth: int, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inner = "[" * depth + "]" * depth if kind == "[" else "{a: " * depth + "1" + "}" * depth
    line = check_scenario(project, _name("deep"), f"id: x\ntags: {inner}\n", capsys)
    assert "nesting" in line or "deep" in line, line


@_SETTINGS
@given(
    kind=st.sampled_from(["fault", "probe", "step"]),
    name=st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,10})?", fullmatch=True),
)
def test_generated_unknown_type(
    project: Path, kind: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from drillbook.backends.base import get_registry

    reg = get_registry()
    known: set[str] = {
        "fault": set(reg.faults),
        "probe": set(reg.probes),
        "step": set(reg.recoveries),
    }[kind]
    if name in known:
        name = name + ".nope"
    if kind == "fault":
        data = _with(("fault", "type"), name)
    elif kind == "probe":
        data = _with(("probes", 0, "type"), name)
    else:
        data = _with(("recovery", 0), {"kind": "scripted", "type": name})
    line = check_scenario(project, _name(f"unknown_{kind}"), _dump(data), capsys)
    assert name in line, line


# ----------------------------------------------------------------------------- bad config
CONFIGS: list[tuple[str, str | bytes]] = [
    ("cfg_malformed", "environment: [sandbox\n"),
    ("cfg_top_list", "- a\n"),
    ("cfg_unknown_key", "environment: sandbox\nblast: all\n"),
    ("cfg_env_empty", "environment: ''\n"),
    ("cfg_env_list", "environment: [a]\n"),
    ("cfg_production_str", "production: 'yes please'\n"),
    ("cfg_allow_prod_int", "allow_production: 1\n"),
    ("cfg_targets_list", "targets: [a, b]\n"),
    ("cfg_target_str", "targets:\n  a: local\n"),
    ("cfg_target_no_backend", "targets:\n  a: {command: x}\n"),
    ("cfg_target_backend_int", "targets:\n  a: {backend: 3}\n"),
    ("cfg_backends_list", "backends: [docker]\n"),
    ("cfg_backend_settings_str", "backends:\n  docker: yes\n"),
    ("cfg_safety_list", "safety: [1]\n"),
    ("cfg_safety_unknown", "safety: {max_blast: 1}\n"),
    ("cfg_max_targets_zero", "safety: {max_targets: 0}\n"),
    ("cfg_max_targets_str", "safety: {max_targets: many}\n"),
    ("cfg_max_targets_bool", "safety: {max_targets: true}\n"),
    ("cfg_max_percent_big", "safety: {max_percent: 150}\n"),
    ("cfg_max_percent_zero", "safety: {max_percent: 0}\n"),
    ("cfg_opt_in_str", "safety: {require_opt_in: maybe}\n"),
    ("cfg_ttl_bad", "safety: {fault_ttl: forever}\n"),
    ("cfg_ledger_int", "safety: {intent_ledger: 5}\n"),
    ("cfg_defaults_list", "defaults: [1]\n"),
    ("cfg_defaults_unknown", "defaults: {speed: fast}\n"),
    ("cfg_interval_tiny", "defaults: {probe_interval: 1ms}\n"),
    ("cfg_interval_word", "defaults: {probe_interval: often}\n"),
    ("cfg_stable_bad", "defaults: {stable_for: awhile}\n"),
    ("cfg_timeout_bad", "defaults: {timeout: never}\n"),
    ("cfg_response_list", "defaults: {response_targets: [1]}\n"),
    ("cfg_response_sev", "defaults: {response_targets: {P7: 1h}}\n"),
    ("cfg_response_dur", "defaults: {response_targets: {P1: soon}}\n"),
    ("cfg_reports_int", "reports_dir: 5\n"),
    ("cfg_sandbox_list", "sandbox: [1]\n"),
    ("cfg_bomb", BOMB),
    ("cfg_python_tag", "environment: !!python/object/apply:os.getcwd []\n"),
    ("cfg_dup", "environment: a\nenvironment: b\n"),
    ("cfg_not_utf8", b"environment: \xff\n"),
    ("cfg_deep", "sandbox: " + "[" * 300 + "]" * 300 + "\n"),
    ("cfg_huge_scalar", "environment: " + "x" * 70_000 + "\n"),
]


@pytest.mark.parametrize(("name", "content"), CONFIGS, ids=[n for n, _ in CONFIGS])
def test_bad_config(
    project: Path, name: str, content: str | bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "cases" / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    CASES.append(name)
    code, out, err = run_cli(
        ["--config", str(path), "validate", str(project / "good.yaml")], capsys
    )
    assert code == 2, f"exit {code}: {out} {err}"
    line = _one_line(err, f"{name}.yaml")
    assert line.startswith("drillbook: "), line
    _victim_untouched(project)


# ----------------------------------------------------------------------------- bad CLI arguments
CLI: list[tuple[str, list[str], str]] = [
    ("unknown_command", ["explode"], "explode"),
    ("unknown_global", ["--frobnicate", "list"], "--frobnicate"),
    ("config_missing_value", ["--config"], "--config"),
    ("reports_missing_value", ["--reports-dir"], "--reports-dir"),
    ("config_no_file", ["--config", "/nonexistent/drillbook.yaml", "validate"], "nonexistent"),
    ("config_is_dir", ["--config", "/", "validate"], "/"),
    ("validate_unknown_opt", ["validate", "--strict"], "--strict"),
    ("validate_missing_file", ["validate", "no_such_scenario.yaml"], "no_such_scenario.yaml"),
    ("rollback_intent_missing", ["rollback", "--intent"], "--intent"),
    ("rollback_extra_arg", ["rollback", "everything"], "everything"),
    ("rollback_unknown_opt", ["rollback", "--all-of-it"], "--all-of-it"),
    ("list_unknown_opt", ["list", "--json"], "--json"),
    ("list_extra_arg", ["list", "extra"], "extra"),
    ("run_answer_missing", ["run", "--answer"], "--answer"),
    ("run_k_missing", ["run", "-k"], "-k"),
    ("report_unknown_opt", ["report", "--bogus"], "--bogus"),
    ("trend_unknown_opt", ["trend", "--bogus"], "--bogus"),
    ("history_unknown_sub", ["history", "explode"], "explode"),
    ("evidence_unknown_sub", ["evidence", "explode"], "explode"),
    ("sandbox_unknown_sub", ["sandbox", "explode"], "explode"),
    ("unicode_command", ["zerstöre"], "zerstöre"),
    ("empty_command", [""], "''"),
]


@pytest.mark.parametrize(("name", "argv", "needle"), CLI, ids=[c[0] for c in CLI])
def test_bad_cli_arguments(
    project: Path, name: str, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    CASES.append(name)
    cwd = os.getcwd()
    os.chdir(project)
    try:
        code, out, err = run_cli(argv, capsys)
    finally:
        os.chdir(cwd)
    assert code == 2, f"exit {code}: {out} {err}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # argparse prints "usage:" before its one-line error; the error line itself names the culprit.
    errors = [ln for ln in lines if not ln.lstrip().startswith(("usage:", "[", "COMMAND"))]
    assert errors and needle in errors[-1], err
    _victim_untouched(project)


# ----------------------------------------------------------------------------- real subprocesses
def _drillbook(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


_SUB = [HAND[i] for i in (0, 17, 18, 27, 32, 55)]


@pytest.mark.parametrize(("name", "content"), _SUB, ids=[_id(c) for c in _SUB])
def test_subprocess_validate(project: Path, name: str, content: str | bytes) -> None:
    path = project / "cases" / f"sub_{name}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    CASES.append(f"sub_{name}")
    proc = _drillbook("validate", str(path), cwd=project)
    assert proc.returncode == 2, proc
    _one_line(proc.stderr, f"sub_{name}")
    _victim_untouched(project)


@pytest.mark.parametrize("which", ["bad_fault", "bad_duration", "bomb"])
def test_subprocess_run_refuses_bad_scenario(project: Path, which: str, tmp_path: Path) -> None:
    """``drillbook run`` with one bad scenario among good ones: exit 2 before any drill starts."""
    root = tmp_path / "proj"
    (root / "scenarios").mkdir(parents=True)
    (root / "drills").mkdir()
    (root / "drillbook.yaml").write_text((project / "drillbook.yaml").read_text())
    (root / "victim.pid").write_text((project / "victim.pid").read_text())
    repo = Path(__file__).resolve().parents[2]
    (root / "drills" / "test_scenarios.py").write_text(
        (repo / "drills" / "test_scenarios.py").read_text()
    )
    (root / "scenarios" / "a_good.yaml").write_text(yaml.safe_dump(GOOD))
    bad = {
        "bad_fault": _dump(_with(("fault", "type"), "process.explode")),
        "bad_duration": _dump(_with(("objectives", "rto"), "whenever")),
        "bomb": BOMB,
    }[which]
    (root / "scenarios" / "b_bad.yaml").write_text(bad)
    CASES.append(f"run_{which}")
    proc = _drillbook("run", cwd=root)
    assert proc.returncode == 2, (proc.stdout[-800:], proc.stderr[-800:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "b_bad.yaml" in proc.stderr + proc.stdout
    assert not (root / ".drillbook" / "intents.jsonl").exists()
    _victim_untouched(project)


def test_zz_case_count() -> None:
    """The file declares >= 200 bad inputs; what ran is printed (a -k subset runs fewer, which
    is a selection, not a skip). Runs last in this file."""
    generated = 7 * 25  # seven @given tests, max_examples=25 each
    declared = len(HAND) + len(CONFIGS) + len(CLI) + len(_SUB) + 3 + generated
    print(f"bad-input cases run: {len(CASES)} of {declared} declared")
    assert declared >= 200
