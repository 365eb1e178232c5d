"""Ports for the servers tests start on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import random
import socket

# Ports for servers: under pytest-xdist each worker takes them from a block of its own below
# the kernel's ephemeral range, so two workers never pick the same one and no client socket
# (which gets an ephemeral port) takes one between its pick and the server's bind.
PORT_BLOCK = 1500
PORT_BASE = 15000
# from a random place in the block: two runs at once on one machine do not go in step
_ports = itertools.count(random.randrange(PORT_BLOCK))


def _worker_index() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now (a server started on it may still find it
    taken: start_server tries again on other ports)."""
    index = _worker_index()
    if index is not None and PORT_BASE + PORT_BLOCK * (index + 1) <= 32768:
        first = PORT_BASE + PORT_BLOCK * index
        for _ in range(PORT_BLOCK):
            port = first + next(_ports) % PORT_BLOCK
            if _bindable(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
