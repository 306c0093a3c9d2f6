"""``drillbook sandbox up|down|status``: the embedded sandbox from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _root(args: argparse.Namespace) -> Path:
    if getattr(args, "root", None):
        return Path(args.root).resolve()
    config = getattr(args, "config", None)
    base = Path(config).resolve().parent if config else Path.cwd()
    return (base / ".sandbox").resolve()


def _up(args: argparse.Namespace) -> int:
    from drillbook.backends.postgres.sandbox.lifecycle import up
    from drillbook.backends.postgres.sandbox.nodes import SandboxError

    try:
        state = up(_root(args), sync=bool(args.sync))
    except (SandboxError, FileNotFoundError, OSError) as exc:
        print(f"drillbook sandbox up: {exc}")
        return 4
    nodes = state["nodes"]
    print(f"sandbox up at {state['root']}")
    for name in sorted(nodes):
        print(f"  {name:9} 127.0.0.1:{nodes[name]['port']}  pid {nodes[name]['pid']}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from drillbook.backends.postgres.sandbox.lifecycle import down
    from drillbook.backends.postgres.sandbox.nodes import SandboxError

    try:
        done = down(_root(args))
    except (SandboxError, OSError) as exc:
        print(f"drillbook sandbox down: {exc}")
        return 4
    print("\n".join(done) if done else "no sandbox to stop")
    return 0


def _status(args: argparse.Namespace) -> int:
    from drillbook.backends.postgres.sandbox.lifecycle import sandbox_status

    status: dict[str, Any] = sandbox_status(_root(args))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(f"sandbox {status['root']}: {'up' if status['up'] else 'down'}")
        if status.get("serving"):
            print(f"  router -> {status['serving']}")
        for name, node in sorted(status["nodes"].items()):
            role = node.get("role", "")
            print(f"  {name:9} 127.0.0.1:{node['port']}  pid {node['pid']}  {role}".rstrip())
    return 0 if status["up"] else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="start, stop or inspect the embedded sandbox")
    actions = parser.add_subparsers(dest="sandbox_action", required=True)
    for name, handler, text in (
        ("up", _up, "start region-a primary, region-b standby, the app and the router"),
        ("down", _down, "stop every sandbox process and delete the sandbox folder"),
        ("status", _status, "show nodes, roles and the serving region (exit 1 when down)"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--root", help="sandbox folder (default: .sandbox next to drillbook.yaml)")
        sub.set_defaults(handler=handler)
        if name == "up":
            sub.add_argument("--sync", action="store_true", help="synchronous standby")
        if name == "status":
            sub.add_argument("--json", action="store_true", help="machine-readable output")
