"""The maintenance planner and its settings: examples for each rule, properties over wide inputs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.iceberg.plan import (
    PartitionStats,
    SnapshotInfo,
    TableState,
    compaction_reason,
    partition_predicate,
    plan_table_maintenance,
    time_range,
)
from spark_jobs.iceberg.policy import (
    MiB,
    PolicyError,
    StorageSettings,
    policy_from,
    storage_from,
)

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
POLICY = policy_from({"target_file_size_bytes": 64 * MiB, "snapshot_max_age_days": 5, "retain_last": 2})


def part(value, files=10, small=0, size=64 * MiB, records=1000, **kw) -> PartitionStats:
    small_bytes = small * MiB
    return PartitionStats(
        partition=(("p", value),),
        data_files=files,
        data_bytes=(files - small) * size + small_bytes,
        small_files=small,
        small_bytes=small_bytes,
        records=records,
        **kw,
    )


def state(*partitions, snapshots=None, manifests=3, manifest_bytes=30_000, **kw) -> TableState:
    snaps = snapshots or (SnapshotInfo(1, NOW - dt.timedelta(hours=1)),)
    return TableState("lake.db.t", tuple(partitions), tuple(snaps), manifests, manifest_bytes, **kw)


def test_only_partitions_over_the_small_file_threshold_are_compacted():
    plan = plan_table_maintenance(
        state(part(0, small=9), part(1, small=1), part(2), part(3, files=8, small=8)), POLICY, NOW
    )
    action = plan.action("rewrite_data_files")
    assert action is not None and action.strategy == "binpack"
    assert action.partitions == ((("p", 0),), (("p", 3),))
    opts = dict(action.options)
    assert opts["partial-progress.enabled"] == "true"
    assert opts["target-file-size-bytes"] == str(64 * MiB)
    assert opts["min-file-size-bytes"] == str(48 * MiB)
    assert "delete-ratio-threshold" not in opts
    assert "2 of 4 partition(s) unhealthy" in action.reason


def test_a_healthy_table_gets_no_rewrite_and_says_why():
    plan = plan_table_maintenance(state(part(0, small=2), part(1)), POLICY, NOW)
    assert "rewrite_data_files" not in plan.kinds()
    assert any(kind == "rewrite_data_files" and "small files" in why for kind, why in plan.skipped)


def test_few_small_files_are_not_worth_a_rewrite_even_when_they_are_the_whole_partition():
    assert compaction_reason(part(0, files=4, small=4), POLICY) is None
    assert compaction_reason(part(0, files=5, small=5), POLICY) is not None


def test_every_partition_unhealthy_rewrites_the_whole_table_without_a_filter():
    plan = plan_table_maintenance(state(part(0, small=10), part(1, small=6)), POLICY, NOW)
    assert plan.action("rewrite_data_files").partitions == ()


def test_sort_strategy_from_the_policy_or_the_tables_sort_order():
    sorted_policy = policy_from({"sort_key": "a,b", "zorder": True})
    a = plan_table_maintenance(state(part(0, small=9)), sorted_policy, NOW).action("rewrite_data_files")
    assert (a.strategy, a.sort_order) == ("sort", ("a", "b"))
    b = plan_table_maintenance(state(part(0, small=9), sort_order=("ts",)), POLICY, NOW).action("rewrite_data_files")
    assert (b.strategy, b.sort_order) == ("sort", ("ts",))


def test_heavy_position_deletes_rewrite_data_with_delete_options():
    heavy = part(0, records=1000, position_delete_files=2, position_deletes=400)
    plan = plan_table_maintenance(state(heavy, part(1)), POLICY, NOW)
    action = plan.action("rewrite_data_files")
    assert action.partitions == ((("p", 0),),)
    assert dict(action.options)["delete-ratio-threshold"] == "0.3"
    assert plan.partition_notes == (((("p", 0),), "compact: position deletes cover 40% of 1000 rows"),)


def test_position_delete_files_piling_up_are_rewritten_only_where_they_pile_up():
    plan = plan_table_maintenance(state(part(0, position_delete_files=6, position_deletes=6), part(1, position_delete_files=2, position_deletes=2)), POLICY, NOW)  # fmt: skip
    assert plan.action("rewrite_position_delete_files").partitions == ((("p", 0),),)
    v1 = plan_table_maintenance(state(part(0, position_delete_files=6), format_version=1), POLICY, NOW)
    assert "rewrite_position_delete_files" not in v1.kinds()


def test_manifests_rewritten_when_they_pile_up():
    assert "rewrite_manifests" in plan_table_maintenance(state(part(0), manifests=40, manifest_bytes=400_000), POLICY, NOW).kinds()  # fmt: skip
    assert "rewrite_manifests" not in plan_table_maintenance(state(part(0), manifests=9, manifest_bytes=9_000), POLICY, NOW).kinds()  # fmt: skip
    big = 8 * MiB * 20
    assert "rewrite_manifests" not in plan_table_maintenance(state(part(0), manifests=30, manifest_bytes=big), POLICY, NOW).kinds()  # fmt: skip


def test_expire_keeps_retain_last_and_young_snapshots():
    days = [10, 9, 8, 2, 1]
    snaps = tuple(SnapshotInfo(i, NOW - dt.timedelta(days=d)) for i, d in enumerate(days))
    plan = plan_table_maintenance(state(part(0), snapshots=snaps), POLICY, NOW)
    expire = plan.action("expire_snapshots")
    assert expire.older_than == NOW - dt.timedelta(days=5) and expire.retain_last == 2
    assert "3 of 5 snapshot(s)" in expire.reason
    young = tuple(SnapshotInfo(i, NOW - dt.timedelta(days=1)) for i in range(6))
    assert "expire_snapshots" not in plan_table_maintenance(state(part(0), snapshots=young), POLICY, NOW).kinds()


def test_expire_with_age_zero_after_a_rewrite_counts_the_new_snapshot():
    policy = policy_from({"snapshot_max_age_days": 0, "retain_last": 1})
    one = (SnapshotInfo(1, NOW - dt.timedelta(minutes=5)),)
    # Nothing to rewrite: the single current snapshot stays.
    assert "expire_snapshots" not in plan_table_maintenance(state(part(0), snapshots=one), policy, NOW).kinds()
    # A rewrite makes the current snapshot expirable once the run has committed a newer one.
    plan = plan_table_maintenance(state(part(0, small=9), snapshots=one), policy, NOW)
    assert plan.kinds()[:2] == ["rewrite_data_files", "expire_snapshots"]


def test_orphans_never_younger_than_the_safe_age():
    plan = plan_table_maintenance(state(part(0)), POLICY, NOW)
    assert plan.action("remove_orphan_files").older_than == NOW - dt.timedelta(days=3)
    with pytest.raises(PolicyError, match="orphan_age_days.*safe minimum"):
        policy_from({"orphan_age_days": 0.5})


def test_actions_run_in_a_safe_order_and_the_plan_prints():
    plan = plan_table_maintenance(
        state(part(0, small=9, position_delete_files=6, position_deletes=6), manifests=40, manifest_bytes=40_000,
              snapshots=tuple(SnapshotInfo(i, NOW - dt.timedelta(days=30 - i)) for i in range(8))),
        POLICY, NOW)  # fmt: skip
    assert plan.kinds() == ["rewrite_data_files", "rewrite_position_delete_files", "rewrite_manifests",
                            "expire_snapshots", "remove_orphan_files"]  # fmt: skip
    text = "\n".join(plan.lines())
    assert "RUN  rewrite_data_files [whole table]" in text and "{p=0}: compact" in text


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        plan_table_maintenance(state(part(0)), POLICY, NOW.replace(tzinfo=None))


# --- partition filters ---------------------------------------------------------------


def test_identity_and_time_partition_filters():
    transforms = {"p": ("p", "identity"), "name": ("name", "identity"), "ts_day": ("ts", "day"), "m": ("ts", "month")}
    assert partition_predicate((("p", 3),), transforms) == "(`p` = 3)"
    assert partition_predicate((("name", "o'k"),), transforms) == "(`name` = 'o\\'k')"
    assert partition_predicate((("p", None),), transforms) == "(`p` IS NULL)"
    assert partition_predicate((("ts_day", dt.date(2026, 2, 28)),), transforms) == (
        "(`ts` >= TIMESTAMP '2026-02-28 00:00:00' AND `ts` < TIMESTAMP '2026-03-01 00:00:00')"
    )
    assert time_range("month", 12 * 56 + 11) == (dt.datetime(2026, 12, 1), dt.datetime(2027, 1, 1))
    assert time_range("day", 0) == (dt.datetime(1970, 1, 1), dt.datetime(1970, 1, 2))
    assert time_range("hour", 25)[0] == dt.datetime(1970, 1, 2, 1)
    assert time_range("year", 56) == (dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))
    assert partition_predicate((("b", 3),), {"b": ("id", "bucket[16]")}) is None


# --- settings --------------------------------------------------------------------------


def test_storage_settings_become_table_and_catalog_properties():
    s = storage_from({"write_tags": {"lifecycle": "live", "team": "data"}, "delete_tags": {"deleted": "true"},
                      "object_storage": True, "data_path": "s3://lake/data"})  # fmt: skip
    props = s.table_properties()
    assert props["s3.write.tags.team"] == "data" and props["s3.delete.tags.deleted"] == "true"
    assert props["s3.delete-enabled"] == "false" and props["write.object-storage.enabled"] == "true"
    assert props["write.data.path"] == "s3://lake/data"
    assert set(s.catalog_properties()) == {k for k in props if k.startswith("s3.")}


@pytest.mark.parametrize(
    "given, message",
    [
        (
            {"write_tags": {f"w{i}": "x" for i in range(6)}, "delete_tags": {f"d{i}": "y" for i in range(5)}},
            "S3 allows 10",
        ),
        (
            {"write_tags": {f"w{i}": "x" for i in range(9)}, "delete_tags": {"d": "y"}, "table_tag": True},
            "S3 allows 10",
        ),
        ({"write_tags": {"a": "x"}, "delete_tags": {"a": "x"}}, "both write and delete tags"),
        ({"delete_tags": {}}, "at least one delete tag"),
        ({"write_tags": {"bad*key": "x"}}, "not a valid S3 tag key"),
        ({"write_tags": {"aws:x": "x"}}, "not a valid S3 tag key"),
        ({"data_path": "/tmp/x"}, "not an s3:// URI"),
        ({"colour": "blue"}, "unknown setting"),
        ({"write_tags": ["a"]}, "expected an object"),
    ],
)
def test_bad_storage_settings_are_named(given, message):
    with pytest.raises(PolicyError, match=message):
        storage_from(given)


def test_ten_tags_shared_by_write_and_delete_fit():
    storage_from({"write_tags": {f"w{i}": "x" for i in range(5)}, "delete_tags": {f"d{i}": "y" for i in range(5)}})


def test_a_delete_tag_never_shares_a_write_tags_key():
    """Iceberg adds the delete tags to the object's tag set: a shared key would appear twice,
    which S3 refuses, so deleted files would go untagged. Refused whatever the values."""
    with pytest.raises(PolicyError, match=r"\['lifecycle'\] are both write and delete tags.*S3 refuses"):
        storage_from({"write_tags": {"lifecycle": "live"}, "delete_tags": {"lifecycle": "deleted"}})
    with pytest.raises(PolicyError, match="iceberg.table"):
        storage_from({"write_tags": {"iceberg.table": "t"}, "table_tag": True})
    defaults = storage_from({})
    assert not set(defaults.write_tags) & set(defaults.delete_tags)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"target_file_size_bytes": 1000}, "under 1 MiB"),
        ({"small_file_ratio": 1.5}, "small_file_ratio"),
        ({"min_input_files": 1}, "min_input_files"),
        ({"retain_last": 0}, "retain_last"),
        ({"snapshot_max_age_days": -1}, "negative"),
        ({"sort_key": "a; drop table"}, "not column names"),
        ({"zorder": True, "sort_key": "a"}, "two or more"),
        ({"target_file_size_bytes": "big"}, "not a number"),
        ({"small_file_size_bytes": 600 * MiB}, "small_file_size_bytes"),
    ],
)
def test_bad_policies_are_named(given, message):
    with pytest.raises(PolicyError, match=message):
        policy_from(given)


# --- properties ------------------------------------------------------------------------

partitions = st.lists(
    st.builds(
        lambda v, files, small_share, dels, recs: PartitionStats(
            partition=(("p", v),),
            data_files=files,
            data_bytes=files * 10 * MiB,
            small_files=int(files * small_share),
            small_bytes=int(files * small_share) * MiB,
            records=recs,
            position_delete_files=dels,
            position_deletes=min(dels * 10, recs),
        ),
        st.integers(0, 10_000),
        st.integers(1, 200),
        st.floats(0, 1),
        st.integers(0, 20),
        st.integers(1, 10_000),
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda p: p.partition,
)
policies = st.builds(
    lambda ratio, min_files, age, keep: policy_from(
        {
            "small_file_ratio": ratio,
            "min_input_files": min_files,
            "snapshot_max_age_days": age,
            "retain_last": keep,
            "target_file_size_bytes": 64 * MiB,
        }
    ),  # fmt: skip
    st.floats(0, 0.99),
    st.integers(2, 50),
    st.floats(0, 30),
    st.integers(1, 10),
)
snapshot_ages = st.lists(st.floats(0, 60), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(partitions, policies, snapshot_ages)
def test_properties_of_every_plan(parts, policy, ages):
    snaps = tuple(SnapshotInfo(i, NOW - dt.timedelta(days=a)) for i, a in enumerate(ages))
    table = TableState("t", tuple(parts), snaps, manifests=5, manifest_bytes=5000)
    plan = plan_table_maintenance(table, policy, NOW)
    compact = plan.action("rewrite_data_files")
    unhealthy = {p.partition for p in parts if compaction_reason(p, policy)}
    if compact is None:
        assert not unhealthy
    else:
        chosen = set(compact.partitions) or {p.partition for p in parts}
        # Exactly the unhealthy partitions: a healthy one is never rewritten.
        assert chosen == unhealthy
        assert dict(compact.options)["partial-progress.enabled"] == "true"
    for p in parts:
        if p.partition not in unhealthy:
            assert p.small_files < policy.min_input_files or p.small_files / p.data_files <= policy.small_file_ratio
    orphan = plan.action("remove_orphan_files")
    assert orphan.older_than <= NOW - dt.timedelta(days=3)
    expire = plan.action("expire_snapshots")
    if expire is not None:
        assert expire.retain_last == policy.retain_last >= 1
        assert expire.older_than == NOW - dt.timedelta(days=policy.snapshot_max_age_days)
        assert any(s.committed_at < expire.older_than for s in snaps)
    # Every action kind is either run or skipped with a reason, never both, never neither.
    kinds = plan.kinds() + [k for k, _ in plan.skipped]
    assert sorted(kinds) == sorted(["rewrite_data_files", "rewrite_position_delete_files", "rewrite_manifests",
                                    "expire_snapshots", "remove_orphan_files"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True), max_size=12),
       st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=12))  # fmt: skip
def test_tag_budget_property(write, delete):
    s = StorageSettings(write_tags=write, delete_tags=delete)
    clash = bool(set(write) & set(delete))  # a shared key, whatever the values
    try:
        s.validate()
        assert len(set(write) | set(delete)) <= 10 and not clash
    except PolicyError:
        assert len(set(write) | set(delete)) > 10 or clash
