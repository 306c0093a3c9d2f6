"""The fault proxies' process: started detached, found again by pid file, stopped by pid.

Why a process of its own rather than a thread of the harness: the fault must last exactly as long
as its intent. A harness killed with SIGKILL leaves it running (in its own session), and
``drillbook rollback`` or the TTL watchdog, in another process, stops it by the pid recorded in
the intent (or, when the harness died before that line was written, by the pid file whose path
the intent named before anything started). Each proxy carries a random tag on its command line,
so a recycled pid is never mistaken for it; and it exits by itself at ``exit_at``, a backstop if
nothing else ever runs.

``python -m drillbook.degrade.proxyproc CONFIG.json TAG``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from drillbook.clock import epoch, get_clock

__all__ = ["main", "port_open", "proxy_alive", "spawn", "stop"]

_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] in ("Z", "X")
    except (OSError, IndexError):
        return True


def proxy_alive(pid: int | None, tag: str) -> bool:
    """The proxy with this tag runs as ``pid`` (a recycled pid runs something else)."""
    _reap()
    if not pid:
        return False
    return tag in _cmdline(pid) and not _zombie(pid)


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def spawn(config_path: Path, tag: str, pidfile: Path, log_path: Path, wait_s: float) -> int:
    """Start the proxy detached and wait until it listens (its pid file appears); its pid."""
    here = Path(__file__).resolve().parent.parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(here), env.get("PYTHONPATH", "")) if p)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drillbook.degrade.proxyproc", str(config_path), tag],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    deadline = get_clock().monotonic() + wait_s
    while get_clock().monotonic() < deadline:
        if read_pidfile(pidfile) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            break
        get_clock().sleep(0.01)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    tail = (
        log_path.read_text(errors="replace").strip().splitlines()[-3:] if log_path.exists() else []
    )
    raise RuntimeError(
        f"fault proxy did not start (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
    )


def stop(pid: int | None, tag: str, timeout_s: float = 5.0) -> None:
    """SIGTERM the proxy, SIGKILL after ``timeout_s``; nothing when it is not (or no longer) it."""
    if not proxy_alive(pid, tag):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = get_clock().monotonic() + timeout_s
    while get_clock().monotonic() < deadline:
        if not proxy_alive(pid, tag):
            return
        get_clock().sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = get_clock().monotonic() + timeout_s
    while get_clock().monotonic() < deadline and proxy_alive(pid, tag):
        get_clock().sleep(0.02)


async def _serve(config: dict[str, Any], pidfile: Path) -> None:
    from drillbook.degrade.httpproxy import HttpFaults, serve_http
    from drillbook.degrade.tcpproxy import Toxics, serve_tcp

    listen = (str(config["listen"][0]), int(config["listen"][1]))
    upstream = (str(config["upstream"][0]), int(config["upstream"][1]))
    if config["kind"] == "http":
        server = await serve_http(listen, upstream, HttpFaults.from_config(config["faults"]))
    else:
        server = await serve_tcp(listen, upstream, Toxics.from_config(config["faults"]))
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, done.set)
    loop.call_later(max(0.0, float(config["exit_at"]) - epoch()), done.set)
    tmp = pidfile.with_name(pidfile.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, pidfile)  # the pid file says "listening": written after the bind
    try:
        await done.wait()
    finally:
        server.close()
        with contextlib.suppress(OSError):
            pidfile.unlink()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m drillbook.degrade.proxyproc CONFIG.json TAG", file=sys.stderr)
        return 2
    config_path = Path(args[0])
    config = json.loads(config_path.read_text())
    if config.get("tag") != args[1]:
        print("tag mismatch: refusing a config that is not this proxy's", file=sys.stderr)
        return 2
    asyncio.run(_serve(config, Path(config["pidfile"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
