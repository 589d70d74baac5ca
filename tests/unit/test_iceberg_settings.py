"""The iceberg_maintenance DAG's settings: Variable, trigger-form overrides, job arguments, report."""

from __future__ import annotations

import json

import pytest

from operators.iceberg.settings import format_reports, job_arguments, report_location, resolve_settings
from spark_jobs import iceberg_maintenance as job
from spark_jobs.iceberg.policy import PolicyError

VARIABLE = {
    "tables": ["sales.orders", "sales.items"],
    "policy": {"retain_last": 3, "snapshot_max_age_days": 2},
    "storage": {"write_tags": {"lifecycle": "live"}, "delete_tags": {"deleted": "true"}},
    "lifecycle": {"bucket": "lake"},
}


def test_trigger_form_overrides_the_variable_field_by_field():
    cfg = resolve_settings({"target_file_size_mb": 128, "retain_last": 7, "sort_key": "a,b",
                            "policy_overrides": {"rewrite_manifests": False}, "dry_run": True}, VARIABLE, "s3://data")  # fmt: skip
    assert cfg["policy"]["target_file_size_bytes"] == 128 * 1024 * 1024
    assert cfg["policy"]["retain_last"] == 7 and cfg["policy"]["snapshot_max_age_days"] == 2
    assert cfg["policy"]["sort_key"] == ["a", "b"] and cfg["policy"]["rewrite_manifests"] is False
    assert cfg["tables"] == VARIABLE["tables"] and cfg["dry_run"] is True
    assert cfg["report_uri"] == "s3://data/iceberg-maintenance"
    assert cfg["lifecycle"] == {"bucket": "lake", "prefix": "", "transition_days": 30, "expire_days": 180,
                                "storage_class": "GLACIER_IR"}  # fmt: skip


def test_form_tables_replace_the_variables():
    assert resolve_settings({"tables": ["x.y"]}, VARIABLE, None)["tables"] == ["x.y"]
    assert resolve_settings({"tables": []}, VARIABLE, None)["tables"] == VARIABLE["tables"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"orphan_age_days": 0.1}, "orphan_age_days"),
        ({"policy_overrides": {"no_such": 1}}, "unknown setting"),
        ({"archive_snapshot_id": 5}, "go together"),
    ],
)
def test_bad_values_fail_at_settings_with_their_name(params, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings(params, VARIABLE, None)


def test_bad_storage_in_the_variable_is_named():
    with pytest.raises(PolicyError, match="S3 allows 10"):
        resolve_settings({}, {**VARIABLE, "storage": {"write_tags": {f"k{i}": "v" for i in range(11)}}}, None)


def test_job_arguments_round_trip_through_the_jobs_parser():
    cfg = resolve_settings({"dry_run": True, "archive_snapshot_id": 42, "archive_table": "arch.orders_v1"}, VARIABLE, "s3://d")  # fmt: skip
    first = job_arguments(cfg, "sales.orders", "run1")
    second = job_arguments(cfg, "sales.items", "run1")
    args = job.parse_job_args(job.build_parser(), first)
    policy, storage, tables, _ = job.settings_from(args)
    assert tables == ["sales.orders"] and args.dry_run and args.archive_snapshot == 42
    assert policy.retain_last == 3 and storage.delete_tags == {"deleted": "true"}
    assert args.report_uri == report_location("s3://d/iceberg-maintenance", "run1", "sales.orders")
    assert "--archive-table" not in second  # archived from the first table only


def test_job_rejects_bad_settings_before_spark_with_exit_2(capsys):
    assert job.main(["--table", "a.b", "--policy", "{not json"]) == 2
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] is False and "--policy: not JSON" in out["error"]
    assert job.main(["--table", "a.b", "--storage", json.dumps({"delete_tags": {}})]) == 2
    assert "at least one delete tag" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


def test_report_table_shows_before_and_after():
    report = {"tables": [{"table": "lake.sales.orders", "before": {"data_files": 120, "avg_file_bytes": 1048576, "small_files": 110,
              "snapshots": 9, "manifests": 12, "delete_files": 4}, "after": {"data_files": 3, "avg_file_bytes": 41943040,
              "small_files": 0, "snapshots": 1, "manifests": 1, "delete_files": 0}, "bytes_rewritten": 115343360,
              "write_tags": {"coverage": 1.0}, "delete_tags": {"coverage": 1.0},
              "plan": {"actions": [{"kind": "rewrite_data_files", "reason": "2 of 5 partition(s) unhealthy"}]}}]}  # fmt: skip
    text = format_reports([report])
    assert "120->3" in text and "1.00MB->40.00MB" in text and "110->0" in text and "110.00MB" in text
    assert "rewrite_data_files: 2 of 5 partition(s) unhealthy" in text and "1.0/1.0" in text
