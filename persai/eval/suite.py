"""Evaluation scenarios as data: a YAML (or JSON) file of incidents, questions and expectations.

    suite = load_suite(None)                       # the built-in set (scenarios/default.yaml)
    cases = prepare(suite, end=datetime(...))      # incidents generated, expectations resolved
    write_data(cases, Path("eval.om"))             # for `promtool tsdb create-blocks-from …`

Every scenario's series carry the label `cluster="eval-<hash of its name>"`, so that all of them
share one Prometheus and the question can point at its own data without giving the answer away.
The same suite, seed and end always give the same data, culprits and windows; each scenario's
generator seed mixes the suite's seed with the scenario's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from persai.eval.scoring import Expected
from persai.incidents import SCENARIOS, Incident, IncidentParams, generate, to_openmetrics

DEFAULT_DATASOURCE = "/proxy/globaldatasources/eval"
DEFAULT_SCOPE = (
    'The system in question is the cluster "{cluster}": look only at series with the label '
    'cluster="{cluster}" and ignore all others.'
)
CLUSTER_LABEL = "cluster"


class SuiteError(ValueError):
    """A scenario file that cannot be read, or scenarios that contradict their generators."""


class Expectation(BaseModel):
    """What a good answer finds. Left out, culprit, window and metrics come from the generator."""

    model_config = ConfigDict(extra="forbid")

    culprit_label: str | None = None
    """The label that tells the culprit apart (`service`, `pod`…); checked against the data."""
    culprit: list[str] | None = None
    """Accepted culprit values, instead of the generated one."""
    metrics: list[str] | None = None
    """Metric families a good answer's PromQL uses (any one of them)."""
    tolerance_min: float = Field(default=5.0, ge=0)
    """How far (minutes) a stated time may lie outside the anomaly window."""
    inconclusive: bool = False
    """Nothing is wrong: a good answer says so and names no culprit."""
    max_others: int = Field(default=3, ge=0)
    """How many other candidates an answer may name beside the culprit."""


