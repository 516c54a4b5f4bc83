"""Analysis scenarios about services: request counters read through `rate()`, latency
histograms read through `histogram_quantile`, restarts; each with a healthy twin."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from persai.incidents.analysis_model import (
    Case,
    Culprit,
    Probe,
    instant_probe,
    make_case,
    range_probe,
    seen,
)
from persai.incidents.model import Family, IncidentParams, matchers
from persai.incidents.noise import daily, rng_for, window, zip_samples
from persai.incidents.services import service_names
from persai.incidents.shapes import NO_SHAPE, Shape, add_histogram, counter, restarted

CODES = {"200": 0.985, "404": 0.01, "500": 0.004, "503": 0.001}
"""Each status code's usual share of a service's requests."""
RATE_LAG_S = 300
"""`rate(…[5m])` still sees an anomaly this long after the raw data's ends."""


def moment(rng: random.Random, params: IncidentParams, lowest: float, highest: float) -> int:
    """A sample time (Unix seconds) between those fractions of the range, at random."""
    times = [t for t in params.timestamps() if t >= params.start.timestamp()]
    return times[rng.randint(int(len(times) * lowest), int(len(times) * highest) - 1)]


def _requests(
    params: IncidentParams, rng: random.Random, count: int, burst: tuple[str, Shape]
) -> tuple[Family, list[str]]:
    """`http_requests_total` by service and code; `burst` = (service, its 5xx share's shape)."""
    times, step = params.timestamps(), params.step_s
    family = Family("http_requests", "counter", "Requests served, by service and status code.")
    services = service_names(count)
    for service in services:
        rps, phase = rng.uniform(2, 40), rng.uniform(0, 7200)
        shape = burst[1] if service == burst[0] else NO_SHAPE
        for code, usual in CODES.items():
            rate = _code_rate(rps, phase, code, usual, shape)
            labels = {**params.labels, "service": service, "code": code}
            family.add(labels, zip_samples(times, counter(rng, times, rate, step)), "_total")
    return family, services


def _code_rate(
    rps: float, phase: float, code: str, usual: float, burst: Shape
) -> Callable[[int], float]:
    """Requests per second of one code; during `burst` 500s take `burst.factor` of them."""

    def rate(t: int) -> float:
        share = usual
        if burst.at(t) != 1.0:
            share = burst.factor if code == "500" else usual * (1 - burst.factor)
        return rps * daily(t, phase) * share

    return rate


def _rate_queries(params: IncidentParams) -> tuple[str, str, str]:
    """5xx by service, all requests by service, and the 5xx ratio by service."""
    errors = f"sum by (service) (rate(http_requests_total{matchers(params, 'code=~"5.."')}[5m]))"
    total = f"sum by (service) (rate(http_requests_total{matchers(params)}[5m]))"
    return errors, total, f"{errors} / {total}"


def rate_burst(params: IncidentParams, now: datetime) -> Case:
    """Forty services' request counters; one service's 5xx burst for a quarter of an hour."""
    rng = rng_for("rate_burst", params)
    culprit = rng.choice(service_names(40))
    begin, end = window(rng, params, 15, earliest=0.3)
    family, _ = _requests(params, rng, 40, (culprit, Shape("spike", begin, end, 0.25)))
    errors, total, ratio = _rate_queries(params)
    shown = seen({"service": culprit}, begin, end, RATE_LAG_S)
    probes = (
        range_probe(errors, "2h", shown),
        range_probe(ratio, "2h", shown),
        range_probe(total, "2h"),  # the burst takes its share from the 200s: totals unchanged
    )
    return make_case(params, now, (family,), probes, "Which service's errors went up, and when?")


def healthy_rates(params: IncidentParams, now: datetime) -> Case:
    """Forty services' request counters and nothing wrong; one query asks for more than the
    data holds (its first windows are partial too)."""
    rng = rng_for("healthy_rates", params)
    family, _ = _requests(params, rng, 40, ("", NO_SHAPE))
    errors, total, _ = _rate_queries(params)
    probes = (
        range_probe(errors, "2h"),
        range_probe(total, "2h"),
        range_probe(total, "3h"),
        instant_probe(errors),
    )
    return make_case(params, now, (family,), probes, "Is anything wrong with our services?")


def _latency(
    params: IncidentParams, rng: random.Random, shapes: Callable[[str], tuple[Shape, Shape]]
) -> Family:
    """Thirty services' latency histograms; `shapes(service)` = (its own, every service's)."""
    times, step = params.timestamps(), params.step_s
    family = Family("http_request_duration_seconds", "histogram", "Request latency.")
    for service in service_names(30):
        rps, median = rng.uniform(3, 30), rng.uniform(0.03, 0.08)
        own, everyone = shapes(service)

        def level(t: int, m: float = median, a: Shape = own, b: Shape = everyone) -> float:
            return m * a.at(t) * b.at(t)

        def traffic(t: int, r: float = rps) -> float:
            return r * daily(t)

        labels = {**params.labels, "service": service}
        add_histogram(family, labels, (times, traffic, level), rng, step)
    return family


def _quantile(params: IncidentParams, q: float) -> str:
    buckets = f"http_request_duration_seconds_bucket{matchers(params)}"
    return f"histogram_quantile({q}, sum by (le, service) (rate({buckets}[5m])))"


