"""Analysis scenarios about machines and pods: gauges with slow ramps, a day of seasonal
traffic, several culprits at once, one culprit among 10,000 series, a scrape gap, and data that
ends before the question is asked."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from persai.incidents.analysis_model import Case, instant_probe, make_case, range_probe, seen
from persai.incidents.analysis_services import RATE_LAG_S, moment
from persai.incidents.model import Family, IncidentParams, matchers
from persai.incidents.noise import accumulate, daily, rng_for, window, zip_samples
from persai.incidents.services import service_names
from persai.incidents.shapes import NO_SHAPE, Shape, counter, gauge, scaled

_MIB = 1024 * 1024


def _memory(
    params: IncidentParams, rng: random.Random, pods: int, culprit: tuple[int, Shape]
) -> Family:
    """`container_memory_working_set_bytes` of `pods` pods; pod `culprit[0]` follows its shape."""
    times = params.timestamps()
    family = Family("container_memory_working_set_bytes", "gauge", "Working set in bytes.")
    for i in range(pods):
        base = rng.uniform(150, 600) * _MIB
        shape = culprit[1] if i == culprit[0] else NO_SHAPE
        values = gauge(rng, times, scaled(base, shape), 0.015)
        labels = {**params.labels, "namespace": "shop", "pod": f"web-{i:03d}", "container": "app"}
        family.add(labels, zip_samples(times, [float(round(v)) for v in values]))
    return family


def slow_ramp(params: IncidentParams, now: datetime) -> Case:
    """Sixty pods' memory; one pod's grows slowly to 2.5 times over an hour and stays there."""
    rng = rng_for("slow_ramp", params)
    index = rng.randrange(60)
    begin = moment(rng, params, 0.3, 0.5)
    family = _memory(params, rng, 60, (index, Shape("ramp", begin, begin + 3600, 2.5)))
    shown = seen({"pod": f"web-{index:03d}"}, begin, params.end.timestamp())
    query = f"container_memory_working_set_bytes{matchers(params, 'namespace="shop"')}"
    probes = (range_probe(query, "3h", shown),)
    return make_case(params, now, (family,), probes, "Is a pod leaking memory?")


def healthy_gauges(params: IncidentParams, now: datetime) -> Case:
    """Two hundred pods' memory and nothing wrong."""
    rng = rng_for("healthy_gauges", params)
    family = _memory(params, rng, 200, (-1, NO_SHAPE))
    query = f"container_memory_working_set_bytes{matchers(params, 'namespace="shop"')}"
    probes = (range_probe(query, "2h"), instant_probe(query))
    return make_case(params, now, (family,), probes, "Is memory normal?")


def _daily_traffic(params: IncidentParams, rng: random.Random, dip: tuple[str, Shape]) -> Family:
    """Twenty services' requests over a day: a deep daily cycle, each a little out of phase."""
    times, step = params.timestamps(), params.step_s
    family = Family("http_requests", "counter", "Requests served, by service and status code.")
    for service in service_names(20):
        rps, phase = rng.uniform(5, 50), rng.uniform(0, 3 * 3600)
        shape = dip[1] if service == dip[0] else NO_SHAPE

        def rate(t: int, r: float = rps, p: float = phase, s: Shape = shape) -> float:
            return r * daily(t, p, depth=0.5) * s.at(t)

        labels = {**params.labels, "service": service, "code": "200"}
        family.add(labels, zip_samples(times, counter(rng, times, rate, step)), "_total")
    return family


def _daily_query(params: IncidentParams) -> str:
    return f"sum by (service) (rate(http_requests_total{matchers(params)}[5m]))"


def seasonal_dip(params: IncidentParams, now: datetime) -> Case:
    """A day of traffic with its daily cycle; one service loses 70 % of it for 40 minutes."""
    rng = rng_for("seasonal_dip", params)
    culprit = rng.choice(service_names(20))
    begin, end = window(rng, params, 40, earliest=0.3)
    family = _daily_traffic(params, rng, (culprit, Shape("dip", begin, end, 0.3)))
    shown = seen({"service": culprit}, begin, end, RATE_LAG_S)
    probes = (range_probe(_daily_query(params), "24h", shown),)
    return make_case(params, now, (family,), probes, "Did any service lose traffic today?")


