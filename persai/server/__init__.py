"""The HTTP API: FastAPI app factory, routes, authentication."""

from persai.server.app import create_app, from_environment

__all__ = ["create_app", "from_environment"]