def latency_step(params: IncidentParams, now: datetime) -> Case:
    """Thirty services' latency histograms; one service gets six times slower and stays so."""
    rng = rng_for("latency_step", params)
    culprit = rng.choice(service_names(30))
    begin, end = moment(rng, params, 0.4, 0.85), int(params.end.timestamp())
    slow = Shape("step", begin, end, 6.0)
    family = _latency(params, rng, lambda s: (slow if s == culprit else NO_SHAPE, NO_SHAPE))
    shown = seen({"service": culprit}, begin, end)
    query = _quantile(params, 0.99)
    probes = (range_probe(query, "2h", shown), instant_probe(query, shown))
    return make_case(params, now, (family,), probes, "Which service got slow, and since when?")


def deploy_shift(params: IncidentParams, now: datetime) -> Case:
    """A deploy makes every service 30 % slower at once, and one of them five times slower."""
    rng = rng_for("deploy_shift", params)
    culprit = rng.choice(service_names(30))
    begin, end = moment(rng, params, 0.35, 0.8), int(params.end.timestamp())
    everyone = Shape("step", begin, end, 1.3)
    broken = Shape("step", begin, end, 5.0)
    family = _latency(params, rng, lambda s: (broken if s == culprit else NO_SHAPE, everyone))
    shown = seen({"service": culprit}, begin, end)
    probes = (range_probe(_quantile(params, 0.95), "2h", shown),)
    return make_case(params, now, (family,), probes, "Did the deploy break a service?")


def healthy_latency(params: IncidentParams, now: datetime) -> Case:
    """Thirty services' latency histograms and nothing wrong."""
    rng = rng_for("healthy_latency", params)
    family = _latency(params, rng, lambda _: (NO_SHAPE, NO_SHAPE))
    probes = (range_probe(_quantile(params, 0.99), "2h"),)
    return make_case(params, now, (family,), probes, "Is latency normal?")


def _jobs(
    params: IncidentParams,
    rng: random.Random,
    deploy: Callable[[int], int],
    loop: tuple[int, list[int]] = (-1, []),
) -> tuple[Family, list[str]]:
    """Thirty pods' `jobs_processed_total`; pod i restarts at `deploy(i)`, and pod `loop[0]`
    crash-loops too, restarting at each of `loop[1]` and working at half speed meanwhile.

    A pod does no work in the step it restarts in (two steps when it crashed).
    """
    times, step = params.timestamps(), params.step_s
    family = Family("jobs_processed", "counter", "Jobs processed by the worker.")
    pods = [f"worker-{i:02d}" for i in range(30)]
    for i, pod in enumerate(pods):
        crashes = loop[1] if i == loop[0] else []
        down = {deploy(i)} | {t + k * step for t in crashes for k in range(2)}
        slow = (crashes[0], crashes[-1] + 240) if crashes else (0, 0)
        r = rng.uniform(5, 30)

        def rate(
            t: int, r: float = r, down: set[int] = down, slow: tuple[int, int] = slow
        ) -> float:
            if t in down:
                return 0.0
            return r * (0.5 if slow[0] <= t < slow[1] else 1.0)

        values = restarted(counter(rng, times, rate, step), times, [deploy(i), *crashes])
        labels = {**params.labels, "namespace": "batch", "pod": pod}
        family.add(labels, zip_samples(times, values), "_total")
    return family, pods


def _job_probes(params: IncidentParams, *culprits: tuple[Culprit, Culprit]) -> tuple[Probe, ...]:
    raw = f"jobs_processed_total{matchers(params, 'namespace="batch"')}"
    rate = f"sum by (pod) (rate({raw}[5m]))"
    return (
        range_probe(raw, "2h", *(c[0] for c in culprits)),
        range_probe(rate, "2h", *(c[1] for c in culprits)),
    )


def restart_wave(params: IncidentParams, now: datetime) -> Case:
    """A deploy restarts every worker at once (a wave of counter resets); later one worker
    crash-loops for twenty minutes, restarting every four and working at half speed."""
    rng = rng_for("restart_wave", params)
    deploy = moment(rng, params, 0.2, 0.4)
    begin = moment(rng, params, 0.55, 0.7)
    loop = [begin + k * 240 for k in range(5)]
    index = rng.randrange(30)
    family, pods = _jobs(params, rng, lambda _: deploy, (index, loop))
    end = loop[-1] + 240
    labels = {"pod": pods[index]}
    culprit = (seen(labels, begin, end), seen(labels, begin, end, RATE_LAG_S))
    probes = _job_probes(params, culprit)
    return make_case(params, now, (family,), probes, "Is any worker unhealthy?")


def healthy_restarts(params: IncidentParams, now: datetime) -> Case:
    """A rolling restart of every worker (half at one step, half at the next); nothing wrong."""
    rng = rng_for("healthy_restarts", params)
    deploy = moment(rng, params, 0.3, 0.8)
    family, _ = _jobs(params, rng, lambda i: deploy + (i % 2) * params.step_s)
    probes = _job_probes(params)
    return make_case(params, now, (family,), probes, "Did the restart hurt any worker?")
