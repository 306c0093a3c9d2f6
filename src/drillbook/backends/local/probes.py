"""Probes any backend can use: ``http``, ``tcp``, ``command`` and ``python``.

``http`` and ``tcp`` are native asyncio so hundreds can run at sub-second intervals on one loop;
``command`` and ``python`` block and run in the scheduler's thread pool.
"""

from __future__ import annotations

import asyncio
import importlib
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from drillbook.backends.base import Context, Probe
from drillbook.backends.local.service import LocalService
from drillbook.errors import ConfigError
from drillbook.model import ProbeResult

__all__ = ["CommandProbe", "HttpProbe", "PythonProbe", "TcpProbe"]

MAX_BODY = 64 * 1024


def _timeout(ctx: Context, default: float = 2.0) -> float:
    from drillbook.durations import parse_duration

    try:
        return parse_duration(ctx.param("timeout", default), allow_zero=False)
    except ValueError as exc:
        raise ConfigError(str(exc), field="timeout") from None


class HttpProbe(Probe):
    """GET a URL; ok when the status matches (default 200) and the body contains ``expect_body``.

    ``url:`` explicit, or derived from a local target's port and ``health`` path."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        url = ctx.param("url")
        self._service: LocalService | None = None
        if not url:
            if len(ctx.targets) == 1 and ctx.targets[0].backend == "local":
                self._service = LocalService(ctx.targets[0], ctx.state_dir, ctx.workdir)
            else:
                raise ConfigError("the http probe needs `url:` (or a local target)", field="url")
        self._url = str(url) if url else None
        self.expect_status = int(ctx.param("expect_status", 200))
        self.expect_body = ctx.param("expect_body")
        self.timeout = _timeout(ctx)
        self.method = str(ctx.param("method", "GET")).upper()

    @property
    def url(self) -> str:
        if self._url is None:
            assert self._service is not None
            return self._service.url(self.ctx.param("path"))
        return self._url

    def _judge(self, status: int, body: bytes, elapsed: float) -> ProbeResult:
        text = body[:MAX_BODY].decode("utf-8", "replace")
        if status != self.expect_status:
            return ProbeResult(
                False, elapsed, f"HTTP {status} (expected {self.expect_status})", status
            )
        if self.expect_body is not None and str(self.expect_body) not in text:
            return ProbeResult(
                False, elapsed, f"HTTP {status} without {self.expect_body!r}", status
            )
        return ProbeResult(True, elapsed, f"HTTP {status}", status)

    async def acheck(self) -> ProbeResult:
        try:
            url = self.url
        except ConfigError as exc:
            return ProbeResult(False, 0.0, str(exc))
        parts = urlsplit(url)
        if parts.scheme != "http":
            return await super().acheck()
        start = time.perf_counter()
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(
                    f"{self.method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "User-Agent: drillbook-probe\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
                fields = status_line.split()
                if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
                    return ProbeResult(
                        False, time.perf_counter() - start, f"not HTTP: {status_line[:60]!r}"
                    )
                status = int(fields[1])
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                body = await reader.read(MAX_BODY) if self.expect_body is not None else b""
        except TimeoutError:
            return ProbeResult(
                False, time.perf_counter() - start, f"timed out after {self.timeout:g}s"
            )
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return ProbeResult(False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        finally:
            if writer is not None:
                writer.close()
        return self._judge(status, body, time.perf_counter() - start)

    def check(self) -> ProbeResult:
        start = time.perf_counter()
        request = urllib.request.Request(
            self.url, method=self.method, headers={"User-Agent": "drillbook-probe"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return self._judge(resp.status, resp.read(MAX_BODY), time.perf_counter() - start)
        except urllib.error.HTTPError as exc:
            return self._judge(
                exc.code, exc.read(MAX_BODY) if exc.fp else b"", time.perf_counter() - start
            )
        except (OSError, ValueError) as exc:
            return ProbeResult(False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")


class TcpProbe(Probe):
    """Ok when a TCP connection to ``host:port`` opens within the timeout."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.host = str(ctx.param("host", "127.0.0.1"))
        port = ctx.param("port")
        if port is None and len(ctx.targets) == 1 and ctx.targets[0].backend == "local":
            port = LocalService(ctx.targets[0], ctx.state_dir, ctx.workdir).port
        if not isinstance(port, int):
            raise ConfigError("the tcp probe needs `port:`", field="port")
        self.port = port
        self.timeout = _timeout(ctx)

    async def acheck(self) -> ProbeResult:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
            writer.close()
            return ProbeResult(
                True, time.perf_counter() - start, f"connected {self.host}:{self.port}"
            )
        except TimeoutError:
            return ProbeResult(
                False, time.perf_counter() - start, f"timed out after {self.timeout:g}s"
            )
        except OSError as exc:
            return ProbeResult(False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")

    def check(self) -> ProbeResult:
        return asyncio.run(self.acheck())


class CommandProbe(Probe):
    """Run a command; ok when it exits with ``expect_exit`` (default 0) within the timeout."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        cmd = ctx.param("command")
        if not cmd:
            raise ConfigError("the command probe needs `command:`", field="command")
        self.argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        self.expect_exit = int(ctx.param("expect_exit", 0))
        self.timeout = _timeout(ctx, 10.0)

    def check(self) -> ProbeResult:
        start = time.perf_counter()
        try:
            out = subprocess.run(
                self.argv,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                cwd=self.ctx.workdir,
            )
        except subprocess.TimeoutExpired:
            return ProbeResult(
                False, time.perf_counter() - start, f"timed out after {self.timeout:g}s"
            )
        except OSError as exc:
            return ProbeResult(False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        tail = (out.stdout or out.stderr or b"").decode(errors="replace").strip().splitlines()[
            -1:
        ] or [""]
        ok = out.returncode == self.expect_exit
        return ProbeResult(
            ok,
            time.perf_counter() - start,
            f"exit {out.returncode}: {tail[0][:200]}",
            out.returncode,
        )


class PythonProbe(Probe):
    """Call ``callable: package.module:function``; it returns a bool or a ProbeResult.

    The function receives the probe's params as keyword arguments (minus ``callable``)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        spec = ctx.param("callable")
        if not isinstance(spec, str) or ":" not in spec:
            raise ConfigError(
                "the python probe needs `callable: package.module:function`", field="callable"
            )
        module_name, _, func_name = spec.partition(":")
        try:
            self.func: Any = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import {spec}: {exc}", field="callable") from None
        self.kwargs = {k: v for k, v in ctx.params.items() if k not in ("callable", "timeout")}

    def check(self) -> ProbeResult:
        start = time.perf_counter()
        value = self.func(**self.kwargs)
        if isinstance(value, ProbeResult):
            return value
        return ProbeResult(bool(value), time.perf_counter() - start, f"returned {value!r}"[:200])
