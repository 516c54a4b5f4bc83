"""The agent: the bounded investigation loop on Llama Stack, its prompt, its tools."""

from persai.agent import history
from persai.agent.investigator import (
    TOOL_ERROR_PREFIX,
    Investigator,
    Limits,
    Progress,
    Reporter,
    Turn,
)
from persai.agent.prompt import instructions

__all__ = [
    "TOOL_ERROR_PREFIX",
    "Investigator",
    "Limits",
    "Progress",
    "Reporter",
    "Turn",
    "history",
    "instructions",
]
