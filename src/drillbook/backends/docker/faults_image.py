"""``docker.bad_image``: roll a broken image out to the container, as a bad deploy would.

The container is re-created with the same config from the broken image (settings the old image
supplied, such as its CMD, give way to the new image's). ``state()`` keeps the full inspect of the
good container and its exact image ID, so revert puts back precisely what ran before even if the
good tag has moved since. The new container carries ``drillbook.previous-image`` so the
``docker.rollback_image`` step knows the last good tag, as a deploy tool's history would.

With ``retag: shop/web:current`` the rollout goes the way a Compose deploy does: that tag (the one
docker-compose.yml names) is moved to the broken image first, and the container runs it by that
tag, so the runbook's own fix works: retag the previous image, then ``docker-compose up -d``.
Why the Compose config-hash label is dropped from the broken container: it says "this container
matches the service's config", which a container drillbook re-created from another image does
not; without it, ``up -d`` converges the service again, as it would after a real bad deploy.
Revert moves the tag back only while it still points at the broken image (an operator's own
retag is theirs), and re-creates the target only if it does not already run the previous image.
"""

from __future__ import annotations

from typing import Any

from drillbook.backends.docker.common import DockerFault, duration_param, is_running
from drillbook.backends.docker.images import ensure_image
from drillbook.backends.docker.recreate import replace, start_if_needed
from drillbook.backends.docker.sealed import discard, seal, unseal
from drillbook.errors import ConfigError, FaultError

__all__ = ["COMPOSE_CONFIG_HASH", "PREVIOUS_IMAGE_LABEL", "BadImageFault", "image_id", "retag"]

PREVIOUS_IMAGE_LABEL = "drillbook.previous-image"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"


def image_id(client: Any, ref: str) -> str:
    value: str = client.api.inspect_image(ref)["Id"]
    return value


def _image_id_or_none(client: Any, ref: str) -> str | None:
    from docker.errors import ImageNotFound, NotFound

    try:
        return image_id(client, ref)
    except (ImageNotFound, NotFound):
        return None


def retag(client: Any, image: str, ref: str) -> None:
    """``docker tag IMAGE REF``: point ``repo:tag`` at ``image`` (a tag or an image ID)."""
    repo, tag = _split_ref(ref)
    if not client.api.tag(image, repo, tag, force=True):
        raise FaultError(f"docker tag {image} {ref} failed")


def _split_ref(ref: str) -> tuple[str, str]:
    # The tag is after the last colon, unless that colon belongs to a registry's host:port.
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


class BadImageFault(DockerFault):
    name = "docker.bad_image"

    def _image(self) -> str:
        image = self.ctx.param("image")
        if not image:
            raise ConfigError("docker.bad_image needs image: the broken tag", field="image")
        return str(image)

    def _retag(self) -> str | None:
        ref = self.ctx.param("retag")
        return str(ref) if ref else None

    def describe(self) -> str:
        how = f" as {self._retag()}" if self._retag() else ""
        return f"docker.bad_image rolling out {self._image()}{how}"

    def preflight(self) -> None:
        super().preflight()
        # Before anything is touched: the broken tag must exist (or be one drillbook builds),
        # and so must the tag a retag rollout moves (its image is what revert moves it back to).
        ensure_image(self.client, self._image())
        ref = self._retag()
        if ref and _image_id_or_none(self.client, ref) is None:
            raise FaultError(f"docker.bad_image: retag {ref}: no such image on the engine")

    def inject(self) -> None:
        bad = self._image()
        ensure_image(self.client, bad)
        bad_id = image_id(self.client, bad)
        ref = self._retag()
        self._state["containers"] = []
        if ref:
            self._state["retag"] = {"ref": ref, "previous_id": image_id(self.client, ref)}
        templates: list[Any] = []
        for c in self.containers():
            data = self.must_inspect(c.id)
            templates.append(data)
            self.records.append(
                {
                    **self.identity(data),
                    "previous_image": data["Config"]["Image"],
                    "previous_image_id": data["Image"],
                    "bad_image": bad,
                    "bad_image_id": bad_id,
                    "inspect": seal(self.ctx, data),
                }
            )
        if ref:
            retag(self.client, bad_id, ref)
        for rec, template in zip(self.records, templates, strict=True):
            replace(
                self.client,
                self.inspect(rec["id"]),
                template,
                image=ref or bad,
                labels={PREVIOUS_IMAGE_LABEL: rec["previous_image"]},
                drop_labels=(COMPOSE_CONFIG_HASH,),
                start=True,
                grace_s=duration_param(self.ctx, "grace", 10.0),
            )

    def verify_injected(self) -> bool:
        return all(
            (self.current(rec) or {}).get("Image") == rec["bad_image_id"] for rec in self.records
        )

    def _restore_tag(self) -> None:
        moved = self._state.get("retag")
        if not moved:
            return
        now = _image_id_or_none(self.client, moved["ref"])
        bad_ids = {rec["bad_image_id"] for rec in self.records}
        if now is None or now in bad_ids:
            retag(self.client, moved["previous_id"], moved["ref"])

    def revert(self) -> None:
        self._revert_notes = []
        self._restore_tag()
        for rec in self.records:
            saved, complete = unseal(rec["inspect"])
            current = self.current(rec)
            if current is not None and current.get("Image") == rec["previous_image_id"]:
                # Already on the previous image: the runbook (or Compose) rolled it back.
                if saved["State"].get("Running"):
                    start_if_needed(self.client, str(current["Id"]))
            else:
                if not complete and current is not None:
                    # The bad container was created with the same environment: take it from there.
                    env = current["Config"].get("Env")
                    saved = {**saved, "Config": {**saved["Config"], "Env": env}}
                replace(
                    self.client, current, saved, grace_s=duration_param(self.ctx, "grace", 10.0)
                )
            if saved["State"].get("Running") and not self.wait_current(rec, is_running):
                raise FaultError(f"docker.bad_image revert: {rec['name']} is not running again")
            self.note_reverted(rec)
            discard(rec["inspect"])

    def verify_reverted(self) -> bool:
        moved = self._state.get("retag")
        if moved and _image_id_or_none(self.client, moved["ref"]) in {
            rec["bad_image_id"] for rec in self.records
        }:
            return False
        for rec in self.records:
            data = self.current(rec)
            if data is None or data.get("Image") != rec["previous_image_id"]:
                return False
            if rec["inspect"]["State"].get("Running") and not is_running(data):
                return False
        return True
