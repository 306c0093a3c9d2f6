"""``network.packet_loss``: real packet loss with iptables' ``statistic`` match, inside a network
namespace.

Why a namespace and not the host: a DROP rule on the host's INPUT chain can cut the very session
that would revert it (ssh, the harness's own connections), and the fault proxy already covers the
host's TCP paths. In a namespace (a container's, or one made for the drill) the rule drops a random
share of the packets the kernel delivers there, which TCP turns into retransmissions and stalls:
loss as users see it. Each rule carries the comment ``drillbook:<tag>``, so revert deletes exactly
its own rules, in any process, however many times it runs.

Needs ``ip`` (iproute2), ``iptables`` and CAP_NET_ADMIN (root). Where ``sch_netem`` exists, ``tc
netem`` would be the usual tool; this kernel has none, see docs/faults/network.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Context, Fault, Selection
from drillbook.errors import ConfigError, FaultError

__all__ = ["PacketLoss"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


class PacketLoss(Fault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        netns = ctx.param("netns")
        if not isinstance(netns, str) or not netns:
            raise ConfigError(
                "network.packet_loss needs `netns:` (a network namespace)", field="netns"
            )
        self.netns = netns
        self.probability = float(ctx.param("probability", 0.0))
        if not 0 < self.probability <= 1:
            raise ConfigError("probability must be in (0, 1]", field="probability")
        self.chain = str(ctx.param("chain", "INPUT"))
        self.protocol = str(ctx.param("protocol", "all"))
        port = ctx.param("port")
        self.port = int(port) if port is not None else None
        if self.port is not None and self.protocol not in ("tcp", "udp"):
            raise ConfigError("`port` needs protocol tcp or udp", field="port")
        self.tag = ""

    def _iptables(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, "iptables", "-w", *args]

    def _match(self) -> list[str]:
        spec = ["-p", self.protocol]
        if self.port is not None:
            spec += ["--dport", str(self.port)]
        return [
            *spec,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            f"{self.probability:.6f}",
            "-m",
            "comment",
            "--comment",
            f"drillbook:{self.tag}",
            "-j",
            "DROP",
        ]

    def resolve(self) -> Selection:
        if not self.tag:
            self.tag = os.urandom(6).hex()
        return Selection((f"netns {self.netns} {self.chain}",), 1)

    def preflight(self) -> None:
        for tool in ("ip", "iptables"):
            if shutil.which(tool) is None:
                raise FaultError(f"network.packet_loss needs `{tool}` on PATH")
        listed = _run(["ip", "netns", "list"])
        names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
        if self.netns not in names:
            raise FaultError(f"no network namespace {self.netns!r} (ip netns list)")

    def plan(self) -> str:
        self.resolve()
        where = f" to port {self.port}" if self.port is not None else ""
        return (
            f"drop {self.probability:.1%} of {self.protocol} packets{where} on {self.chain} in "
            f"network namespace {self.netns} (iptables statistic, comment drillbook:{self.tag})"
        )

    def inject(self) -> None:
        self.resolve()
        done = _run(self._iptables("-I", self.chain, *self._match()))
        if done.returncode != 0:
            raise FaultError(f"iptables refused the rule: {done.stderr.strip()[-300:]}")

    def _own_rules(self) -> list[str]:
        listed = _run(self._iptables("-S", self.chain))
        if listed.returncode != 0:
            raise FaultError(f"iptables -S failed: {listed.stderr.strip()[-300:]}")
        mark = f"drillbook:{self.tag}"
        return [line for line in listed.stdout.splitlines() if self.tag and mark in line]

    def verify_injected(self) -> bool:
        return bool(self._own_rules())

    def revert(self) -> None:
        if not self.tag:
            return
        names = _run(["ip", "netns", "list"]).stdout
        if self.netns not in {ln.split()[0] for ln in names.splitlines() if ln.strip()}:
            return  # the namespace is gone, and its rules with it
        for line in self._own_rules():
            args = shlex.split(line)
            if args[:1] == ["-A"]:
                _run(self._iptables("-D", *args[1:]))

    def verify_reverted(self) -> bool:
        if not self.tag:
            return True
        names = _run(["ip", "netns", "list"]).stdout
        if self.netns not in {ln.split()[0] for ln in names.splitlines() if ln.strip()}:
            return True
        return not self._own_rules()

    def state(self) -> Mapping[str, Any]:
        return {"tag": self.tag, "netns": self.netns, "chain": self.chain}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.tag = str(state.get("tag") or "")
