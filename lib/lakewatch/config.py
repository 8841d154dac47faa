"""Configuration profiles: YAML files in conf/, loaded once into typed objects and passed down."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field

def _project_root() -> Path:
    """The checkout holding conf/: the package's grandparent, or the working directory when the package
    was shipped as a zip (spark-submit --py-files) and is imported from there."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "conf").is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()
CONF_DIR = PROJECT_ROOT / "conf"
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
    delta_packages: list[str] = Field(
        default_factory=lambda: ["io.delta:delta-spark_4.2_2.13:4.4.0"]
    )
    # of what the resolver brings, only these jars go on the classpath: Spark provides the rest
    keep_jars: list[str] = Field(default_factory=lambda: ["io.delta_delta-spark", "io.delta_delta-storage"])
    jars_dir: str = ".cache/jars"
    options: dict[str, str] = Field(default_factory=dict)


class TrainingSettings(_Strict):
    """Training of a model: sample size, optimisation and calibration targets."""

    sample_size: int = 200_000
    holdout_fraction: float = 0.2
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 1e-3
    hidden: list[int] = Field(default_factory=lambda: [32, 16])
    latent: int = 4
    seed: int = 7
    robust_drop_fraction: float = 0.02
    warmup_epochs: int = 3
    target_false_alarm_rate: float = 0.002


class ScoringSettings(_Strict):
    """Scoring: Arrow batch size, device and how anomalies become events."""

    batch_size: int = 8192
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads_per_task: int = 1
    top_features: int = 3
    event_max_gap: int = 1


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
    anomaly_rate_pvalue: tuple[float, float] = (0.01, 0.001)  # binomial p-value for warn, alert
    retrain_on_alert: bool = False


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
    lakehouse: str = "./lakehouse"
    shared_dir: str = str(PROJECT_ROOT.parent / "shared")
    datasets_dir: str = str(CONF_DIR / "datasets")
    spark: SparkSettings = Field(default_factory=SparkSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    source: str | None = None  # the YAML file this profile was loaded from (set by load_settings)

    def with_lakehouse(self, root: str) -> "Settings":
        """A local root is made absolute: executors of a cluster do not share the driver's working folder."""
        if "://" not in root:
            root = str(Path(root).resolve())
        return self.model_copy(update={"lakehouse": root})

    def jars_path(self) -> Path:
        path = Path(self.spark.jars_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path


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
        raise ValueError(f"configuration needs the environment variable {name}, which is not set")

    return _ENV_REF.sub(repl, value)


def profile_path(profile: str) -> Path:
    """A profile is a name in conf/ (local, cluster) or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return CONF_DIR / f"{profile}.yaml"


def load_settings(profile: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load a profile; LAKEWATCH_CONF picks it and LAKEWATCH_LAKEHOUSE overrides the root."""
    env = dict(os.environ if env is None else env)
    path = profile_path(profile or env.get("LAKEWATCH_CONF") or DEFAULT_PROFILE)
    if not path.exists():
        raise FileNotFoundError(f"configuration profile not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    settings = Settings.model_validate({**_expand_env(raw, env), "source": str(path.resolve())})
    if env.get("LAKEWATCH_LAKEHOUSE"):
        settings = settings.with_lakehouse(env["LAKEWATCH_LAKEHOUSE"])
    return settings.with_lakehouse(settings.lakehouse)


