"""Configuration profiles: YAML files in conf/, loaded once into typed objects and passed down.

Where things are comes from settings, never from where the package was installed: the Lakewatch home
(`LAKEWATCH_HOME`, else the first of the working directory and its parents that holds `conf/local.yaml`,
else the working directory) holds `conf/`, `jobs/` and `.cache/jars`; every relative path of a profile is
relative to it. A model's hyperparameters live in its own config class next to the model; the profile's
`models:` section only overrides them, by model name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lakewatch.errors import ConfigError

DEFAULT_PROFILE = "local"
_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkSettings(_Strict):
    """How the Spark session is built."""

    master: str = "local[*]"
    app_name: str = "lakewatch"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"
    delta_packages: list[str] = Field(default_factory=lambda: ["io.delta:delta-spark_4.2_2.13:4.4.0"])
    # of what the resolver brings, only these jars go on the classpath: Spark provides the rest
    keep_jars: list[str] = Field(default_factory=lambda: ["io.delta_delta-spark", "io.delta_delta-storage"])
    jars_dir: str = ".cache/jars"
    options: dict[str, str] = Field(default_factory=dict)


Fusion = Literal["bonferroni", "harmonic"]  # how a row's signals' p-values make one (scoring.calibration.fuse)
# how entities' tail scales are pooled (scoring.calibration.tail_rate_prior)
TailPooling = Literal["empirical_bayes", "fixed"]


class TrainingSettings(_Strict):
    """What every model's training shares: the model type, the sample, the hold-out and the calibration target.

    The sample is made of blocks of `block_points` consecutive points of an entity; whole blocks are held
    out for calibration, and no training window reaches into a held-out block (nor the reverse).
    """

    default_model: str = "tcn"
    sample_size: int = 200_000
    holdout_fraction: float = 0.2
    block_points: int = 64
    seed: int = 7
    target_false_alarm_rate: float = 0.002
    window_horizon_factor: float = 2.0  # a window reaches back at most context x the entity's spacing x this
    window_max_horizon_days: float = 14.0  # and never further than this (a sparse entity warms up instead)
    calibration_scope: Literal["entity", "global"] = "entity"  # entity: each entity's own tails, shrunk to global
    # how many held-out scores the global tail's start weighs against an entity's own; x the tail fraction, how many
    # excesses the fixed pooling's prior (and the floor of the empirical one) weighs
    entity_tail_prior: float = Field(default=20.0, gt=0)
    # how fast each entity's tail falls: pooled across entities by how alike their tails are (empirical_bayes), or
    # shrunk to the global scale by entity_tail_prior x the tail fraction excesses (fixed)
    entity_tail_pooling: TailPooling = "empirical_bayes"
    signal_fusion: Fusion = "bonferroni"  # the smallest p-value x S, or their harmonic mean
    # the seasonal residuals a model is fitted on: each row's from the profile of the other folds of its entity's
    # span, cut in this many (transforms.seasonal.CrossFittedProfile: out-of-sample residuals, as scoring sees
    # them); 1: from the profile of all of it (in-sample). Calibration reads the full profile either way.
    seasonal_folds: int = Field(default=4, ge=1)


class CascadeSettings(_Strict):
    """The statistical first stage (scoring.cascade): native Spark expressions over every row pass on only the
    candidates, which the model then scores with the history its windows need; the other rows are written
    unscored (score and calibrated null, not anomalous). A row is a candidate when a feature is `gate_sigmas`
    robust scales from its entity's median or from its time-of-day profile, or has moved less than
    `flat_range` scales over its last `flat_points` points (stuck). Off by default: it stays off until
    backtests show it loses no recall (`make bench-quality` reports the gate's recall and speed-up)."""

    enabled: bool = False
    gate_sigmas: float = 4.0
    flat_points: int = Field(default=6, ge=2)
    flat_range: float = Field(default=0.05, ge=0.0)


class ScoringSettings(_Strict):
    """Scoring: Arrow batch size, device, the optional statistical cascade and how anomalies become events."""

    batch_size: int = 8192
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads_per_task: int = 1
    top_features: int = 3
    event_max_gap: int = 1  # normal points allowed between the anomalies of one event
    event_suppression: int = 0  # points after an event within which new anomalies extend it (one alert)
    event_min_points: int = 1  # events with fewer anomalous points raise no alert
    flag_lower_bound_sigmas: float = 0.0  # > 0: flag only when the surprise minus this many uncertainties crosses
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)


class DriftSettings(_Strict):
    """Drift thresholds per metric: (warn, alert) on the statistic's value."""

    bins: int = 10
    thresholds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "psi": (0.1, 0.25),
            "ks": (0.1, 0.2),
            "js": (0.1, 0.2),
            "wasserstein": (0.25, 0.5),
            "null_rate_change": (0.01, 0.05),
            "out_of_range_rate_change": (0.01, 0.05),
        }
    )
    ks_significance: float = 0.01  # KS warns or alerts only when its p-value is below this
    # an interval's quantiles (KS, Wasserstein) come from a deterministic sample of about this many rows (a hash
    # of entity and time) when it has more; counts, bins, nulls and means stay exact over every row. At 250k a
    # quantile's rank error is about 0.001 (KS within ~0.003), below every drift threshold. 0: every row.
    quantile_sample_rows: int = Field(default=250_000, ge=0)
    anomaly_rate_pvalue: tuple[float, float] = (0.01, 0.001)  # binomial p-value for warn, alert
    retrain_on_alert: bool = False


class AlertingSettings(_Strict):
    """How many alerts (events) the product may raise: the budget `lakewatch alert-budget` tunes the event
    threshold to, from the calibration and the false alarms analysts marked."""

    max_alerts_per_entity_day: float | None = Field(default=None, gt=0)  # null: no budget, every event alerts


