"""A bounded resource hog, the fallback where stress-ng is not installed.

Run by path (``python -P hogworker.py KIND ...``), standard library only, so it starts without
importing drillbook. It is bounded twice: by its own deadline (``--seconds``: it exits by itself
even if every drillbook process died) and by the size it was given (``--bytes``, checked against a
cap by the fault before it starts). It is a session leader, so revert ends it and the workers it
forks with one ``killpg``.

Kinds:

* ``cpu``: ``--workers`` busy loops (forked), each burning ``--load`` percent of a core;
* ``memory``: touch ``--bytes`` of anonymous memory, then hold it (an OOM kill is an outcome);
* ``io``: write and fsync ``--bytes`` to a file in ``--dir`` again and again, then delete it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

__all__ = ["main"]

_CHUNK = 8 * 1024 * 1024


def _until(deadline: float) -> None:
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _burn(deadline: float, load: int) -> None:
    period = 0.1
    while time.monotonic() < deadline:
        start = time.monotonic()
        while time.monotonic() - start < period * load / 100.0:
            pass
        if load < 100:
            time.sleep(period * (100 - load) / 100.0)


def _cpu(deadline: float, workers: int, load: int) -> None:
    children = []
    for _ in range(max(0, workers - 1)):
        pid = os.fork()
        if pid == 0:
            try:
                _burn(deadline, load)
            finally:
                os._exit(0)
        children.append(pid)
    _burn(deadline, load)
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _memory(deadline: float, size: int) -> None:
    held = []
    left = size
    while left > 0:
        n = min(_CHUNK, left)
        held.append(b"\x5a" * n)  # written, so resident (a zeroed allocation may not be)
        left -= n
    print(f"holding {size} bytes", flush=True)
    _until(deadline)
    del held


def _io(deadline: float, folder: str, size: int) -> None:
    path = os.path.join(folder, f"drillbook-io-{os.getpid()}.bin")
    block = b"\xa5" * min(_CHUNK, max(4096, size))
    try:
        while time.monotonic() < deadline:
            with open(path, "wb") as fh:
                written = 0
                while written < size and time.monotonic() < deadline:
                    fh.write(block[: min(len(block), size - written)])
                    written += min(len(block), size - written)
                    fh.flush()
                    os.fsync(fh.fileno())
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hogworker")
    parser.add_argument("kind", choices=["cpu", "memory", "io"])
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--load", type=int, default=100)
    parser.add_argument("--bytes", type=int, default=0)
    parser.add_argument("--dir", default="")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    # SIGTERM ends the hog through its finally blocks (the io file is deleted).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.kind == "cpu":
        _cpu(deadline, args.workers, max(1, min(100, args.load)))
    elif args.kind == "memory":
        _memory(deadline, args.bytes)
    else:
        _io(deadline, args.dir, args.bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
