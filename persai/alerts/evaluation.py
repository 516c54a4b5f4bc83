"""The question an alert would ask about an evaluation case, for `persai eval --alert`.

Each case becomes the alert a rule on its natural query would have fired (named after the
scenario, labelled with its cluster, started when the incident did, its expression in
`generatorURL` as Prometheus writes it) and is asked as PersAI asks an alert group
(`question.question`, the default template), followed by the suite's scope sentence. The
scoring stays the same, so the two reports compare the wording of the question only.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlencode

from persai.alerts.payload import Alert, Notification
from persai.alerts.question import question
from persai.alerts.receivers import Receiver
from persai.eval.suite import CLUSTER_LABEL, Case


def as_alert(case: Case) -> Case:
    """`case` with the question its alert builds."""
    truth, cluster = case.incident.truth, case.scenario.cluster
    name = "".join(part.capitalize() for part in case.scenario.generator.split("_"))
    labels = {"alertname": name, CLUSTER_LABEL: cluster}
    started = truth.window_start or case.end - timedelta(minutes=30)
    fingerprint = hashlib.sha256(f"{name}\0{cluster}".encode()).hexdigest()[:16]
    alert = Alert.model_validate(
        {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": f"{name} on cluster {cluster}"},
            "startsAt": started,
            "generatorURL": "http://prometheus/graph?" + urlencode({"g0.expr": truth.query}),
            "fingerprint": fingerprint,
        }
    )
    group = Notification.model_validate(
        {
            "version": "4",
            "groupKey": f"{{}}:{{alertname={name!r}}}",
            "status": "firing",
            "receiver": "eval",
            "commonLabels": labels,
            "alerts": [alert.model_dump(by_alias=True)],
        }
    )
    receiver = Receiver(name="eval", datasource=case.datasource)
    scope = case.question.rsplit("\n\n", 1)[-1] if "\n\n" in case.question else ""
    return replace(case, question=f"{question(group, receiver, group.alerts)}\n\n{scope}".strip())
