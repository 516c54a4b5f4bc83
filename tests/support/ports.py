"""Free loopback ports and waiting for servers to listen on them (persai.launcher's)."""

from __future__ import annotations

from persai.launcher import free_port, wait_for_port

__all__ = ["free_port", "wait_for_port"]
