"""The HTTP API: FastAPI app factory, routes, authentication."""

from persai.server.app import create_app

__all__ = ["create_app"]
