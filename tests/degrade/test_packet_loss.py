"""network.packet_loss in a network namespace this test makes: the loss counted by the test's
own UDP sender and receiver inside the namespace, and revert deleting exactly its own rule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.backends.base import Context
from drillbook.degrade.packetloss import PacketLoss
from drillbook.plugin import needs_backend

COUNT_UDP = textwrap.dedent(
    """\
    import socket
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    got = 0
    for batch in range(10):  # batches of 100: a socket buffer holds a few hundred datagrams
        for i in range(100):
            tx.sendto(b"x", rx.getsockname())
        try:
            while True:
                rx.recv(16)
                got += 1
        except TimeoutError:
            pass
    print(got)
    """
)


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) for network namespaces and iptables"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture
def netns() -> Iterator[str]:
    reason = _usable()
    if reason is not None:
        needs_backend("local", reason)
    name = f"dbt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _received(netns: str) -> int:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", COUNT_UDP],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip())


def _rules(netns: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "iptables", "-S", "INPUT"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_share_of_packets_is_dropped_and_revert_removes_only_its_rule(
    netns: str, tmp_path: Path
) -> None:
    assert _received(netns) == 1000  # loopback in a fresh namespace loses nothing
    # Someone else's rule in the same chain must survive our revert.
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "9",
            "-j",
            "ACCEPT",
        ],
        check=True,
    )
    ctx = Context(
        params={"netns": netns, "probability": 0.3, "protocol": "udp"},
        state_dir=tmp_path / ".drillbook",
        workdir=tmp_path,
    )
    fault = PacketLoss(ctx)
    fault.resolve()
    fault.preflight()
    fault.inject()
    try:
        assert fault.verify_injected()
        got = _received(netns)
        # Binomial(1000, 0.7): 600..800 is more than six standard deviations either side.
        assert 600 <= got <= 800, got
    finally:
        again = PacketLoss(ctx)  # as rollback would: a new object from the intent's state
        again.load_state(fault.state())
        again.revert()
        again.revert()  # idempotent
    assert again.verify_reverted()
    assert "drillbook:" not in _rules(netns)
    assert "--dport 9 -j ACCEPT" in _rules(netns)
    assert _received(netns) == 1000


def test_a_missing_namespace_is_refused_before_anything(tmp_path: Path) -> None:
    reason = _usable()
    if reason is not None:
        needs_backend("local", reason)
    fault = PacketLoss(
        Context(params={"netns": "dbt-does-not-exist", "probability": 0.1}, state_dir=tmp_path)
    )
    with pytest.raises(Exception, match="no network namespace"):
        fault.preflight()