def seasonal_healthy(params: IncidentParams, now: datetime) -> Case:
    """A day of traffic with its daily cycle and nothing wrong."""
    rng = rng_for("seasonal_healthy", params)
    family = _daily_traffic(params, rng, ("", NO_SHAPE))
    probes = (range_probe(_daily_query(params), "24h"),)
    return make_case(params, now, (family,), probes, "Was today's traffic normal?")


def multi_culprit(params: IncidentParams, now: datetime) -> Case:
    """Forty-eight pods' CPU; three pods on one node misbehave at once: two spike for a quarter
    of an hour, the third steps up and stays up."""
    rng = rng_for("multi_culprit", params)
    times, step = params.timestamps(), params.step_s
    pods = [(f"app-{i:02d}", f"node-{i % 6 + 1}") for i in range(48)]
    node = rng.choice([n for _, n in pods])
    guilty = rng.sample([p for p, n in pods if n == node], 3)
    begin, end = window(rng, params, 15, earliest=0.35)
    shapes = {
        guilty[0]: Shape("spike", begin, end, 4.0),
        guilty[1]: Shape("spike", begin, end, 4.0),
    }
    shapes[guilty[2]] = Shape("step", begin, end, 3.0)
    family = Family("container_cpu_usage_seconds", "counter", "Cumulative CPU time consumed.")
    for pod, host in pods:
        cores, shape = rng.uniform(0.1, 0.8), shapes.get(pod, NO_SHAPE)
        steps = [cores * shape.at(t) * step * rng.uniform(0.9, 1.1) for t in times]
        values = [round(v, 3) for v in accumulate(steps, rng.uniform(1e3, 1e5))]
        labels = {**params.labels, "namespace": "shop", "pod": pod, "node": host}
        family.add(labels, zip_samples(times, values), "_total")
    last = params.end.timestamp()
    culprits = (
        seen({"pod": guilty[0]}, begin, end, RATE_LAG_S),
        seen({"pod": guilty[1]}, begin, end, RATE_LAG_S),
        seen({"pod": guilty[2]}, begin, last),
    )
    selected = matchers(params, 'namespace="shop"')
    query = f"sum by (pod) (rate(container_cpu_usage_seconds_total{selected}[5m]))"
    probes = (range_probe(query, "2h", *culprits),)
    return make_case(params, now, (family,), probes, "Which pods went wrong on that node?")


def haystack(params: IncidentParams, now: datetime) -> Case:
    """10,000 partitions' consumer lag; one partition's consumer stalls and its lag grows."""
    rng = rng_for("haystack", params)
    times = params.timestamps()
    names = [(f"t-{i // 100:02d}", str(i % 100)) for i in range(10_000)]
    guilty = rng.randrange(len(names))
    begin = moment(rng, params, 0.55, 0.75)
    family = Family("kafka_consumergroup_lag", "gauge", "Messages the group is behind.")
    for i, (topic, partition) in enumerate(names):
        base = rng.uniform(50, 500)
        stalled = i == guilty
        values = [
            round(
                base * (1 + rng.gauss(0, 0.1))
                + (25 * (t - begin + params.step_s) if stalled and t >= begin else 0)
            )
            for t in times
        ]
        labels = {**params.labels, "group": "ingest", "topic": topic, "partition": partition}
        family.add(labels, zip_samples(times, [float(max(0, v)) for v in values]))
    topic, partition = names[guilty]
    shown = seen({"topic": topic, "partition": partition}, begin, params.end.timestamp())
    query = f"kafka_consumergroup_lag{matchers(params, 'group="ingest"')}"
    probes = (range_probe(query, "1h", shown, step="1m"), instant_probe(query, shown))
    return make_case(params, now, (family,), probes, "Which partition is lagging?")


