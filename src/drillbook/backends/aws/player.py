"""The sandbox's stand-in for the slow half of AWS's control plane (moto only).

moto finishes everything at once: a reboot with failover changes nothing, and an Auto Scaling
group replaces a terminated member in the same call. moto's state manager (``/moto-api/
state-manager``) has no transitions for RDS, EC2 or Auto Scaling models (moto 5.2), so it cannot
slow these down. Without an outage no probe can see the fault, and the drill cannot be shown
end to end. The player does what the testenv does for Kubernetes (where tests play the kubelet):
it watches drillbook's own AWS calls and, through moto's ordinary API, makes the outage take
time:

- after ``RebootDBInstance`` the instance is stopped, and started again ``rds_reboot_s`` later;
- after ``TerminateInstanceInAutoScalingGroup`` the replacements are marked Unhealthy and only
  pass their "health-check grace period" ``asg_launch_s`` later.

It runs only when ``backends.aws.sandbox`` is true and an endpoint URL is set; the times it
produces are the player's, not AWS's (docs/aws.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .config import AwsSettings

__all__ = ["ControlPlanePlayer"]

log = logging.getLogger("drillbook.aws")


class ControlPlanePlayer:
    def __init__(self, settings: AwsSettings, timings: dict[str, float] | None = None) -> None:
        self.settings = settings
        timings = timings or {}
        self.rds_reboot_s = float(timings.get("rds_reboot_s", 2.0))
        self.asg_launch_s = float(timings.get("asg_launch_s", 2.0))
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- plain clients that bypass the hook (the player must not watch itself)
    def _plain(self, service: str, region: str) -> Any:
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.settings.endpoint_url)

    def _later(self, delay: float, fn: Callable[[], None], what: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception as exc:
                log.warning("sandbox player: %s failed: %s", what, exc)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _safe(self, fn: Callable[..., None]) -> Callable[..., None]:
        """A handler that can never break the drillbook call it watches."""

        def handler(**kwargs: Any) -> None:
            try:
                fn(**kwargs)
            except Exception as exc:
                log.warning("sandbox player: %s", exc)

        return handler

    def hook(self, made: Any) -> None:
        """Client hook: attach the handlers to RDS and Auto Scaling clients."""
        service = made.meta.service_model.service_name
        region = made.meta.region_name
        if service == "rds":
            made.meta.events.register(
                "after-call.rds.RebootDBInstance",
                self._safe(lambda parsed, **_: self._rebooted(region, parsed)),
            )
        elif service == "autoscaling":
            made.meta.events.register(
                "before-call.autoscaling.TerminateInstanceInAutoScalingGroup",
                self._safe(
                    lambda params, context, **_: self._before_terminate(region, params, context)
                ),
            )
            made.meta.events.register(
                "after-call.autoscaling.TerminateInstanceInAutoScalingGroup",
                self._safe(lambda context, **_: self._after_terminate(region, context)),
            )

    def _rebooted(self, region: str, parsed: dict[str, Any]) -> None:
        identifier = parsed.get("DBInstance", {}).get("DBInstanceIdentifier")
        if not identifier:
            return
        rds = self._plain("rds", region)
        rds.stop_db_instance(DBInstanceIdentifier=identifier)
        log.info("sandbox player: %s rebooting for %.1fs", identifier, self.rds_reboot_s)
        self._later(
            self.rds_reboot_s,
            lambda: rds.start_db_instance(DBInstanceIdentifier=identifier),
            f"start {identifier}",
        )

    def _before_terminate(
        self, region: str, params: dict[str, Any], context: dict[str, Any]
    ) -> None:
        body = params.get("body") or {}
        instance_id = body.get("InstanceId") if isinstance(body, dict) else None
        if not instance_id:
            return
        asg = self._plain("autoscaling", region)
        found = asg.describe_auto_scaling_instances(InstanceIds=[instance_id])
        groups = found.get("AutoScalingInstances", [])
        if not groups:
            return
        name = groups[0]["AutoScalingGroupName"]
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        context["drillbook_player"] = (name, {i["InstanceId"] for i in group[0]["Instances"]})

    def _after_terminate(self, region: str, context: dict[str, Any]) -> None:
        seen = context.get("drillbook_player")
        if not seen:
            return
        name, before = seen
        asg = self._plain("autoscaling", region)
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        fresh = [i["InstanceId"] for i in group[0]["Instances"] if i["InstanceId"] not in before]
        for instance_id in fresh:
            asg.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy")

        def healthy() -> None:
            for instance_id in fresh:
                asg.set_instance_health(InstanceId=instance_id, HealthStatus="Healthy")

        log.info(
            "sandbox player: %s replacements %s launching for %.1fs", name, fresh, self.asg_launch_s
        )
        self._later(self.asg_launch_s, healthy, f"mark {fresh} healthy")

    def stop(self) -> None:
        """Cancel what is still pending (the estate is deleted next)."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
