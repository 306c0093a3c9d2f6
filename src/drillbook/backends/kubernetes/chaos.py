"""``k8s.chaos_resource``: drive Chaos Mesh or Litmus from a drill.

Teams that already run a chaos engine can keep its fault catalogue and let drillbook do the rest
(timing, verdicts, evidence): the fault creates the engine's custom resource (``PodChaos``,
``NetworkChaos``, ``ChaosEngine``...) in the target's namespace and deletes it on revert, which
both engines treat as "stop the experiment". It refuses when the CRD is not served, and when the
resource's own selector reaches into a namespace outside the allowlist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import Selection
from drillbook.errors import ConfigError, FaultError, SafetyError

from .client import describe
from .common import KubeFault, T, is_not_found, managed_labels, short_hash

__all__ = ["ChaosResource"]


def _reached_namespaces(kind: str, spec: Mapping[str, Any]) -> list[str]:
    """Namespaces the experiment's own selector names (Chaos Mesh and Litmus spellings)."""
    out: list[str] = []
    sel = spec.get("selector")
    if isinstance(sel, Mapping):
        out += [str(n) for n in sel.get("namespaces") or []]
        for key in sel.get("pods") or {}:
            out.append(str(key))
    appinfo = spec.get("appinfo")
    if isinstance(appinfo, Mapping) and appinfo.get("appns"):
        out.append(str(appinfo["appns"]))
    return out


class ChaosResource(KubeFault):
    """Create a chaos engine's custom resource; revert deletes it."""

    needs_selector = False  # the resource carries its own selector, checked against the allowlist

    def _gvk(self) -> tuple[str, str, str]:
        api_version = str(self.ctx.param("api_version") or "")
        kind = str(self.ctx.param("kind") or "")
        group, _, version = api_version.partition("/")
        if not group or not version or not kind:
            raise ConfigError("expected api_version group/version and kind", field="api_version")
        return group, version, kind

    def _plural(self) -> str:
        if "plural" in self._state:
            return str(self._state["plural"])
        group, version, kind = self._gvk()
        names = self.kube.served(group, version)
        if names is None or kind not in names:
            raise FaultError(
                f"{kind}.{group}/{version} is not served here: is the chaos engine's CRD installed?"
            )
        res = self.kube.custom.get_api_resources(group, version, _request_timeout=T)
        plural = next(r.name for r in res.resources if r.kind == kind and "/" not in r.name)
        self._state["plural"] = plural
        return str(plural)

    def _name(self) -> str:
        name = self._state.get("name") or self.ctx.param("name")
        if not name:
            _, _, kind = self._gvk()
            name = f"drillbook-{kind.lower()}-{short_hash(self.ns, str(self.ctx.param('spec')))}"
        return str(name)

    def check_static(self) -> None:
        super().check_static()
        spec = self.ctx.param("spec")
        if not isinstance(spec, Mapping):
            raise ConfigError("expected a mapping", field="spec")
        _, _, kind = self._gvk()
        for ns in _reached_namespaces(kind, spec):
            if ns not in self.scope.namespaces:
                raise SafetyError(
                    f"{kind} selector reaches namespace {ns!r}, outside allowed_namespaces;"
                    " nothing was touched"
                )

    def resolve(self) -> Selection:
        self.check_static()
        _, _, kind = self._gvk()
        return Selection(chosen=(f"{kind.lower()}/{self.ns}/{self._name()}",), candidates=1)

    def preflight(self) -> None:
        super().preflight()
        self._plural()

    def plan(self) -> str:
        group, version, kind = self._gvk()
        return f"create {kind}.{group}/{version} {self.ns}/{self._name()}"

    def inject(self) -> None:
        self.guard_inject()
        group, version, kind = self._gvk()
        plural = self._plural()
        name = self._name()
        self._state.update(group=group, version=version, name=name)
        body = {
            "apiVersion": f"{group}/{version}",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": managed_labels(self.target.name),
                "annotations": {"drillbook.io/changed-by": self.token()},
            },
            "spec": dict(self.ctx.param("spec")),
        }
        try:
            self.kube.custom.create_namespaced_custom_object(
                group, version, self.ns, plural, body, _request_timeout=T
            )
        except Exception as exc:
            if getattr(exc, "status", None) != 409:
                raise FaultError(f"creating {kind} {name}: {describe(exc)}") from exc

    def _exists(self) -> bool:
        group = str(self._state.get("group") or self._gvk()[0])
        version = str(self._state.get("version") or self._gvk()[1])
        try:
            self.kube.custom.get_namespaced_custom_object(
                group, version, self.ns, self._plural(), self._name(), _request_timeout=T
            )
            return True
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise

    def verify_injected(self) -> bool:
        return self._exists()

    def revert(self) -> None:
        group = str(self._state.get("group") or self._gvk()[0])
        version = str(self._state.get("version") or self._gvk()[1])
        try:
            self.kube.custom.delete_namespaced_custom_object(
                group, version, self.ns, self._plural(), self._name(), _request_timeout=T
            )
        except Exception as exc:
            if not is_not_found(exc):
                raise

    def verify_reverted(self) -> bool:
        return not self._exists()
