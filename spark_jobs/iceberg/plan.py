"""Which maintenance a table needs, decided from its measured state: a pure function.

:func:`plan_table_maintenance` takes what the table's metadata tables say (per-partition
file counts and sizes, delete files, snapshots, manifests) and the policy, and returns the
actions to run, each with the partitions it touches and the reason, plus the reason for
everything it leaves alone. It does no I/O, so it is tested on plain data and the job logs
its output as the decision record.

Compaction is per partition: a partition is rewritten only when its small files are both
numerous (``min_input_files``) and a large enough share of its files (``small_file_ratio``),
or when position deletes cover a large share of its rows. Healthy partitions are never
rewritten, which is where the savings over a blanket ``rewrite-all`` come from.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from spark_jobs.iceberg.policy import MaintenancePolicy

# A partition: its fields' (name, value) pairs in spec order; () for an unpartitioned table.
Partition = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class PartitionStats:
    partition: Partition
    data_files: int
    data_bytes: int
    small_files: int
    small_bytes: int
    records: int
    position_delete_files: int = 0
    position_deletes: int = 0
    equality_delete_files: int = 0


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    committed_at: dt.datetime
    operation: str = "append"


@dataclass(frozen=True)
class TableState:
    name: str
    partitions: tuple[PartitionStats, ...]
    snapshots: tuple[SnapshotInfo, ...]
    manifests: int
    manifest_bytes: int
    format_version: int = 2
    sort_order: tuple[str, ...] = ()  # the table's own sort order, when it has one

    @property
    def data_files(self) -> int:
        return sum(p.data_files for p in self.partitions)

    @property
    def data_bytes(self) -> int:
        return sum(p.data_bytes for p in self.partitions)

    @property
    def small_files(self) -> int:
        return sum(p.small_files for p in self.partitions)

    @property
    def delete_files(self) -> int:
        return sum(p.position_delete_files + p.equality_delete_files for p in self.partitions)


@dataclass(frozen=True)
class Action:
    """One Iceberg procedure call; ``partitions`` empty means the whole table."""

    kind: str
    reason: str
    partitions: tuple[Partition, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    strategy: str | None = None
    sort_order: tuple[str, ...] = ()
    older_than: dt.datetime | None = None
    retain_last: int | None = None


@dataclass(frozen=True)
class MaintenancePlan:
    table: str
    actions: tuple[Action, ...]
    skipped: tuple[tuple[str, str], ...]  # (action kind, why not)
    partition_notes: tuple[tuple[Partition, str], ...] = field(default=())

    def kinds(self) -> list[str]:
        return [a.kind for a in self.actions]

    def action(self, kind: str) -> Action | None:
        return next((a for a in self.actions if a.kind == kind), None)

    def lines(self) -> list[str]:
        """The plan as log lines: one per action, skipped action and partition decision."""
        out = [f"maintenance plan for {self.table}:"]
        for a in self.actions:
            scope = f"{len(a.partitions)} partition(s)" if a.partitions else "whole table"
            out.append(f"  RUN  {a.kind} [{scope}]: {a.reason}")
        for kind, why in self.skipped:
            out.append(f"  SKIP {kind}: {why}")
        for partition, note in self.partition_notes:
            out.append(f"    {format_partition(partition)}: {note}")
        return out


def format_partition(partition: Partition) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in partition) + "}" if partition else "{unpartitioned}"


def compaction_reason(p: PartitionStats, policy: MaintenancePolicy) -> str | None:
    """Why partition ``p`` needs its data files rewritten, or None when it is healthy."""
    reasons = []
    if (
        p.data_files
        and p.small_files >= policy.min_input_files
        and p.small_files / p.data_files > policy.small_file_ratio
    ):
        reasons.append(f"{p.small_files} of {p.data_files} data files are small "
                       f"({p.small_files / p.data_files:.0%} > {policy.small_file_ratio:.0%})")  # fmt: skip
    if p.records and p.position_deletes / p.records >= policy.delete_ratio and p.position_deletes > 0:
        reasons.append(f"position deletes cover {p.position_deletes / p.records:.0%} of {p.records} rows")
    return "; ".join(reasons) or None


def _sort_order(state: TableState, policy: MaintenancePolicy) -> tuple[str, ...]:
    return tuple(policy.sort_key) or tuple(state.sort_order)


def _rewrite_options(policy: MaintenancePolicy, deletes_heavy: bool) -> tuple[tuple[str, str], ...]:
    options = {
        "target-file-size-bytes": str(policy.target_file_size_bytes),
        "min-file-size-bytes": str(policy.small_file_bytes),
        "min-input-files": str(policy.min_input_files),
        "partial-progress.enabled": "true",
        "partial-progress.max-commits": str(policy.partial_progress_max_commits),
        "max-concurrent-file-group-rewrites": str(policy.max_concurrent_file_group_rewrites),
    }
    if deletes_heavy:
        # Newer runtimes select files by their deleted-row share; older ones by a count of
        # delete files. The job drops whichever option its runtime lacks.
        options["delete-ratio-threshold"] = str(policy.delete_ratio)
        options["delete-file-threshold"] = "1"
    return tuple(sorted(options.items()))


def _plan_compaction(state: TableState, policy: MaintenancePolicy, notes: list) -> tuple[Action | None, str | None]:
    chosen, deletes_heavy = [], False
    for p in state.partitions:
        why = compaction_reason(p, policy)
        if why:
            chosen.append(p)
            deletes_heavy |= "position deletes" in why
            notes.append((p.partition, f"compact: {why}"))
    if not chosen:
        return None, f"no partition has more than {policy.small_file_ratio:.0%} small files (and at least {policy.min_input_files}) or heavy deletes"  # fmt: skip
    order = _sort_order(state, policy)
    strategy = "sort" if order else "binpack"
    reason = (f"{len(chosen)} of {len(state.partitions)} partition(s) unhealthy: "
              f"{sum(p.small_files for p in chosen)} small files, {sum(p.data_bytes for p in chosen)} bytes to rewrite "
              f"of {state.data_bytes}; strategy {strategy}{' by ' + ','.join(order) if order else ''}")  # fmt: skip
    whole = len(chosen) == len(state.partitions)
    action = Action(
        kind="rewrite_data_files",
        reason=reason,
        partitions=() if whole else tuple(p.partition for p in chosen),
        options=_rewrite_options(policy, deletes_heavy),
        strategy=strategy,
        sort_order=order,
    )
    return action, None


def _plan_delete_rewrite(state: TableState, policy: MaintenancePolicy) -> tuple[Action | None, str | None]:
    if not policy.rewrite_position_deletes:
        return None, "disabled by policy"
    if state.format_version < 2:
        return None, f"format version {state.format_version} has no delete files"
    chosen = [p for p in state.partitions if p.position_delete_files >= policy.min_delete_files]
    if not chosen:
        return None, f"no partition has {policy.min_delete_files} or more position delete files"
    reason = (f"{sum(p.position_delete_files for p in chosen)} position delete files in "
              f"{len(chosen)} partition(s) with {policy.min_delete_files} or more")  # fmt: skip
    options = (
        ("partial-progress.enabled", "true"),
        ("partial-progress.max-commits", str(policy.partial_progress_max_commits)),
    )
    whole = len(chosen) == len(state.partitions)
    return Action("rewrite_position_delete_files", reason, () if whole else tuple(p.partition for p in chosen), options), None  # fmt: skip


def _plan_manifests(state: TableState, policy: MaintenancePolicy) -> tuple[Action | None, str | None]:
    if not policy.rewrite_manifests:
        return None, "disabled by policy"
    needed = max(1, math.ceil(state.manifest_bytes / policy.manifest_target_bytes))
    if state.manifests >= policy.min_manifests and state.manifests > 2 * needed:
        return Action("rewrite_manifests", f"{state.manifests} manifests where {needed} would hold their {state.manifest_bytes} bytes"), None  # fmt: skip
    return None, f"{state.manifests} manifest(s) for {state.manifest_bytes} bytes: not piling up"


def _plan_expire(state: TableState, policy: MaintenancePolicy, now: dt.datetime, new_snapshots: int):
    if not policy.expire_snapshots:
        return None, "disabled by policy"
    cutoff = now - dt.timedelta(days=policy.snapshot_max_age_days)
    # Snapshots this run commits are the newest and take their place among those retained.
    keep_existing = max(policy.retain_last - new_snapshots, 0)
    newest_first = sorted(state.snapshots, key=lambda s: s.committed_at, reverse=True)
    if new_snapshots == 0:
        keep_existing = max(keep_existing, 1)  # the current snapshot never expires
    expirable = [s for s in newest_first[keep_existing:] if s.committed_at < cutoff]
    if not expirable:
        return None, f"no snapshot beyond the last {policy.retain_last} is older than {cutoff.isoformat()}"
    reason = f"{len(expirable)} of {len(state.snapshots)} snapshot(s) older than {cutoff.isoformat()} beyond the last {policy.retain_last}"  # fmt: skip
    return Action("expire_snapshots", reason, older_than=cutoff, retain_last=policy.retain_last), None


def plan_table_maintenance(state: TableState, policy: MaintenancePolicy, now: dt.datetime) -> MaintenancePlan:
    """The actions ``state`` needs under ``policy``, in the order they must run."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    actions, skipped, notes = [], [], []
    for kind, (action, why) in (
        ("rewrite_data_files", _plan_compaction(state, policy, notes)),
        ("rewrite_position_delete_files", _plan_delete_rewrite(state, policy)),
        ("rewrite_manifests", _plan_manifests(state, policy)),
    ):
        if action:
            actions.append(action)
        else:
            skipped.append((kind, why))
    # Every rewrite commits at least one snapshot (partial progress may commit more).
    action, why = _plan_expire(state, policy, now, new_snapshots=len(actions))
    if action:
        actions.append(action)
    else:
        skipped.append(("expire_snapshots", why))
    if policy.remove_orphan_files:
        older = now - dt.timedelta(days=policy.orphan_age_days)
        actions.append(Action("remove_orphan_files", f"files no snapshot references, older than {older.isoformat()}", older_than=older))  # fmt: skip
    else:
        skipped.append(("remove_orphan_files", "disabled by policy"))
    return MaintenancePlan(state.name, tuple(actions), tuple(skipped), tuple(notes))


