"""Investigations that start themselves: Alertmanager's alerts in, findings out.

`payload` reads Alertmanager's webhook, `receivers` the operator's configuration, `question`
turns a group into a question and a window, `groups` decides (atomically, across replicas)
whether a post starts an investigation, `identity` signs in as the receiver's Perses user,
`records` changes ended investigations, `outbox` and `delivery` send the findings out.
"""

from persai.alerts.groups import AlertGroups, Claim
from persai.alerts.identity import ServiceIdentities
from persai.alerts.outbox import Outbox
from persai.alerts.payload import Alert, Notification
from persai.alerts.question import expression, follow_up, question, quoted, window
from persai.alerts.receivers import (
    AlertsConfig,
    ConfigError,
    Destination,
    Identity,
    Receiver,
    load,
    parse,
)
from persai.alerts.records import amend

__all__ = [
    "Alert",
    "AlertGroups",
    "AlertsConfig",
    "Claim",
    "ConfigError",
    "Destination",
    "Identity",
    "Notification",
    "Outbox",
    "Receiver",
    "ServiceIdentities",
    "amend",
    "expression",
    "follow_up",
    "load",
    "parse",
    "question",
    "quoted",
    "window",
]
