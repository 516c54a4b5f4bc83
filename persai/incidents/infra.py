"""Scenarios about machines and pods: memory, availability, CPU, and one very wide metric."""

from __future__ import annotations

import random
import string
from collections.abc import Mapping

from persai.incidents.model import Family, GroundTruth, Incident, IncidentParams, matchers, utc
from persai.incidents.noise import accumulate, daily, rng_for, window, zip_samples

_MIB = 1024 * 1024


def _pod_names(rng: random.Random, count: int) -> list[str]:
    apps = ("api", "web", "worker", "cache", "search", "billing")
    alphabet = string.ascii_lowercase + string.digits
    names = []
    for i in range(count):
        suffix = "".join(rng.choice(alphabet) for _ in range(5))
        names.append(f"{apps[i % len(apps)]}-7f9c{i:02d}-{suffix}")
    return names


def memory_leak(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Pod memory; one pod leaks linearly until it is OOM-killed and restarts."""
    rng = rng_for("memory_leak", params)
    pods = _pod_names(rng, int(options["pods"]))
    culprit = rng.choice(pods)
    begin, end = window(rng, params, options["minutes"], earliest=0.25)
    times = params.timestamps()
    memory = Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
    restarts = Family("kube_pod_container_status_restarts", "counter", "Container restarts.")
    started = Family("process_start_time_seconds", "gauge", "Process start time (Unix seconds).")
    cpu = Family("process_cpu_seconds", "counter", "User and system CPU time spent in seconds.")
    for pod in pods:
        base = rng.uniform(180, 400) * _MIB
        leak = pod == culprit
        booted = float(int(params.start.timestamp()) - rng.randint(3600, 30 * 86_400))
        mem, restart_count, start_times, cpu_values = [], [], [], []
        cpu_total = rng.uniform(100, 5000)
        for t in times:
            level = base
            if leak and begin <= t < end:
                level = base * (1 + options["growth"] * (t - begin) / (end - begin))
            if leak and t >= end:
                booted, level = float(end), base * 0.8
            mem.append(round(level * rng.uniform(0.99, 1.01)))
            restart_count.append(1.0 if leak and t >= end else 0.0)
            start_times.append(booted)
            cpu_total = 0.0 if leak and t == end else cpu_total + rng.uniform(0.5, 1.5)
            cpu_values.append(round(cpu_total, 2))
        labels = {**params.labels, "namespace": "shop", "pod": pod, "container": "app"}
        memory.add(labels, zip_samples(times, [float(v) for v in mem]))
        restarts.add(labels, zip_samples(times, restart_count), "_total")
        started.add(labels, zip_samples(times, start_times))
        cpu.add(labels, zip_samples(times, cpu_values), "_total")
    truth = GroundTruth(
        question="A pod in the shop namespace keeps getting slower and then restarts. Which one?",
        query="process_resident_memory_bytes" + matchers(params, 'namespace="shop"'),
        metrics=(
            "process_resident_memory_bytes",
            "kube_pod_container_status_restarts_total",
            "process_start_time_seconds",
            "process_cpu_seconds_total",
        ),
        culprit={"pod": culprit},
        window_start=utc(begin),
        window_end=utc(end),
    )
    return Incident("memory_leak", params, (memory, restarts, started, cpu), truth)


def target_down(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Node exporters; one instance stops answering scrapes (`up` 0, a gap in its other series)."""
    rng = rng_for("target_down", params)
    instances = [f"10.0.{i // 200}.{i % 200 + 10}:9100" for i in range(int(options["instances"]))]
    culprit = rng.choice(instances)
    begin, end = window(rng, params, options["minutes"])
    times = params.timestamps()
    up = Family("up", "gauge", "Whether the last scrape of the target succeeded.")
    load = Family("node_load1", "gauge", "1m load average.")
    for instance in instances:
        labels = {**params.labels, "job": "node", "instance": instance}
        down = [instance == culprit and begin <= t < end for t in times]
        up.add(labels, [(t, 0.0 if d else 1.0) for t, d in zip(times, down, strict=True)])
        base = rng.uniform(0.2, 3.0)
        loads = [(t, round(base * rng.uniform(0.8, 1.2), 2)) for t in times]
        load.add(labels, [s for s, d in zip(loads, down, strict=True) if not d])
    truth = GroundTruth(
        question="Some node metrics are missing. Which target is down, and since when?",
        query="up" + matchers(params, 'job="node"'),
        metrics=("up", "node_load1"),
        culprit={"instance": culprit},
        window_start=utc(begin),
        window_end=utc(end),
    )
    return Incident("target_down", params, (up, load), truth)


def saturation(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Node CPU time by mode; one node runs at almost 100 % for a while."""
    rng = rng_for("saturation", params)
    nodes = [f"node-{i:02d}" for i in range(1, int(options["nodes"]) + 1)]
    culprit = rng.choice(nodes)
    begin, end = window(rng, params, options["minutes"])
    times = params.timestamps()
    family = Family("node_cpu_seconds", "counter", "Seconds the CPUs spent in each mode.")
    for node in nodes:
        base = rng.uniform(0.15, 0.5)
        for cpu_id in range(4):
            busy = []
            for t in times:
                hot = node == culprit and begin <= t < end
                level = rng.uniform(0.97, 0.995) if hot else base * daily(t) + rng.gauss(0, 0.03)
                busy.append(min(0.99, max(0.01, level)) * params.step_s)
            labels = {**params.labels, "instance": node, "cpu": str(cpu_id)}
            for mode, share in (("idle", None), ("user", 0.8), ("system", 0.2)):
                steps = [params.step_s - b if share is None else b * share for b in busy]
                values = [round(v, 3) for v in accumulate(steps, rng.uniform(1e5, 1e6))]
                family.add({**labels, "mode": mode}, zip_samples(times, values), "_total")
    idle = matchers(params, 'mode="idle"')
    truth = GroundTruth(
        question="Requests are queueing. Is any node out of CPU?",
        query=f"1 - avg by (instance) (rate(node_cpu_seconds_total{idle}[5m]))",
        metrics=("node_cpu_seconds_total",),
        culprit={"instance": culprit},
        window_start=utc(begin),
        window_end=utc(end),
        rate_window_s=300,
    )
    return Incident("saturation", params, (family,), truth)


def noisy_neighbour(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Container CPU; a batch pod grabs most of its node's CPU and its neighbours get throttled."""
    rng = rng_for("noisy_neighbour", params)
    pods = _pod_names(rng, int(options["pods"]))
    nodes = {pod: f"node-{i % 5 + 1}" for i, pod in enumerate(pods)}
    culprit = rng.choice(pods)
    begin, end = window(rng, params, options["minutes"])
    times = params.timestamps()
    usage = Family("container_cpu_usage_seconds", "counter", "Cumulative CPU time consumed.")
    throttled = Family("container_cpu_cfs_throttled_periods", "counter", "Throttled periods.")
    for pod in pods:
        cores = rng.uniform(0.05, 0.6)
        neighbour = nodes[pod] == nodes[culprit] and pod != culprit
        cpu_steps, throttle_steps = [], []
        for t in times:
            active = begin <= t < end
            level = options["cores"] if pod == culprit and active else cores
            cpu_steps.append(level * rng.uniform(0.9, 1.1) * params.step_s)
            throttle_steps.append(float(rng.randint(20, 60) if neighbour and active else 0))
        labels = {**params.labels, "namespace": "shop", "pod": pod, "node": nodes[pod]}
        cpu_values = [round(v, 3) for v in accumulate(cpu_steps, rng.uniform(1e3, 1e5))]
        usage.add(labels, zip_samples(times, cpu_values), "_total")
        throttled.add(labels, zip_samples(times, accumulate(throttle_steps)), "_total")
    selected = matchers(params, 'namespace="shop"')
    truth = GroundTruth(
        question="Pods on one node got slow for a while. What caused it?",
        query=f"sum by (pod) (rate(container_cpu_usage_seconds_total{selected}[5m]))",
        metrics=("container_cpu_usage_seconds_total", "container_cpu_cfs_throttled_periods_total"),
        culprit={"pod": culprit},
        window_start=utc(begin),
        window_end=utc(end),
        rate_window_s=300,
    )
    return Incident("noisy_neighbour", params, (usage, throttled), truth)


def high_cardinality(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """One queue-depth gauge with a thousand series; one queue backs up for a few minutes."""
    rng = rng_for("high_cardinality", params)
    queues = [f"q-{i:04d}" for i in range(int(options["series"]))]
    culprit = rng.choice(queues)
    begin, end = window(rng, params, options["minutes"])
    times = params.timestamps()
    family = Family("ingest_queue_depth", "gauge", "Messages waiting in each ingest queue.")
    half = (end - begin) / 2
    for queue in queues:
        base = rng.uniform(20, 400)
        values = []
        for t in times:
            level = base * (1 + rng.gauss(0, 0.05))
            if queue == culprit and begin <= t < end:
                # Backs up linearly to the peak at mid-window, then drains as fast.
                level *= 1 + (options["factor"] - 1) * (1 - abs(t - begin - half) / half)
            values.append(float(max(0, round(level))))
        labels = {**params.labels, "app": "ingest", "queue": queue}
        family.add(labels, zip_samples(times, values))
    truth = GroundTruth(
        question="Ingest is lagging. Which queue backed up, and when?",
        query="ingest_queue_depth" + matchers(params, 'app="ingest"'),
        metrics=("ingest_queue_depth",),
        culprit={"queue": culprit},
        window_start=utc(begin),
        window_end=utc(end),
    )
    return Incident("high_cardinality", params, (family,), truth)
