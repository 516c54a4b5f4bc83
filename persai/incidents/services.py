"""Scenarios about services: request latency, errors, and a quiet day with nothing wrong."""

from __future__ import annotations

import math
from collections.abc import Mapping

from persai.incidents.model import Family, GroundTruth, Incident, IncidentParams, matchers, utc
from persai.incidents.noise import accumulate, daily, poisson, rng_for, window, zip_samples

_BASE_NAMES = (
    "api", "auth", "billing", "cart", "catalog", "checkout", "search", "orders", "payments",
    "inventory", "shipping", "users", "reviews", "recommend", "pricing", "notify", "gateway",
    "ledger", "profile", "session", "media", "upload", "report", "quota", "audit",
)  # fmt: skip
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ENDPOINTS = (
    "/api/cart", "/api/checkout", "/api/products", "/api/search", "/api/login", "/api/orders",
    "/api/payments", "/api/profile", "/api/reviews", "/api/recommendations", "/api/shipping",
    "/api/inventory",
)  # fmt: skip
_CODE_SHARE = {"200": 0.985, "404": 0.012, "500": 0.002, "503": 0.001}


def service_names(count: int) -> list[str]:
    """`count` distinct, realistic service names (`checkout`, then `checkout-worker`, …)."""
    names = [
        f"{base}{suffix}" for suffix in ("", "-worker", "-v2", "-batch") for base in _BASE_NAMES
    ]
    if count > len(names):
        names += [f"svc-{i:04d}" for i in range(count - len(names))]
    return names[:count]


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf((math.log(x) - math.log(median)) / (sigma * math.sqrt(2))))


def latency_spike(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """A request-latency histogram for many services; one service's latency spikes for a while."""
    rng = rng_for("latency_spike", params)
    services = service_names(int(options["services"]))
    culprit = rng.choice(services)
    begin, end = window(rng, params, options["minutes"])
    times = params.timestamps()
    family = Family("http_request_duration_seconds", "histogram", "Request latency.")
    sigma = 0.5
    for service in services:
        rps, median = rng.uniform(5, 60), rng.uniform(0.02, 0.12)
        buckets = [[0.0] * len(times) for _ in (*_BUCKETS, math.inf)]
        counts, sums = [0.0] * len(times), [0.0] * len(times)
        total_n, total_sum, cumulative = 0, 0.0, [0] * (len(_BUCKETS) + 1)
        for i, t in enumerate(times):
            slow = service == culprit and begin <= t < end
            m = median * (options["factor"] if slow else 1.0) * rng.uniform(0.95, 1.05)
            n = poisson(rng, rps * daily(t) * params.step_s)
            for b, le in enumerate(_BUCKETS):
                cumulative[b] += math.floor(n * _lognormal_cdf(le, m, sigma))
                buckets[b][i] = cumulative[b]
            cumulative[-1] += n
            buckets[-1][i] = cumulative[-1]
            total_n += n
            total_sum += n * m * math.exp(sigma**2 / 2)
            counts[i], sums[i] = total_n, total_sum
        labels = {**params.labels, "service": service}
        for le, values in zip((*_BUCKETS, math.inf), buckets, strict=True):
            le_text = "+Inf" if math.isinf(le) else repr(le)
            family.add({**labels, "le": le_text}, zip_samples(times, values), "_bucket")
        family.add(labels, zip_samples(times, sums), "_sum")
        family.add(labels, zip_samples(times, counts), "_count")
    query = (
        "histogram_quantile(0.99, sum by (service, le) "
        f"(rate(http_request_duration_seconds_bucket{matchers(params)}[5m])))"
    )
    truth = GroundTruth(
        question="Which service's latency went up, and when?",
        query=query,
        metrics=("http_request_duration_seconds",),
        culprit={"service": culprit},
        window_start=utc(begin),
        window_end=utc(end),
        rate_window_s=300,
    )
    return Incident("latency_spike", params, (family,), truth)


def _request_family(
    params: IncidentParams,
    rng_name: str,
    endpoints: list[tuple[str, float, float]],
    burst: tuple[str, int, int, float] | None,
) -> Family:
    """`http_requests_total` by endpoint and code; `burst` = (endpoint, start, end, 5xx share)."""
    rng = rng_for(rng_name, params)
    times = params.timestamps()
    family = Family("http_requests", "counter", "Requests served, by endpoint and status code.")
    for endpoint, rps, phase in endpoints:
        for code, usual_share in _CODE_SHARE.items():
            increments = []
            for t in times:
                share = usual_share
                if burst and burst[0] == endpoint and burst[1] <= t < burst[2]:
                    # During the burst 500s take `burst[3]` of the traffic from the other codes.
                    share = burst[3] if code == "500" else usual_share * (1 - burst[3])
                traffic = rps * daily(t, phase) * params.step_s
                increments.append(float(poisson(rng, traffic * share)))
            labels = {**params.labels, "service": "storefront", "endpoint": endpoint, "code": code}
            family.add(labels, zip_samples(times, accumulate(increments)), "_total")
    return family


def error_burst(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Request counters by endpoint and status code; one endpoint's 5xx rate bursts."""
    rng = rng_for("error_burst", params)
    endpoints = [(e, rng.uniform(5, 80), rng.uniform(0, 7200)) for e in _ENDPOINTS]
    culprit = rng.choice(_ENDPOINTS)
    begin, end = window(rng, params, options["minutes"])
    family = _request_family(params, "error_burst/data", endpoints, (culprit, begin, end, 0.3))
    selected = matchers(params, 'service="storefront"', 'code=~"5.."')
    query = f"sum by (endpoint) (rate(http_requests_total{selected}[5m]))"
    truth = GroundTruth(
        question="Errors went up on the storefront. Which endpoint, and since when?",
        query=query,
        metrics=("http_requests_total",),
        culprit={"endpoint": culprit},
        window_start=utc(begin),
        window_end=utc(end),
        rate_window_s=300,
    )
    return Incident("error_burst", params, (family,), truth)


def red_herring(params: IncidentParams, options: Mapping[str, float]) -> Incident:
    """Nothing is wrong: request rates follow their daily cycle with ordinary noise."""
    rng = rng_for("red_herring", params)
    endpoints = [(e, rng.uniform(5, 80), rng.uniform(0, 7200)) for e in _ENDPOINTS]
    family = _request_family(params, "red_herring/data", endpoints, None)
    selected = matchers(params, 'service="storefront"')
    query = f"sum by (endpoint) (rate(http_requests_total{selected}[5m]))"
    truth = GroundTruth(
        question="Is anything wrong with storefront traffic right now?",
        query=query,
        metrics=("http_requests_total",),
        culprit=None,
        window_start=None,
        window_end=None,
        rate_window_s=300,
    )
    return Incident("red_herring", params, (family,), truth)
