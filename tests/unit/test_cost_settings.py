"""The cost DAGs' settings: defaults, trigger-form overrides, and errors that name the field."""

from __future__ import annotations

import json

import pytest

from operators.cost.settings import aggregation_arguments, resolve_settings

VARIABLE = {"topic_arn": "arn:aws:sns:us-east-1:123456789012:t", "budgets": {"team=finance": 100}}


def test_defaults_derive_locations_from_the_data_uri():
    cfg = resolve_settings({}, VARIABLE, "s3://data/")
    assert cfg["ledger_uri"] == "s3://data/cost/ledger"
    assert cfg["alert_state_uri"] == "s3://data/cost/alerts/sent.json"
    assert cfg["window_days"] == 7 and cfg["thresholds"] == {} and cfg["dry_run"] is False


def test_trigger_form_overrides_one_run():
    params = {"max_workers": 20, "max_minutes": None, "window_days": 14, "dry_run": True,
              "budgets": {"team=analytics": 50}, "as_of": "2026-11-01"}  # fmt: skip
    cfg = resolve_settings(params, VARIABLE, "s3://data")
    assert cfg["thresholds"] == {"max_workers": 20} and cfg["window_days"] == 14 and cfg["dry_run"] is True
    assert cfg["budgets"] == {"team=analytics": 50}
    args = aggregation_arguments(cfg, cfg["as_of"])
    assert args[args.index("--as-of") + 1] == "2026-11-01"
    assert json.loads(args[args.index("--thresholds") + 1]) == {"max_workers": 20}


@pytest.mark.parametrize(
    ("params", "variable", "message"),
    [
        ({}, {"ledger_uri": "/tmp/ledger"}, "`ledger_uri` must be an s3:// URI"),
        ({}, {"rates": {"glue_dpu_hour": "cheap"}}, "`rates`"),
        ({"budgets": {"squad=x": 1}}, {}, "budget group 'squad=x'"),
        ({"budgets": {"team=x": -1}}, {}, "budget of 'team=x'"),
        ({"as_of": "yesterday"}, {}, "`as_of` must be a date"),
        ({"window_days": 0}, {}, "`window_days` must be 1..366"),
        ({}, {"thresholds": {"max_workerz": 3}}, "unknown threshold"),
    ],
)
def test_bad_settings_name_the_field(params, variable, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings(params, variable, "s3://data")


def test_no_location_at_all_is_an_error():
    with pytest.raises(ValueError, match="pipelines_data_uri"):
        resolve_settings({}, {}, None)
