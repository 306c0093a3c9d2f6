"""``docker.bad_image``: roll a broken image tag out to the container, as a bad deploy would.

The container is re-created with the same config from the broken tag (settings the old image
supplied, such as its CMD, give way to the new image's). ``state()`` keeps the full inspect of the
good container and its exact image ID, so revert puts back precisely what ran before even if the
good tag has moved since. The new container carries ``drillbook.previous-image`` so the
``docker.rollback_image`` step knows the last good tag, as a deploy tool's history would.
"""

from __future__ import annotations

from typing import Any

from drillbook.backends.docker.common import DockerFault, duration_param, is_running, wait_state
from drillbook.backends.docker.images import ensure_image
from drillbook.backends.docker.recreate import replace, start_if_needed
from drillbook.backends.docker.sealed import discard, seal, unseal
from drillbook.errors import ConfigError, FaultError

__all__ = ["PREVIOUS_IMAGE_LABEL", "BadImageFault", "image_id"]

PREVIOUS_IMAGE_LABEL = "drillbook.previous-image"


def image_id(client: Any, ref: str) -> str:
    value: str = client.api.inspect_image(ref)["Id"]
    return value


class BadImageFault(DockerFault):
    name = "docker.bad_image"

    def _image(self) -> str:
        image = self.ctx.param("image")
        if not image:
            raise ConfigError("docker.bad_image needs image: the broken tag", field="image")
        return str(image)

    def describe(self) -> str:
        return f"docker.bad_image rolling out {self._image()}"

    def preflight(self) -> None:
        super().preflight()
        # Before anything is touched: the broken tag must exist (or be one drillbook builds).
        ensure_image(self.client, self._image())

    def inject(self) -> None:
        bad = self._image()
        ensure_image(self.client, bad)
        bad_id = image_id(self.client, bad)
        self._state["containers"] = []
        templates: list[Any] = []
        for c in self.containers():
            data = self.must_inspect(c.id)
            templates.append(data)
            self.records.append(
                {
                    "name": str(data["Name"]).lstrip("/"),
                    "previous_image": data["Config"]["Image"],
                    "previous_image_id": data["Image"],
                    "bad_image": bad,
                    "bad_image_id": bad_id,
                    "inspect": seal(self.ctx, data),
                }
            )
        for rec, template in zip(self.records, templates, strict=True):
            current = self.inspect(rec["name"])
            replace(
                self.client,
                current,
                template,
                image=bad,
                labels={PREVIOUS_IMAGE_LABEL: rec["previous_image"]},
                start=True,
                grace_s=duration_param(self.ctx, "grace", 10.0),
            )

    def verify_injected(self) -> bool:
        return all(
            (self.inspect(rec["name"]) or {}).get("Image") == rec["bad_image_id"]
            for rec in self.records
        )

    def revert(self) -> None:
        for rec in self.records:
            saved, complete = unseal(rec["inspect"])
            current = self.inspect(rec["name"])
            if current is not None and current.get("Image") == rec["previous_image_id"]:
                if saved["State"].get("Running"):
                    start_if_needed(self.client, rec["name"])
                discard(rec["inspect"])
                continue
            if not complete and current is not None:
                # The bad container was created with the same environment: take it from there.
                env = current["Config"].get("Env")
                saved = {**saved, "Config": {**saved["Config"], "Env": env}}
            replace(self.client, current, saved, grace_s=duration_param(self.ctx, "grace", 10.0))
            if saved["State"].get("Running") and not wait_state(
                self.ctx, self.client, rec["name"], is_running, self.timeout_s()
            ):
                raise FaultError(f"docker.bad_image revert: {rec['name']} is not running again")
            discard(rec["inspect"])

    def verify_reverted(self) -> bool:
        for rec in self.records:
            data = self.inspect(rec["name"])
            if data is None or data.get("Image") != rec["previous_image_id"]:
                return False
            if rec["inspect"]["State"].get("Running") and not is_running(data):
                return False
        return True
