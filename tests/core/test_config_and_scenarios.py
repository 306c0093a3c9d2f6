"""Bad input gets one clear line naming file, line and field, and touches nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from drillbook.backends.base import get_registry
from drillbook.cli import main
from drillbook.config import Overrides, load_config
from drillbook.errors import ConfigError, ScenarioError
from drillbook.scenario import load_scenario

CONFIG = """\
environment: staging
targets:
  web: {backend: local, command: ["true"], port: 1}
safety: {max_targets: 2}
"""

GOOD = """\
id: web_restart
objectives: {rto: 30s, severity: P1}
fault: {type: process.kill, target: web, signal: KILL}
probes:
  - {name: health, type: http, target: web}
recovery:
  - {kind: automatic}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "drillbook.yaml").write_text(CONFIG)
    (tmp_path / "scenarios").mkdir()
    monkeypatch.chdir(tmp_path)
    for var in ("DRILLBOOK_CONFIG", "DRILLBOOK_ENVIRONMENT", "DRILLBOOK_PROBE_INTERVAL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _load(project: Path, text: str) -> object:
    path = project / "scenarios" / "s.yaml"
    path.write_text(textwrap.dedent(text))
    cfg = load_config(workdir=project)
    return load_scenario(path, registry=get_registry(), config=cfg, display="scenarios/s.yaml")


def test_a_good_scenario_loads(project: Path) -> None:
    scenario = _load(project, GOOD)
    assert scenario.id == "web_restart"  # type: ignore[attr-defined]
    assert scenario.objectives.rto_s == 30  # type: ignore[attr-defined]
    assert scenario.backends == ("local",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutation", "line", "field", "words"),
    [
        (("rto: 30s", "rto: soon"), 2, "objectives.rto", "duration"),
        (("rto: 30s", "rto: -5s"), 2, "objectives.rto", "duration"),
        (("severity: P1", "severity: P9"), 2, "objectives.severity", "P0"),
        (("type: process.kill", "type: process.explode"), 3, "fault.type", "known: "),
        (("type: http", "type: htp"), 5, "probes[0].type", "known: "),
        (("target: web, signal", "target: db, signal"), 3, "fault.target", "unknown target 'db'"),
        (("signal: KILL", "signal: [1]"), 3, "fault.signal", ""),
        (("id: web_restart", "id: web_restart\nbogus: 1"), 2, "bogus", "unknown key"),
        (
            ("id: web_restart", "id: web_restart\ncontrols: [SOC2-A1.3, SOC2-A13]"),
            2,
            "controls[1]",
            "unknown control 'SOC2-A13'",
        ),
        (("  - {kind: automatic}", "  - {kind: magic}"), 7, "recovery[0].kind", ""),
        (("  - {kind: automatic}", "  - {kind: manual}"), 7, "recovery[0]", "instruction"),
        (
            (
                "  - {name: health, type: http, target: web}",
                "  - {name: health, type: http, target: web, colour: red}",
            ),
            5,
            "probes[0].colour",
            "unknown parameter",
        ),
    ],
)
def test_bad_scenarios_name_file_line_and_field(
    project: Path, mutation: tuple[str, str], line: int, field: str, words: str
) -> None:
    text = GOOD.replace(*mutation)
    assert text != GOOD
    with pytest.raises(ScenarioError) as info:
        _load(project, text)
    message = str(info.value)
    assert message.startswith(f"scenarios/s.yaml:{line}: {field}: "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("id: [unclosed\n", "malformed YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
                for i in range(6)
            ),
            "alias bomb",
        ),
        ("id: x\ndescription: " + "[" * 200 + "]" * 200 + "\n", "nesting"),
        ("id: !!python/object/apply:os.system ['true']\n", "unsupported YAML tag"),
    ],
)
def test_hostile_yaml_is_refused(project: Path, text: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        _load(project, text)


def test_a_50mb_file_is_refused_without_reading_it(project: Path) -> None:
    path = project / "scenarios" / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(ScenarioError, match="limited to 1024 KiB"):
        load_scenario(path)


def test_validate_exits_2_with_file_line_field(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "scenarios" / "ok.yaml").write_text(GOOD)
    (project / "scenarios" / "broken.yaml").write_text(
        GOOD.replace("rto: 30s", "rto: whenever").replace("web_restart", "other")
    )
    assert main(["validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("scenarios/broken.yaml:2: objectives.rto: expected a duration")
    (project / "scenarios" / "broken.yaml").unlink()
    assert main(["validate"]) == 0


def test_config_errors_name_their_source(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "drillbook.yaml").write_text(CONFIG.replace("max_targets: 2", "max_targets: 0"))
    with pytest.raises(
        ConfigError, match=r"^drillbook.yaml:4: safety.max_targets: expected a whole number"
    ):
        load_config(workdir=project)
    (project / "drillbook.yaml").write_text(CONFIG + "colour: blue\n")
    with pytest.raises(ConfigError, match=r"^drillbook.yaml:5: colour: unknown key"):
        load_config(workdir=project)
    (project / "drillbook.yaml").write_text(CONFIG)
    monkeypatch.setenv("DRILLBOOK_PROBE_INTERVAL", "often")
    with pytest.raises(ConfigError, match=r"^\$DRILLBOOK_PROBE_INTERVAL: expected a duration"):
        load_config(workdir=project)


def test_precedence_cli_over_env_over_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config(workdir=project).environment == "staging"
    monkeypatch.setenv("DRILLBOOK_ENVIRONMENT", "qa")
    monkeypatch.setenv("DRILLBOOK_PROBE_INTERVAL", "2s")
    cfg = load_config(workdir=project)
    assert (cfg.environment, cfg.defaults.probe_interval_s) == ("qa", 2.0)
    cfg = load_config(Overrides(environment="prod-eu", probe_interval_s=0.5), workdir=project)
    assert (cfg.environment, cfg.defaults.probe_interval_s, cfg.production) == (
        "prod-eu",
        0.5,
        True,
    )


def test_pyproject_section_is_read_when_there_is_no_drillbook_yaml(project: Path) -> None:
    (project / "drillbook.yaml").unlink()
    (project / "pyproject.toml").write_text(
        '[tool.drillbook]\nenvironment = "qa"\n[tool.drillbook.targets.web]\nbackend = "local"\n'
    )
    cfg = load_config(workdir=project)
    assert cfg.environment == "qa" and cfg.targets["web"].backend == "local"
    assert cfg.source == "pyproject.toml [tool.drillbook]"
