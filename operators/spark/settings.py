"""Where a Spark task runs, decided at run time from one setting.

Order of precedence (later wins):
1. defaults in code (``DEFAULTS``);
2. the Airflow Variable ``spark_platform_config`` (JSON: role ARNs, application id,
   scripts prefix, Iceberg catalog, ...);
3. the Airflow Variable ``spark_platform`` (``glue`` | ``emr_serverless`` | ``local``);
4. the run's params: ``platform`` (anything but ``default`` overrides the Variable).

Nothing here runs at DAG parse time: operators call :func:`resolve_settings` in
``execute``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from operators.vpc.ranking import STRATEGIES

PLATFORMS = ("glue", "emr_serverless", "local")
PLATFORM_VARIABLE = "spark_platform"
CONFIG_VARIABLE = "spark_platform_config"
USE_VARIABLE = "default"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"

# Glue 5.0 / EMR 7.x run Spark 3.5 with Iceberg; these are the production defaults.
DEFAULTS: dict[str, Any] = {
    "platform": "glue",
    "scripts_uri": None,  # s3://bucket/prefix where the deploy step put spark_jobs/
    "glue_role_arn": None,
    "glue_version": "5.0",
    "glue_worker_type": "G.1X",
    "glue_number_of_workers": 2,
    "glue_job_prefix": "mwaa-pipelines-",
    # Glue refuses a run over the job's MaxConcurrentRuns (ConcurrentRunsExceededException); a job
    # is shared by every task running the same script. The operator takes at least its task's
    # own fan-out (SparkScriptOperator.concurrent_runs).
    "glue_max_concurrent_runs": 10,
    # Glue connections (NETWORK or JDBC) a Spark task's job runs in, to reach a database or a
    # Redshift cluster in a private subnet. Ranked at run time by the healthiest-subnet checks
    # (operators.vpc.choice): the job gets the healthy ones in rank order. Empty: no VPC.
    "glue_connections": [],
    "glue_connection_strategy": "capacity",
    "emr_application_id": None,
    "emr_execution_role_arn": None,
    "log_uri": None,
    # Seconds between a Glue or EMR Serverless run's status checks (the provider's waiter_delay,
    # in the triggerer when deferred). Each wait ends up to this long after the run does; a
    # task's own waiter_delay= wins.
    "waiter_delay": 30,
    "iceberg_catalog_name": "lake",
    "iceberg_catalog": {
        "catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    },
    "spark_conf": {},
    "local_master": "local[2]",
    "local_jars_dir": None,
    "local_scripts_dir": None,
}


class SettingsError(ValueError):
    """A platform setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class SparkPlatformSettings:
    platform: str
    scripts_uri: str | None = None
    glue_role_arn: str | None = None
    glue_version: str = "5.0"
    glue_worker_type: str = "G.1X"
    glue_number_of_workers: int = 2
    glue_job_prefix: str = "mwaa-pipelines-"
    glue_max_concurrent_runs: int = 10
    glue_connections: tuple[str, ...] = ()
    glue_connection_strategy: str = "capacity"
    emr_application_id: str | None = None
    emr_execution_role_arn: str | None = None
    log_uri: str | None = None
    waiter_delay: int = 30
    iceberg_catalog_name: str = "lake"
    iceberg_catalog: dict[str, str] = field(default_factory=dict)
    spark_conf: dict[str, str] = field(default_factory=dict)
    local_master: str = "local[2]"
    local_jars_dir: str | None = None
    local_scripts_dir: str | None = None

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise SettingsError(
                f"platform {self.platform!r} needs {', '.join(missing)}: set "
                f"{'them' if len(missing) > 1 else 'it'} in the Airflow Variable {CONFIG_VARIABLE!r}"
            )

    def iceberg_spark_conf(self) -> dict[str, str]:
        """Spark properties that register the Iceberg catalog under its configured name."""
        if not self.iceberg_catalog:
            return {}
        prefix = f"spark.sql.catalog.{self.iceberg_catalog_name}"
        conf = {
            "spark.sql.extensions": ICEBERG_EXTENSIONS,
            prefix: "org.apache.iceberg.spark.SparkCatalog",
        }
        conf.update({f"{prefix}.{key}": str(value) for key, value in self.iceberg_catalog.items()})
        return conf


def merge_settings(
    config_variable: str | Mapping[str, Any] | None,
    platform_variable: str | None,
    params: Mapping[str, Any] | None,
    explicit_platform: str | None = None,
) -> SparkPlatformSettings:
    """Combine the layers above into settings; pure, so it is tested without Airflow."""
    merged = dict(DEFAULTS)
    if config_variable:
        if isinstance(config_variable, str):
            try:
                config_variable = json.loads(config_variable)
            except json.JSONDecodeError as err:
                raise SettingsError(f"Airflow Variable {CONFIG_VARIABLE!r} is not valid JSON: {err}") from err
        if not isinstance(config_variable, Mapping):
            raise SettingsError(f"Airflow Variable {CONFIG_VARIABLE!r} must be a JSON object")
        unknown = sorted(set(config_variable) - set(DEFAULTS))
        if unknown:
            raise SettingsError(
                f"Airflow Variable {CONFIG_VARIABLE!r} has unknown keys {unknown}; known: {sorted(DEFAULTS)}"
            )
        merged.update(config_variable)
    if platform_variable:
        merged["platform"] = platform_variable.strip()
    requested = (params or {}).get("platform")
    if requested and requested != USE_VARIABLE:
        merged["platform"] = requested
    if explicit_platform and explicit_platform != USE_VARIABLE:
        merged["platform"] = explicit_platform
    if merged["platform"] not in PLATFORMS:
        raise SettingsError(
            f"unknown Spark platform {merged['platform']!r} (from the Variable {PLATFORM_VARIABLE!r} "
            f"or the run's 'platform' param): use one of {', '.join(PLATFORMS)}"
        )
    limit = merged["glue_max_concurrent_runs"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise SettingsError(f"glue_max_concurrent_runs must be a whole number of at least 1, got {limit!r}")
    delay = merged["waiter_delay"]
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 1:
        raise SettingsError(f"waiter_delay must be a whole number of seconds, at least 1, got {delay!r}")
    merged["glue_connections"] = connection_names(merged["glue_connections"], "glue_connections")
    if merged["glue_connection_strategy"] not in STRATEGIES:
        raise SettingsError(
            f"glue_connection_strategy {merged['glue_connection_strategy']!r} is unknown: "
            f"use one of {', '.join(STRATEGIES)}"
        )
    settings = SparkPlatformSettings(**merged)
    if settings.scripts_uri:
        settings = replace(settings, scripts_uri=settings.scripts_uri.rstrip("/"))
    return settings


def connection_names(value: Any, where: str) -> tuple[str, ...]:
    """A list of Glue connection names, or one comma-separated string, as a tuple without
    blanks or repeats (the order is kept: it is the order of preference among equals)."""
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise SettingsError(f"{where} must be a list of Glue connection names, got {value!r}")
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def resolve_settings(context: Mapping[str, Any], explicit_platform: str | None = None) -> SparkPlatformSettings:
    """Read the Variables and the run's params; call only at run time."""
    from airflow.sdk import Variable

    return merge_settings(
        Variable.get(CONFIG_VARIABLE, default=None),
        Variable.get(PLATFORM_VARIABLE, default=None),
        context.get("params") or {},
        explicit_platform,
    )
