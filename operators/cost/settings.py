"""Settings of the cost DAGs: the ``cost_alerts`` Variable, the trigger form, and defaults.

The Variable (JSON) holds where things live and the standing policy; the trigger form can
override the window, thresholds, budgets and dry run of one run. Everything is checked
here, before any AWS call or Spark start, and a bad value names its field.
"""

from __future__ import annotations

import datetime as dt
import json

from spark_jobs.cost.model import RateError, rates_from

VARIABLE = "cost_alerts"
THRESHOLD_KEYS = ("max_workers", "max_minutes", "cost_jump", "min_trailing_cost")


def resolve_settings(params: dict, variable: dict | None, data_uri: str | None) -> dict:
    """One run's settings: the Variable's, with the trigger form's non-empty values on top."""
    variable = dict(variable or {})
    base = (variable.get("data_uri") or data_uri or "").rstrip("/")
    if not base and not variable.get("ledger_uri"):
        raise ValueError(
            "cost_alerts: no `ledger_uri` in the Variable and no `pipelines_data_uri` Variable to derive it"
        )
    cfg = {
        "aws_conn_id": variable.get("aws_conn_id", "aws_default"),
        "ledger_uri": variable.get("ledger_uri") or f"{base}/cost/ledger",
        "aggregates_uri": variable.get("aggregates_uri") or f"{base}/cost/aggregates",
        "alert_state_uri": variable.get("alert_state_uri") or f"{base}/cost/alerts/sent.json",
        "report_uri": variable.get("report_uri") or f"{base}/cost/reports",
        "topic_arn": variable.get("topic_arn"),
        "sender": variable.get("sender"),
        "recipients": list(variable.get("recipients") or []),
        "rates": dict(variable.get("rates") or {}),
        "thresholds": {**dict(variable.get("thresholds") or {})},
        "budgets": dict(variable.get("budgets") or {}),
        "window_days": int(variable.get("window_days", 7)),
        "lookback_days": int(variable.get("lookback_days", 35)),
        "overlap_hours": float(variable.get("overlap_hours", 6)),
        "as_of": None,
        "dry_run": False,
    }
    for key in THRESHOLD_KEYS:
        if params.get(key) is not None:
            cfg["thresholds"][key] = params[key]
    for key in ("window_days", "as_of", "dry_run"):
        if params.get(key) not in (None, ""):
            cfg[key] = params[key]
    if params.get("budgets"):
        cfg["budgets"] = dict(params["budgets"])
    return check(cfg)


def check(cfg: dict) -> dict:
    for key in ("ledger_uri", "aggregates_uri", "alert_state_uri", "report_uri"):
        if not str(cfg[key]).startswith("s3://"):
            raise ValueError(f"cost_alerts: `{key}` must be an s3:// URI, got {cfg[key]!r}")
    try:
        rates_from(cfg["rates"])
    except RateError as exc:
        raise ValueError(f"cost_alerts: `rates`: {exc}") from exc
    unknown = set(cfg["thresholds"]) - set(THRESHOLD_KEYS)
    if unknown:
        raise ValueError(f"cost_alerts: unknown threshold(s) {sorted(unknown)}; known: {list(THRESHOLD_KEYS)}")
    for key, value in cfg["thresholds"].items():
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"cost_alerts: threshold `{key}` must be a number >= 0, got {value!r}")
    for group, budget in cfg["budgets"].items():
        tag, _, value = str(group).partition("=")
        if tag not in ("team", "cost_center", "environment") or not value:
            raise ValueError(
                f"cost_alerts: budget group {group!r} must be team=..., cost_center=... or environment=..."
            )
        if not isinstance(budget, int | float) or budget < 0:
            raise ValueError(f"cost_alerts: budget of {group!r} must be a number >= 0, got {budget!r}")
    if not 1 <= int(cfg["window_days"]) <= 366:
        raise ValueError(f"cost_alerts: `window_days` must be 1..366, got {cfg['window_days']!r}")
    if cfg["as_of"]:
        try:
            dt.date.fromisoformat(str(cfg["as_of"]))
        except ValueError as exc:
            raise ValueError(f"cost_alerts: `as_of` must be a date (YYYY-MM-DD), got {cfg['as_of']!r}") from exc
    return cfg


def aggregation_arguments(cfg: dict, as_of: str) -> list[str]:
    """``spark_jobs/cost_aggregation.py``'s arguments for one run."""
    return [
        "--ledger", cfg["ledger_uri"], "--output", cfg["aggregates_uri"], "--as-of", as_of,
        "--window-days", str(cfg["window_days"]), "--rates", json.dumps(cfg["rates"]),
        "--thresholds", json.dumps(cfg["thresholds"]), "--budgets", json.dumps(cfg["budgets"]),
    ]  # fmt: skip
