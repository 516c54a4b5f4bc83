"""PersAI: the AI back end of Perses — asynchronous LLM investigations of your metrics."""

from persai.config import Settings
from persai.version import __version__

__all__ = ["Settings", "__version__"]