class PromotionSettings(_Strict):
    """Champion/challenger: a newly trained version is compared with production on the most recent labeled
    (or analyst-confirmed) days and promoted only when it is not worse by more than these margins."""

    auto: bool = True  # false: candidates wait for `lakewatch models promote`
    compare_days: int = Field(default=7, ge=1)  # the days before the candidate's training end it is compared on
    max_pr_auc_drop: float = Field(default=0.02, ge=0)
    max_event_recall_drop: float = Field(default=0.02, ge=0)
    max_false_alerts_increase: float = Field(default=0.1, ge=0)  # false alerts per entity-day, absolute
    # without labels: the candidate's alerts per entity-day may exceed the budget (or production's) by this factor
    max_alert_rate_ratio: float = Field(default=1.25, ge=1)


class AirflowSettings(_Strict):
    """How the DAGs schedule and run the Spark jobs."""

    spark_conn_id: str = "spark_local"
    default_dataset: str = "demo_metrics"
    score_schedule: str | None = "0 0 * * *"  # daily: each run scores the UTC day that just ended; null: manual
    train_schedule: str | None = "0 3 * * 1"  # weekly, Monday; null: only on drift-alert Asset events
    start_date: str = "2026-01-01"  # the first interval the schedule knows of
    catchup: bool = False  # true: a newly enabled DAG scores every day since start_date, once each
    train_lookback_days: int = 7
    retries: int = 2
    retry_delay_s: int = 30
    execution_timeout_s: int = 3600
    owner: str = "lakewatch"


class Settings(_Strict):
    """One profile: where the lakehouse is, how Spark runs, and the job defaults."""

    profile: str = DEFAULT_PROFILE
    home: str = "."
    lakehouse: str = "./lakehouse"
    shared_dir: str = "../shared"
    datasets_dir: str = "conf/datasets"
    jobs_dir: str = "jobs"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)  # model name -> overrides of its config
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    source: str | None = None  # the YAML file this profile was loaded from (set by load_settings)

    def with_lakehouse(self, root: str) -> "Settings":
        """A local root is made absolute: executors of a cluster do not share the driver's working folder."""
        if "://" not in root:
            root = str(self.path(root))
        return self.model_copy(update={"lakehouse": root})

    def path(self, relative: str) -> Path:
        """A path of the profile: absolute as given, else relative to the Lakewatch home."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (Path(self.home) / p).resolve()

    def jars_path(self) -> Path:
        return self.path(self.spark.jars_dir)

    def with_cascade(self, enabled: bool = True) -> "Settings":
        """These settings with the statistical cascade on (or off): scoring.cascade.enabled."""
        cascade = self.scoring.cascade.model_copy(update={"enabled": enabled})
        return self.model_copy(update={"scoring": self.scoring.model_copy(update={"cascade": cascade})})

    def with_model_overrides(self, name: str, overrides: dict[str, Any]) -> "Settings":
        models = {**self.models, name: {**self.models.get(name, {}), **overrides}}
        return self.model_copy(update={"models": models})


def find_home(env: Mapping[str, str]) -> Path:
    """LAKEWATCH_HOME, else the nearest folder from the working directory up that holds conf/local.yaml."""
    if env.get("LAKEWATCH_HOME"):
        return Path(env["LAKEWATCH_HOME"]).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "conf" / f"{DEFAULT_PROFILE}.yaml").is_file():
            return folder
    return cwd


def _expand_env(value: object, env: Mapping[str, str]) -> object:
    """Replace ${VAR} and ${VAR:-default} in strings; a missing variable with no default is an error."""
    if isinstance(value, dict):
        return {k: _expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"configuration needs the environment variable {name}, which is not set")

    return _ENV_REF.sub(repl, value)


def profile_path(profile: str, home: Path) -> Path:
    """A profile is a name in <home>/conf/ (local, cluster) or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return home / "conf" / f"{profile}.yaml"


def read_yaml(path: Path, what: str) -> tuple[Any, yaml.Node | None]:
    """A YAML file's data and its node tree (for line numbers), or a ConfigError naming the file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path}{where} is not valid YAML: {problem}") from None


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML key at loc (a pydantic error location), as deep as it can be found."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def describe_validation(exc: ValidationError, path: Path, node: yaml.Node | None, what: str) -> ConfigError:
    """A pydantic error as one message that names the file, each field and its line."""
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(node, loc)
        msg = "unknown key (misspelt?)" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{field}{f' (line {line})' if line else ''}: {msg}")
    return ConfigError(f"{what} {path}: " + "; ".join(parts))


def load_settings(profile: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load a profile; LAKEWATCH_CONF picks it and LAKEWATCH_LAKEHOUSE overrides the root."""
    env = dict(os.environ if env is None else env)
    home = find_home(env)
    path = profile_path(profile or env.get("LAKEWATCH_CONF") or DEFAULT_PROFILE, home)
    if not path.exists():
        raise ConfigError(f"configuration profile not found: {path}")
    raw, node = read_yaml(path, "profile")
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"profile {path} must be a YAML mapping of settings, not {type(raw).__name__}")
    try:
        settings = Settings.model_validate({**(_expand_env(raw or {}, env)), "home": str(home),
                                            "source": str(path.resolve())})
    except ValidationError as exc:
        raise describe_validation(exc, path, node, "profile") from None
    if env.get("LAKEWATCH_LAKEHOUSE"):
        settings = settings.with_lakehouse(env["LAKEWATCH_LAKEHOUSE"])
    return settings.with_lakehouse(settings.lakehouse)
