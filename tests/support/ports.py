"""Free loopback ports and waiting for servers to listen on them (PersAI's own helpers)."""

from __future__ import annotations

from persai import embedded

free_port = embedded.free_port


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port, or raise TimeoutError."""
    embedded.wait_for_port(port, timeout_s)