def _without(samples: list[tuple[int, float]], gap: tuple[int, int]) -> list[tuple[int, float]]:
    return [(t, v) for t, v in samples if not gap[0] <= t < gap[1]]


def scrape_gap(params: IncidentParams, now: datetime) -> Case:
    """Twenty-five nodes; Prometheus was down for seven minutes (a gap in every series), and
    later one node received six times its usual traffic for ten minutes."""
    rng = rng_for("scrape_gap", params)
    times, step = params.timestamps(), params.step_s
    down = moment(rng, params, 0.2, 0.4)
    gap = (down, down + 420)
    begin, end = window(rng, params, 10, earliest=0.55)
    instances = [f"10.1.0.{i + 10}:9100" for i in range(25)]
    culprit = rng.choice(instances)
    received = Family("node_network_receive_bytes", "counter", "Bytes received.")
    available = Family("node_memory_MemAvailable_bytes", "gauge", "Memory available in bytes.")
    for instance in instances:
        rate, shape = rng.uniform(1e5, 5e6), Shape("spike", begin, end, 6.0)
        factor: Callable[[int], float] = shape.at if instance == culprit else NO_SHAPE.at
        steps = [rate * daily(t) * factor(t) * step * rng.uniform(0.95, 1.05) for t in times]
        labels = {**params.labels, "instance": instance}
        counts = zip_samples(times, [round(v) for v in accumulate(steps, rng.uniform(1e9, 1e11))])
        received.add({**labels, "device": "eth0"}, _without(counts, gap), "_total")
        free = rng.uniform(2e9, 16e9)
        memory = gauge(rng, times, scaled(free), 0.01)
        available.add(labels, _without(zip_samples(times, [round(v) for v in memory]), gap))
    shown = seen({"instance": culprit}, begin, end, RATE_LAG_S)
    probes = (
        range_probe(f"rate(node_network_receive_bytes_total{matchers(params)}[5m])", "2h", shown),
        range_probe(f"node_memory_MemAvailable_bytes{matchers(params)}", "2h"),
    )
    return make_case(params, now, (received, available), probes, "Which node got flooded?")


def stale_data(params: IncidentParams, now: datetime) -> Case:
    """Thirty queues whose data ends well before the question; one queue backed up earlier,
    its consumers taking a fifth of their usual rate."""
    rng = rng_for("stale_data", params)
    times, step = params.timestamps(), params.step_s
    queues = [f"orders-{i:02d}" for i in range(30)]
    culprit = rng.choice(queues)
    begin, end = window(rng, params, 15, earliest=0.45)
    depth = Family("queue_depth", "gauge", "Messages waiting in the queue.")
    consumed = Family("queue_messages_consumed", "counter", "Messages consumed.")
    for queue in queues:
        guilty = queue == culprit
        backlog = Shape("spike", begin, end, 10.0) if guilty else NO_SHAPE
        slow = Shape("dip", begin, end, 0.2) if guilty else NO_SHAPE
        base, rate = rng.uniform(10, 200), rng.uniform(5, 50)
        levels = gauge(rng, times, scaled(base, backlog), 0.1)
        labels = {**params.labels, "queue": queue}
        depth.add(labels, zip_samples(times, [float(round(v)) for v in levels]))
        counts = counter(rng, times, scaled(rate, slow), step)
        consumed.add(labels, zip_samples(times, counts), "_total")
    consumed_rate = f"sum by (queue) (rate(queue_messages_consumed_total{matchers(params)}[5m]))"
    probes = (
        range_probe(f"queue_depth{matchers(params)}", "2h", seen({"queue": culprit}, begin, end)),
        range_probe(consumed_rate, "2h", seen({"queue": culprit}, begin, end, RATE_LAG_S)),
    )
    return make_case(params, now, (depth, consumed), probes, "Which queue backed up?")
