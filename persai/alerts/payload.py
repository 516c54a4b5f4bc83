"""What Alertmanager posts to a webhook receiver (payload version 4), bounded.

Alertmanager's `notify/webhook/webhook.go` (v0.25) writes `Message`: the `template.Data` of the
group (`template/template.go`: receiver, status, alerts, groupLabels, commonLabels,
commonAnnotations, externalURL) with `version` "4", `groupKey` and `truncatedAlerts` beside it.
Every label and annotation value is text somebody else wrote: it is bounded here and quoted
wherever PersAI shows it to a model or a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from persai.timebounds import bounded_time

MAX_ALERTS = 200
"""Alerts per post (Alertmanager sends them all unless `max_alerts` is set)."""
MAX_LABELS = 64
MAX_NAME_CHARS = 128
MAX_VALUE_CHARS = 4096
"""Label and annotation values; a description may be a paragraph."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
Value = Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
Labels = Annotated[dict[Name, Value], Field(max_length=MAX_LABELS)]
Status = Literal["firing", "resolved"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Alert(_Strict):
    status: Status
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)] = Field(
        default="", alias="generatorURL"
    )
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{1,32}$")]

    @field_validator("starts_at")
    @classmethod
    def _started(cls, moment: datetime) -> datetime:
        return bounded_time(moment, "startsAt")  # in UTC (naive means UTC), or a 422

    @field_validator("ends_at")
    @classmethod
    def _ended(cls, moment: datetime | None) -> datetime | None:
        # Go's zero time (0001-01-01T00:00:00Z) is what Alertmanager sends for "not ended"
        if moment is None or moment.year <= 1:
            return None
        return bounded_time(moment, "endsAt")

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(_Strict):
    """One post of a group: which alerts are firing or resolved now."""

    version: Literal["4"]
    group_key: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        alias="groupKey"
    )
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Status
    receiver: Name
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Labels = Field(default_factory=dict, alias="commonAnnotations")
    external_url: Annotated[str, StringConstraints(max_length=2048)] = Field(
        default="", alias="externalURL"
    )
    alerts: list[Alert] = Field(min_length=1, max_length=MAX_ALERTS)

    @field_validator("alerts")
    @classmethod
    def _distinct(cls, alerts: list[Alert]) -> list[Alert]:
        if len({a.fingerprint for a in alerts}) != len(alerts):
            raise ValueError("two alerts have the same fingerprint")
        return alerts

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def alertname(self) -> str:
        return (
            self.common_labels.get("alertname")
            or self.group_labels.get("alertname")
            or self.alerts[0].name
            or "alert"
        )
