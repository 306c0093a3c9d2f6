"""Probes any backend can use: ``http``, ``tcp``, ``command`` and ``python``.

``http`` and ``tcp`` are native asyncio so hundreds can run at sub-second intervals on one loop;
``command`` and ``python`` block and run in the scheduler's thread pool.
"""

from __future__ import annotations

import asyncio
import importlib
import shlex
import subprocess
from typing import Any
from urllib.parse import urlsplit

from drillbook.backends.base import Context, Probe
from drillbook.backends.local import httpclient
from drillbook.backends.local.service import LocalService
from drillbook.clock import get_clock
from drillbook.errors import ConfigError
from drillbook.model import ProbeResult
from drillbook.redact import redact_text

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

    ``url:`` explicit, or derived from a local target's port and ``health`` path. Plain http runs
    on the scheduler's loop and keeps its connection open between probes (``keepalive: false``
    opens one per probe; see :mod:`drillbook.backends.local.httpclient` for why); https goes
    through urllib in the thread pool."""

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
        self.keepalive = bool(ctx.param("keepalive", True))
        self._heads: dict[str, tuple[str, int, bytes]] = {}
        self._conn: httpclient.HttpConnection | None = None
        self.deadline_s = self.timeout  # acheck bounds itself (see Probe.deadline_s)

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

    def _head(self, url: str) -> tuple[str, int, bytes] | None:
        """(host, port, request bytes) for a plain-http URL, built once per URL; None otherwise."""
        cached = self._heads.get(url)
        if cached is not None:
            return cached
        parts = urlsplit(url)
        if parts.scheme != "http":
            return None
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = f"[{host}]" if ":" in host else host
        if parts.port:
            authority += f":{port}"
        head = (
            f"{self.method} {path} HTTP/1.1\r\nHost: {authority}\r\n"
            f"User-Agent: drillbook-probe\r\nAccept: */*\r\n"
            + ("" if self.keepalive else "Connection: close\r\n")
            + "\r\n"
        ).encode("latin-1", "replace")
        entry = (host, port, head)
        if len(self._heads) < 8:  # a LocalService's URL can change with its port; stay bounded
            self._heads[url] = entry
        return entry

    async def acheck(self) -> ProbeResult:
        try:
            url = self.url
        except ConfigError as exc:
            return ProbeResult(False, 0.0, str(exc))
        target = self._head(url)
        if target is None:  # https and friends: urllib in the thread pool, bounded here too
            start = get_clock().monotonic()
            try:
                async with asyncio.timeout(self.timeout):
                    return await super().acheck()
            except TimeoutError:
                return ProbeResult(
                    False, get_clock().monotonic() - start, f"timed out after {self.timeout:g}s"
                )
        host, port, head = target
        start = get_clock().monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                response, conn = await httpclient.request(
                    host, port, head, method=self.method, conn=self._conn
                )
        except TimeoutError:
            self._drop()
            return ProbeResult(
                False, get_clock().monotonic() - start, f"timed out after {self.timeout:g}s"
            )
        except (OSError, ValueError) as exc:
            self._drop()
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{type(exc).__name__}: {exc}"
            )
        except BaseException:
            self._drop()
            raise
        if self.keepalive and response.reusable:
            self._conn = conn
        else:
            conn.close()
            self._conn = None
        return self._judge(response.status, response.body, get_clock().monotonic() - start)

    async def aopen(self) -> None:
        if not self.keepalive or self._conn is not None:
            return
        try:
            target = self._head(self.url)
            if target is None:
                return
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self.timeout):
                _, conn = await loop.create_connection(
                    lambda: httpclient.HttpConnection(loop), target[0], target[1]
                )
            self._conn = conn
        except (OSError, ConfigError, TimeoutError):
            pass  # the first tick will say what is wrong

    def _drop(self) -> None:
        """Never reuse a connection a probe gave up on: a late answer would be misread."""
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.loop.is_closed():
            if conn.loop.is_running():
                conn.loop.call_soon_threadsafe(conn.abort)
            else:
                conn.abort()

    def check(self) -> ProbeResult:
        # urllib (http.client, email) only here: https and the synchronous path, not every run.
        import urllib.error
        import urllib.request

        start = get_clock().monotonic()
        request = urllib.request.Request(
            self.url, method=self.method, headers={"User-Agent": "drillbook-probe"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return self._judge(
                    resp.status, resp.read(MAX_BODY), get_clock().monotonic() - start
                )
        except urllib.error.HTTPError as exc:
            return self._judge(
                exc.code, exc.read(MAX_BODY) if exc.fp else b"", get_clock().monotonic() - start
            )
        except (OSError, ValueError) as exc:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{type(exc).__name__}: {exc}"
            )


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
        start = get_clock().monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
            writer.close()
            return ProbeResult(
                True, get_clock().monotonic() - start, f"connected {self.host}:{self.port}"
            )
        except TimeoutError:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"timed out after {self.timeout:g}s"
            )
        except OSError as exc:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{type(exc).__name__}: {exc}"
            )

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
        start = get_clock().monotonic()
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
                False, get_clock().monotonic() - start, f"timed out after {self.timeout:g}s"
            )
        except OSError as exc:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{type(exc).__name__}: {exc}"
            )
        text = (out.stdout or out.stderr or b"").decode(errors="replace").strip()
        tail = redact_text(text).splitlines()[-1:] or [""]  # redact before cutting (see steps)
        ok = out.returncode == self.expect_exit
        return ProbeResult(
            ok,
            get_clock().monotonic() - start,
            f"exit {out.returncode}: {tail[0][:200]}",
            out.returncode,
        )


class PythonProbe(Probe):
    """Call ``callable: package.module:function``; it returns a bool or a ProbeResult.

    The function receives ``kwargs:`` (a mapping) as keyword arguments. A mapping of its own,
    not every other key, so a mistyped probe parameter is an error, not an argument."""

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
        self.kwargs = dict(ctx.param("kwargs") or {})

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        value = self.func(**self.kwargs)
        if isinstance(value, ProbeResult):
            return value
        return ProbeResult(
            bool(value), get_clock().monotonic() - start, f"returned {value!r}"[:200]
        )