class EvalScenario(BaseModel):
    """One scenario: which incident to generate, what to ask, what a good answer finds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    generator: str
    options: dict[str, float] = Field(default_factory=dict)
    seed: int | None = None
    question: str = Field(min_length=1)
    datasource: str | None = None
    expect: Expectation = Field(default_factory=Expectation)

    @model_validator(mode="after")
    def _known_generator(self) -> EvalScenario:
        generator = SCENARIOS.get(self.generator)
        if generator is None:
            raise ValueError(f"unknown generator {self.generator!r}; known: {', '.join(SCENARIOS)}")
        unknown = sorted(set(self.options) - set(generator.defaults))
        if unknown:
            known = ", ".join(generator.defaults) or "none"
            raise ValueError(f"{self.generator} has no option(s) {unknown}; known: {known}")
        return self

    def seed_from(self, base: int) -> int:
        """The generator's seed: the suite's (or command line's) `base` mixed with the name, so
        that two scenarios of one generator differ; `seed` in the file pins it instead."""
        return base * 1_000_003 + int(hashlib.sha256(self.name.encode()).hexdigest()[:6], 16)

    @property
    def cluster(self) -> str:
        """The neutral value of the `cluster` label stamped on this scenario's series."""
        return "eval-" + hashlib.sha256(self.name.encode()).hexdigest()[:6]


class Suite(BaseModel):
    """A set of scenarios and what they share."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    datasource: str = DEFAULT_DATASOURCE
    seed: int = 1
    duration_min: float = Field(default=120, gt=0)
    """How much data each scenario has before the end, in minutes."""
    scope: str = DEFAULT_SCOPE
    """Appended to every question (`{cluster}` becomes the scenario's label value)."""
    scenarios: list[EvalScenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        names = [scenario.name for scenario in self.scenarios]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"scenario names must be unique: {', '.join(repeated)}")
        return self

    def select(self, names: Iterable[str] | None) -> Suite:
        """The suite with only the named scenarios (all when `names` is empty or None)."""
        wanted = list(names or ())
        if not wanted:
            return self
        unknown = sorted(set(wanted) - {s.name for s in self.scenarios})
        if unknown:
            raise SuiteError(f"no scenario named {', '.join(unknown)} in this suite")
        chosen = [s for s in self.scenarios if s.name in wanted]
        return self.model_copy(update={"scenarios": chosen})


@dataclass(frozen=True)
class Case:
    """A scenario made concrete: its data, the question as asked and what a good answer finds."""

    scenario: EvalScenario
    incident: Incident
    question: str
    datasource: str
    start: datetime
    end: datetime
    expected: Expected


def load_suite(path: Path | None = None) -> Suite:
    """Read a scenario file (YAML or JSON); the built-in set when `path` is None."""
    if path is None:
        source = resources.files("persai.eval").joinpath("scenarios/default.yaml")
        text, where = source.read_text(encoding="utf-8"), "the built-in scenarios"
    else:
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise SuiteError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return Suite.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{where} is not YAML or JSON: {exc}") from exc
    except ValidationError as exc:
        raise SuiteError(f"{where}: {exc}") from exc


def prepare(
    suite: Suite, *, end: datetime, seed: int | None = None, datasource: str | None = None
) -> list[Case]:
    """Generate every scenario's incident ending at `end` and resolve what is expected of it."""
    cases = []
    base_seed = seed if seed is not None else suite.seed
    for scenario in suite.scenarios:
        params = IncidentParams(
            end=end,
            duration=timedelta(minutes=suite.duration_min),
            seed=scenario.seed if scenario.seed is not None else scenario.seed_from(base_seed),
            labels={CLUSTER_LABEL: scenario.cluster},
        )
        incident = generate(scenario.generator, params, **scenario.options)
        scope = suite.scope.replace("{cluster}", scenario.cluster).strip()
        cases.append(
            Case(
                scenario=scenario,
                incident=incident,
                question=f"{scenario.question.strip()}\n\n{scope}".strip(),
                datasource=datasource or scenario.datasource or suite.datasource,
                start=params.start,
                end=params.end,
                expected=expected_of(scenario, incident),
            )
        )
    return cases


def expected_of(scenario: EvalScenario, incident: Incident) -> Expected:
    """What a good answer finds, from the scenario's expectations and the incident's truth."""
    expect, truth = scenario.expect, incident.truth
    if expect.inconclusive and truth.culprit:
        raise SuiteError(f"{scenario.name}: {scenario.generator} has a culprit; not inconclusive")
    if not expect.inconclusive and not truth.culprit and not expect.culprit:
        raise SuiteError(f"{scenario.name}: {scenario.generator} has no culprit: inconclusive?")
    label = next(iter(truth.culprit or {}), None)
    if expect.culprit_label and truth.culprit and expect.culprit_label != label:
        raise SuiteError(
            f"{scenario.name}: {scenario.generator} tells its culprit apart by {label!r}, "
            f"not {expect.culprit_label!r}"
        )
    culprit = list(expect.culprit or (truth.culprit or {}).values())
    # An instance may be named by its host alone (`10.0.0.12` for `10.0.0.12:9100`).
    culprit += [v.rsplit(":", 1)[0] for v in culprit if ":" in v and v.rsplit(":", 1)[0]]
    return Expected(
        culprit=() if expect.inconclusive else tuple(dict.fromkeys(culprit)),
        others=_candidates(incident, label, exclude=culprit),
        window_start=truth.window_start,
        window_end=truth.window_end,
        tolerance=timedelta(minutes=expect.tolerance_min),
        lag=timedelta(seconds=truth.rate_window_s),
        metrics=tuple(expect.metrics or truth.metrics),
        inconclusive=expect.inconclusive,
        asked_range=(incident.params.start, incident.params.end),
        max_others=expect.max_others,
    )


def _candidates(incident: Incident, label: str | None, exclude: list[str]) -> tuple[str, ...]:
    """Every value the culprit's label takes in the data, the culprit's own excepted."""
    if label is None:
        return ()
    values = (
        labels[label]
        for family in incident.families
        for _, labels, _ in family.series
        if label in labels
    )
    return tuple(v for v in dict.fromkeys(values) if v not in exclude)


def write_data(cases: Iterable[Case], path: Path) -> int:
    """Write every case's data as one OpenMetrics file; returns the number of series."""
    incidents = [case.incident for case in cases]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_openmetrics(incidents), encoding="utf-8")
    return sum(incident.series_count for incident in incidents)
