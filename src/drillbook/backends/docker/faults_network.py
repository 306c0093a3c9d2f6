"""``docker.disconnect``: a real network partition, by detaching the container from networks.

Why keep aliases and static addresses in ``state()``: other containers find the target by its
network aliases, and a reconnect without them would "heal" the partition while the service stays
unreachable by name. Revert reconnects each network with exactly what it had, from state alone.

Ports published on the host go through the container's network endpoint, so a disconnected
container is also unreachable on its published ports: the host-side HTTP probe sees the outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.docker.common import DockerFault
from drillbook.errors import FaultError

__all__ = ["DisconnectFault", "connect", "networks_of"]


def networks_of(data: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if data is None:
        return {}
    nets: Mapping[str, Any] = data.get("NetworkSettings", {}).get("Networks") or {}
    return nets


def connect(client: Any, container: str, network: str, endpoint: Mapping[str, Any]) -> None:
    """Connect with the aliases (minus the auto-added short ID) and static IPs it had."""
    cid = str(endpoint.get("container_id", ""))
    aliases = [a for a in (endpoint.get("aliases") or []) if a != cid[:12]]
    client.api.connect_container_to_network(
        container,
        network,
        aliases=aliases or None,
        ipv4_address=endpoint.get("ipv4_address") or None,
        ipv6_address=endpoint.get("ipv6_address") or None,
        links=endpoint.get("links") or None,
    )


class DisconnectFault(DockerFault):
    name = "docker.disconnect"

    def _wanted(self, nets: Mapping[str, Any]) -> list[str]:
        param = self.ctx.param("network") or self.ctx.param("networks")
        if param is None:
            return list(nets)
        wanted = [param] if isinstance(param, str) else [str(n) for n in param]
        missing = [n for n in wanted if n not in nets]
        if missing:
            raise FaultError(f"docker.disconnect: not connected to {', '.join(missing)}")
        return wanted

    def describe(self) -> str:
        param = self.ctx.param("network") or self.ctx.param("networks") or "every network"
        return f"docker.disconnect from {param}"

    def inject(self) -> None:
        self._state["containers"] = []
        for c in self.containers():
            data = self.must_inspect(c.id)
            nets = networks_of(data)
            saved: dict[str, Any] = {}
            for net in self._wanted(nets):
                ep = nets[net]
                ipam = ep.get("IPAMConfig") or {}
                saved[net] = {
                    "container_id": data["Id"],
                    "aliases": list(ep.get("Aliases") or []),
                    "ipv4_address": ipam.get("IPv4Address"),
                    "ipv6_address": ipam.get("IPv6Address"),
                    "links": list(ep.get("Links") or []),
                }
            if not saved:
                raise FaultError(f"docker.disconnect: {c.name} is on no network to disconnect")
            self.records.append({**self.identity(data), "networks": saved})
        for rec in self.records:
            for net in rec["networks"]:
                self.client.api.disconnect_container_from_network(rec["id"], net, force=True)

    def verify_injected(self) -> bool:
        for rec in self.records:
            now = networks_of(self.inspect(rec["id"]))
            if any(net in now for net in rec["networks"]):
                return False
        return True

    def revert(self) -> None:
        self._revert_notes = []
        for rec in self.records:
            # A re-created container (Compose, an operator) is the same target: reconnect it.
            data = self.must_current(rec)
            now = networks_of(data)
            for net, endpoint in rec["networks"].items():
                if net in now:
                    continue
                connect(self.client, str(data["Id"]), net, endpoint)
            self.note_reverted(rec)

    def verify_reverted(self) -> bool:
        for rec in self.records:
            now = networks_of(self.current(rec))
            for net, endpoint in rec["networks"].items():
                if net not in now:
                    return False
                cid = str(endpoint.get("container_id", ""))
                want = {a for a in endpoint.get("aliases") or [] if a != cid[:12]}
                have = set(now[net].get("Aliases") or [])
                if not want <= have:
                    return False
        return True