# Iceberg partition transforms whose values map back to a range of the source column.
_TIME_UNITS = {"year", "month", "day", "hour"}


def partition_predicate(partition: Partition, transforms: dict[str, tuple[str, str]]) -> str | None:
    """A Spark SQL filter selecting exactly ``partition``, or None when a transform has none.

    ``transforms`` maps each partition field to (source column, transform name) as Iceberg
    names them (``identity``, ``day``, ``month``, ``year``, ``hour``, ``bucket[16]``, ...).
    The filter goes to ``rewrite_data_files(where => ...)``, which Iceberg turns into a
    partition filter, so it must use the source columns.
    """
    terms = []
    for name, value in partition:
        source, transform = transforms[name]
        column = "`" + source.replace("`", "``") + "`"
        if transform == "identity":
            terms.append(f"{column} IS NULL" if value is None else f"{column} = {sql_literal(value)}")
        elif transform in _TIME_UNITS:
            if value is None:
                terms.append(f"{column} IS NULL")
                continue
            start, end = time_range(transform, value)
            terms.append(f"{column} >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' AND {column} < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'")  # fmt: skip
        else:
            return None
    return " AND ".join(f"({t})" for t in terms) if terms else None


def time_range(unit: str, value) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) UTC range an Iceberg year/month/day/hour partition value stands for."""
    epoch = dt.datetime(1970, 1, 1)
    if unit == "day":
        day = value if isinstance(value, dt.date) else (epoch + dt.timedelta(days=int(value))).date()
        start = dt.datetime(day.year, day.month, day.day)
        return start, start + dt.timedelta(days=1)
    if unit == "hour":
        start = epoch + dt.timedelta(hours=int(value))
        return start, start + dt.timedelta(hours=1)
    if unit == "month":
        year, month = divmod(int(value), 12)
        start = dt.datetime(1970 + year, month + 1, 1)
        year2, month2 = divmod(int(value) + 1, 12)
        return start, dt.datetime(1970 + year2, month2 + 1, 1)
    if unit == "year":
        return dt.datetime(1970 + int(value), 1, 1), dt.datetime(1971 + int(value), 1, 1)
    raise ValueError(f"not a time transform: {unit}")


def sql_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S.%f}'"
    if isinstance(value, dt.date):
        return f"DATE '{value:%Y-%m-%d}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
