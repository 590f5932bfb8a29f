"""Shared sandbox pools, limits and hostile-program helpers.

Starting a fork server takes about half a second, so pools live for the whole session: one
with every layer, and one per layer for the tests that prove a layer on its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from evolution.sandbox import SandboxLimits, SandboxPool
from evolution.sandbox._lockdown import OPTIONAL_LAYERS

FAST = SandboxLimits(timeout_s=1.0, cpu_s=1.0)
"""Short limits, so the timeout tests end quickly; the source check stays on."""
NO_CHECK = SandboxLimits(timeout_s=1.0, cpu_s=1.0, check_source=False)
"""The same without the source check: the attack reaches the operating-system layers."""
WALKER = (
    "    wc = walker_creator()\n    wc.add_joint(0, 0)\n    wc.add_joint(5, 0)\n    return wc.get_walker()\n"
)


def program(body: str, *, head: str = "") -> str:
    """A program whose ``make_walker`` runs ``body`` (4-space indented lines)."""
    return f"{head}\n" * bool(head) + f"def make_walker():\n{body}"


@pytest.fixture(scope="session")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(workers=1) as p:
        p.start()
        yield p


_LAYER_POOLS: dict[str, SandboxPool] = {}


@pytest.fixture(scope="session")
def only_layer() -> Iterator:
    """``only_layer(name)``: a pool with ``name`` as the only optional layer (``"none"``: none)."""

    def get(name: str) -> SandboxPool:
        if name not in _LAYER_POOLS:
            keep = {"chroot": {"chroot", "unprivileged_user"}}.get(name, {name})
            _LAYER_POOLS[name] = SandboxPool(
                disable=[layer for layer in OPTIONAL_LAYERS if layer not in keep]
            ).start()
        layer_pool = _LAYER_POOLS[name]
        for layer in {"chroot": ("chroot", "unprivileged_user")}.get(name, (name,)):
            if layer != "none" and not layer_pool.isolation_report()[layer]:
                pytest.skip(
                    f"layer {layer} is not available here: {layer_pool.inactive_reasons().get(layer)}"
                )
        return layer_pool

    yield get
    for layer_pool in _LAYER_POOLS.values():
        layer_pool.close()
    _LAYER_POOLS.clear()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on the host's loopback; ``accept`` times out if nobody came."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.3)
    yield server
    server.close()


def nobody_came(server: socket.socket) -> bool:
    """Whether no connection reached ``server``."""
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return True
    connection.close()
    return False


@pytest.fixture
def host_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A path on the host that a program will try to create; removed afterwards if it was."""
    path = Path("/tmp") / f"elm-sandbox-attack-{uuid.uuid4().hex}"
    yield path
    if path.exists():
        path.unlink()


def processes_of(uid: int) -> list[str]:
    """``ps`` lines of the live processes of ``uid`` (the sandbox runs programs as 65534).

    Zombies are left out: they are dead, waiting for the fork server to reap them.
    """
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,cmd=", "-U", str(uid)], capture_output=True, text=True, check=False
    )
    return [line for line in out.stdout.splitlines() if line.split() and not line.split()[1].startswith("Z")]


def running_as_root() -> bool:
    return os.geteuid() == 0
