"""The tools the agent calls, run in the worker with the user's credentials."""

from persai.agent.tools.base import Tool, Toolbox, ToolContext, ToolError, ToolOutput, tool
from persai.agent.tools.prometheus import PROMETHEUS_TOOLS
from persai.agent.tools.upstream import TokenSource, UpstreamAPI

ALL_TOOLS: tuple[Tool, ...] = PROMETHEUS_TOOLS

__all__ = [
    "ALL_TOOLS",
    "TokenSource",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "Toolbox",
    "UpstreamAPI",
    "tool",
]
