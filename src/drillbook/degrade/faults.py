"""``network.degrade`` (TCP toxics) and ``http.faults`` (HTTP errors, latency, aborts).

Each starts a fault proxy (:mod:`drillbook.degrade.proxyproc`) between clients and a dependency,
then puts the traffic through it by switching a route the clients re-read:

* a local target (``backend: local``): ``.drillbook/local/<name>.route`` holds the proxy's port,
  and drillbook's clients of that target (probes, SLO probes) use it instead of the service's;
* the sandbox app (``sandbox: app``, network.degrade only): ``<sandbox>/app-db-route.json`` sends
  the app's database connections for the serving region through the proxy;
* a Docker target: ``container_port`` (the upstream is where Docker publishes it on the host)
  and ``listen_port``; clients use the proxy's port in front of the published one;
* no target: ``upstream: host:port`` and ``listen_port``; the clients must already use that port
  (Toxiproxy's model: the app is configured with the proxy's address).

Everything revert needs (tag, pid file, port, route) is chosen in ``resolve`` and so is in the
intent before the proxy starts; revert removes the route first (traffic goes direct again) and
then stops the proxy.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault, Selection
from drillbook.clock import epoch
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError

__all__ = ["HttpFaultsFault", "NetworkDegrade", "route_port"]

_DEFAULT_LIFETIME_S = 3600.0


def _seconds(ctx: Context, key: str, *, allow_zero: bool = True) -> float | None:
    value = ctx.param(key)
    if value is None:
        return None
    try:
        return parse_duration(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise ConfigError(str(exc), field=key) from None


def _host_port(text: str, key: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"expected host:port, got {text!r}", field=key)
    return host.strip("[]"), int(port)


def _published(ctx: Context, target: Any) -> tuple[str, int]:
    """The host address Docker publishes the target container's ``container_port`` on."""
    from drillbook.backends.docker.engine import client_for
    from drillbook.backends.docker.targets import resolve_target

    raw = ctx.param("container_port")
    if raw is None:
        raise ConfigError(
            f"{target.name}: give `container_port` (e.g. 8080/tcp) or `upstream`",
            field="container_port",
        )
    key = str(raw) if "/" in str(raw) else f"{raw}/tcp"
    found = resolve_target(client_for(ctx.settings), target, running_only=True)
    if not found:
        raise FaultError(f"{target.name}: no running container")
    ports = (found[0].attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(key) or []
    if not bindings:
        raise FaultError(f"{target.name}: {key} is not published on the host")
    host = str(bindings[0].get("HostIp") or "127.0.0.1")
    return ("127.0.0.1" if host in ("0.0.0.0", "") else host), int(bindings[0]["HostPort"])


def route_port(path: Path) -> int | None:
    """The port a route file sends clients to (None: no route, go direct)."""
    try:
        return int(json.loads(path.read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(data)))
    os.replace(tmp, path)


class _ProxyFault(Fault):
    """A fault proxy in the traffic's path; subclasses say which proxy and which faults."""

    kind = "tcp"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.tag = ""
        self.pid: int | None = None
        self.listen_port: int | None = None
        self.upstream: tuple[str, int] | None = None
        self.route: dict[str, Any] | None = None  # {"kind": ..., "path": ..., ...}
        self.where = ""
        self._check_params()

    # -- what subclasses give --------------------------------------------------------------
    def _check_params(self) -> None:
        """Reject impossible parameter combinations before anything is touched."""

    def _faults(self) -> dict[str, Any]:
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    # -- where -----------------------------------------------------------------------------
    @property
    def _dir(self) -> Path:
        return self.ctx.state_dir / "proxies"

    def _paths(self) -> tuple[Path, Path, Path]:
        base = self._dir / f"{self.kind}-{self.tag}"
        return base.with_suffix(".json"), base.with_suffix(".pid"), base.with_suffix(".log")

    def _target_route(self) -> tuple[tuple[str, int], dict[str, Any] | None, str]:
        upstream = self.ctx.param("upstream")
        if not self.ctx.targets:
            if not upstream or self.ctx.param("listen_port") is None:
                raise ConfigError(
                    "without a target, give `upstream: host:port` and `listen_port`",
                    field="upstream",
                )
            up = _host_port(str(upstream), "upstream")
            return up, None, f"{up[0]}:{up[1]}"
        target = self.ctx.target()
        if target.backend == "local":
            from drillbook.backends.local.service import LocalService

            service = LocalService(target, self.ctx.state_dir, self.ctx.workdir)
            port = service.port
            if port is None:
                raise FaultError(f"{target.name}: no known port (is it started?)")
            up = _host_port(str(upstream), "upstream") if upstream else ("127.0.0.1", port)
            return up, {"kind": "local", "path": str(service.route_path)}, target.name
        if target.backend == "postgres" and self.kind == "tcp":
            from drillbook.backends.postgres.sandbox.app import ROUTE_FILE
            from drillbook.backends.postgres.target import pg_target

            pg = pg_target(self.ctx)
            if pg.root is None or pg.node != "app":
                raise ConfigError(
                    f"{target.name}: network.degrade on PostgreSQL acts on the sandbox app's "
                    "database path (a target with `sandbox: app`); for a server of your own "
                    "give `upstream` and `listen_port` and point the app at the proxy",
                    field="target",
                )
            from drillbook.backends.postgres.sandbox.state import load_state, read_router

            region = read_router(pg.root)
            port = int(load_state(pg.root)["nodes"][region]["port"])
            route = {"kind": "sandbox_app", "path": str(pg.root / ROUTE_FILE), "region": region}
            return ("127.0.0.1", port), route, f"{target.name} -> {region} database"
        if target.backend == "docker":
            if self.ctx.param("listen_port") is None:
                raise ConfigError(
                    f"{target.name}: for a container give `listen_port`: clients use the "
                    "proxy's port, in front of the container's published one",
                    field="listen_port",
                )
            if upstream:
                return _host_port(str(upstream), "upstream"), None, target.name
            return _published(self.ctx, target), None, target.name
        raise ConfigError(
            f"{target.name}: {target.backend} targets are not supported by this fault "
            "(local, the sandbox app, docker with upstream, or no target with upstream)",
            field="target",
        )

    def resolve(self) -> Selection:
        if not self.tag:
            from drillbook.backends.local.service import free_port

            self.tag = os.urandom(8).hex()
            self.upstream, self.route, self.where = self._target_route()
            fixed = self.ctx.param("listen_port")
            self.listen_port = int(fixed) if fixed is not None else free_port()
        assert self.upstream is not None
        return Selection((f"{self.where} via 127.0.0.1:{self.listen_port}",), 1)

    def plan(self) -> str:
        self.resolve()
        assert self.upstream is not None
        return (
            f"{self._describe()} between clients of {self.where} and "
            f"{self.upstream[0]}:{self.upstream[1]} (proxy on 127.0.0.1:{self.listen_port})"
        )

    # -- lifecycle -------------------------------------------------------------------------
    def inject(self) -> None:
        from drillbook.degrade import proxyproc

        self.resolve()
        assert self.upstream is not None and self.listen_port is not None
        config_path, pidfile, log = self._paths()
        faults = self._faults()
        duration = _seconds(self.ctx, "duration")
        if duration is not None:
            faults["active_until"] = epoch() + duration
        lifetime = _seconds(self.ctx, "max_lifetime", allow_zero=False) or _DEFAULT_LIFETIME_S
        _write_json(
            config_path,
            {
                "kind": self.kind,
                "tag": self.tag,
                "listen": ["127.0.0.1", self.listen_port],
                "upstream": list(self.upstream),
                "faults": faults,
                "pidfile": str(pidfile),
                "exit_at": epoch() + lifetime,
            },
        )
        try:
            self.pid = proxyproc.spawn(config_path, self.tag, pidfile, log, wait_s=15.0)
        except RuntimeError as exc:
            raise FaultError(str(exc)) from None
        if self.route is not None:
            self._write_route()

    def _write_route(self) -> None:
        assert self.route is not None
        path = Path(self.route["path"])
        if self.route["kind"] == "sandbox_app":
            _write_json(path, {"region": self.route["region"], "port": self.listen_port})
        else:
            _write_json(path, {"port": self.listen_port})

    def _route_is_ours(self) -> bool:
        return self.route is not None and route_port(Path(self.route["path"])) == self.listen_port

    def verify_injected(self) -> bool:
        from drillbook.degrade import proxyproc

        ok = proxyproc.proxy_alive(self.pid, self.tag)
        return ok and (self.route is None or self._route_is_ours())

    def _proxy_pid(self) -> int | None:
        from drillbook.degrade import proxyproc

        if self.pid:
            return self.pid
        _, pidfile, _ = self._paths()
        return proxyproc.read_pidfile(pidfile)

    def revert(self) -> None:
        from drillbook.degrade import proxyproc

        if not self.tag:
            return  # nothing was resolved, so nothing was started
        if self._route_is_ours():
            assert self.route is not None
            with contextlib.suppress(FileNotFoundError):
                Path(self.route["path"]).unlink()
        proxyproc.stop(self._proxy_pid(), self.tag)
        for path in self._paths():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def verify_reverted(self) -> bool:
        from drillbook.degrade import proxyproc

        if not self.tag:
            return True
        return not proxyproc.proxy_alive(self._proxy_pid(), self.tag) and not self._route_is_ours()

    def state(self) -> Mapping[str, Any]:
        return {
            "tag": self.tag,
            "pid": self.pid,
            "listen_port": self.listen_port,
            "upstream": list(self.upstream) if self.upstream else None,
            "route": self.route,
            "where": self.where,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.tag = str(state.get("tag") or "")
        pid = state.get("pid")
        self.pid = int(pid) if pid else None
        port = state.get("listen_port")
        self.listen_port = int(port) if port else None
        up = state.get("upstream")
        self.upstream = (str(up[0]), int(up[1])) if up else None
        route = state.get("route")
        self.route = dict(route) if isinstance(route, Mapping) else None
        self.where = str(state.get("where") or "")


def _ms(ctx: Context, key: str) -> float | None:
    seconds = _seconds(ctx, key)
    return None if seconds is None else seconds * 1000.0


class NetworkDegrade(_ProxyFault):
    """Latency with jitter, a bandwidth cap, stalls, resets or a blackhole on a TCP path."""

    kind = "tcp"

    def _check_params(self) -> None:
        self._faults()

    def _faults(self) -> dict[str, Any]:
        faults: dict[str, Any] = {
            "latency_ms": _ms(self.ctx, "latency") or 0.0,
            "jitter_ms": _ms(self.ctx, "jitter") or 0.0,
            "bandwidth_kbps": float(self.ctx.param("bandwidth_kbps", 0) or 0),
            "timeout_ms": _ms(self.ctx, "timeout"),
            "reset_peer_ms": _ms(self.ctx, "reset_peer"),
            "blackhole": bool(self.ctx.param("blackhole", False)),
            "toxicity": float(self.ctx.param("toxicity", 1.0)),
            "stream": str(self.ctx.param("stream", "downstream")),
        }
        if faults["jitter_ms"] > faults["latency_ms"] and faults["jitter_ms"] > 0:
            raise ConfigError("jitter must not exceed latency", field="jitter")
        return faults

    def _describe(self) -> str:
        f = self._faults()
        parts = []
        if f["latency_ms"]:
            parts.append(f"latency {f['latency_ms']:g}±{f['jitter_ms']:g} ms")
        if f["bandwidth_kbps"]:
            parts.append(f"bandwidth {f['bandwidth_kbps']:g} KiB/s")
        if f["timeout_ms"] is not None:
            parts.append(f"stall (close after {f['timeout_ms']:g} ms)")
        if f["reset_peer_ms"] is not None:
            parts.append(f"reset after {f['reset_peer_ms']:g} ms")
        if f["blackhole"]:
            parts.append("blackhole")
        share = f" on {f['toxicity']:.0%} of connections" if f["toxicity"] < 1 else ""
        return f"{', '.join(parts)} ({f['stream']}){share}"


class HttpFaultsFault(_ProxyFault):
    """A share of HTTP responses replaced by a status, added latency, aborted connections."""

    kind = "http"

    def _check_params(self) -> None:
        self._faults()

    def _faults(self) -> dict[str, Any]:
        faults: dict[str, Any] = {
            "error_rate": float(self.ctx.param("error_rate", 0.0)),
            "status": int(self.ctx.param("status", 503)),
            "abort": float(self.ctx.param("abort", 0.0)),
            "latency_ms": _ms(self.ctx, "latency") or 0.0,
            "jitter_ms": _ms(self.ctx, "jitter") or 0.0,
            "paths": [str(p) for p in self.ctx.param("paths", [])],
        }
        if faults["error_rate"] + faults["abort"] > 1.0:
            raise ConfigError("error_rate + abort must not exceed 1", field="error_rate")
        if faults["jitter_ms"] > faults["latency_ms"] and faults["jitter_ms"] > 0:
            raise ConfigError("jitter must not exceed latency", field="jitter")
        return faults

    def _describe(self) -> str:
        f = self._faults()
        parts = []
        if f["error_rate"]:
            parts.append(f"{f['error_rate']:.0%} answered {f['status']}")
        if f["abort"]:
            parts.append(f"{f['abort']:.0%} aborted")
        if f["latency_ms"]:
            parts.append(f"latency {f['latency_ms']:g}±{f['jitter_ms']:g} ms")
        scope = f" on {', '.join(f['paths'])}" if f["paths"] else ""
        return f"HTTP faults: {', '.join(parts)}{scope}"
