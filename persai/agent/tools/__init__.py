"""The tools the agent calls, run in the worker with the user's credentials."""

from persai.agent.tools.base import Tool, Toolbox, ToolContext, ToolError, ToolOutput, tool
from persai.agent.tools.perses import PERSES_TOOLS
from persai.agent.tools.prometheus import PROMETHEUS_QUERY_TOOLS
from persai.agent.tools.prometheus_meta import PROMETHEUS_META_TOOLS
from persai.agent.tools.prometheus_rules import PROMETHEUS_RULE_TOOLS
from persai.agent.tools.upstream import TokenSource, UpstreamAPI, UpstreamSlots, UpstreamStatusError

PROMETHEUS_TOOLS: tuple[Tool, ...] = (
    *PROMETHEUS_QUERY_TOOLS,
    *PROMETHEUS_META_TOOLS,
    *PROMETHEUS_RULE_TOOLS,
)
"""Tools on the investigation's datasource (Prometheus HTTP API)."""
ALL_TOOLS: tuple[Tool, ...] = (*PROMETHEUS_TOOLS, *PERSES_TOOLS)
"""Every tool; the Perses tools answer an error when PersAI runs without Perses."""

__all__ = [
    "ALL_TOOLS",
    "PERSES_TOOLS",
    "PROMETHEUS_TOOLS",
    "TokenSource",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "Toolbox",
    "UpstreamAPI",
    "UpstreamSlots",
    "UpstreamStatusError",
    "tool",
]
