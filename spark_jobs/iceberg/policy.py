"""What Iceberg maintenance may do to a table, and how the table's S3 objects are tagged.

Two plain settings objects, each built from a JSON-able dict (the DAG's Variable merged with
the trigger form's overrides) and checked in full before any Spark work starts, so a typo or
an unsafe value is one clear error instead of a half-maintained table.

Tags: Iceberg's S3FileIO tags every object it writes with ``s3.write.tags.*`` and, with
``s3.delete-enabled=false``, tags an object with ``s3.delete.tags.*`` instead of deleting it,
so a bucket lifecycle rule on the delete tag can move it to a cheaper class and expire it
later. To tag a file for deletion it reads the object's tag set, adds the delete tags to it and
writes the whole set back (``S3FileIO.tagFileToDelete``), so a deleted object carries its write
tags next to the delete tags:

* a delete tag may not use a write tag's key, whatever its value: the set would hold the key
  twice, S3 refuses such a set (``InvalidTag``), Iceberg only logs a warning, and removed files
  are never tagged, tiered or expired;
* the two sets (plus the ``iceberg.table``/``iceberg.namespace`` tags when those are enabled,
  whose keys are then reserved too) share S3's budget of 10 tags per object.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MiB = 1024 * 1024
S3_MAX_TAGS = 10
S3_TAG_KEY_MAX = 128
S3_TAG_VALUE_MAX = 256
# Characters S3 accepts in tag keys and values (letters, digits, spaces and + - = . _ : / @).
_TAG_CHARS = re.compile(r"^[\w\s+\-=.:/@]*$", re.UNICODE)
# Never tag for deletion a file younger than this, whatever the policy says: a write that is
# still in flight has files that no snapshot references yet.
MIN_ORPHAN_AGE_DAYS = 1.0


class PolicyError(ValueError):
    """A policy or storage setting that cannot be used, with the setting's name in the message."""


@dataclass(frozen=True)
class StorageSettings:
    """S3 tagging and layout for a table's objects (table properties and the catalog's FileIO)."""

    write_tags: dict[str, str] = field(default_factory=lambda: {"lifecycle": "live"})
    delete_tags: dict[str, str] = field(default_factory=lambda: {"deleted": "true"})
    delete_enabled: bool = False
    object_storage: bool = False
    data_path: str | None = None
    table_tag: bool = False  # s3.write.table-tag-enabled: adds iceberg.table=<name>
    namespace_tag: bool = False  # s3.write.namespace-tag-enabled: adds iceberg.namespace=<ns>

    def iceberg_tag_keys(self) -> set[str]:
        """The tags S3FileIO adds itself (``iceberg.table`` / ``iceberg.namespace``), when enabled."""
        return {key for flag, key in (("table_tag", "iceberg.table"), ("namespace_tag", "iceberg.namespace"))
                if getattr(self, flag)}  # fmt: skip

    def tag_keys(self) -> set[str]:
        return set(self.write_tags) | set(self.delete_tags) | self.iceberg_tag_keys()

    def validate(self) -> None:
        for kind, tags in (("write_tags", self.write_tags), ("delete_tags", self.delete_tags)):
            for key, value in tags.items():
                if not key or len(key) > S3_TAG_KEY_MAX or not _TAG_CHARS.match(key) or key.startswith("aws:"):
                    raise PolicyError(f"storage.{kind}: {key!r} is not a valid S3 tag key")
                if len(str(value)) > S3_TAG_VALUE_MAX or not _TAG_CHARS.match(str(value)):
                    raise PolicyError(f"storage.{kind}[{key!r}]: {value!r} is not a valid S3 tag value")
        if not self.delete_tags and not self.delete_enabled:
            raise PolicyError("storage.delete_tags: give at least one delete tag when delete_enabled is false "
                              "(otherwise removed files are neither deleted nor marked)")  # fmt: skip
        shared = sorted(set(self.write_tags) & set(self.delete_tags))
        if shared:
            raise PolicyError(f"storage: tag key(s) {shared} are both write and delete tags. Iceberg tags a file "
                              "for deletion by adding the delete tags to the tags it was written with, so the "
                              "object's tag set would hold the key twice, which S3 refuses (InvalidTag): removed "
                              "files would never be tagged, tiered or expired. Give the delete tags keys of "
                              "their own, e.g. {\"deleted\": \"true\"}")  # fmt: skip
        reserved = sorted(self.iceberg_tag_keys() & (set(self.write_tags) | set(self.delete_tags)))
        if reserved:
            raise PolicyError(f"storage: {reserved} are tags Iceberg adds itself (table_tag / namespace_tag is on); "
                              "a second tag with that key would make S3 refuse the tag set")  # fmt: skip
        keys = self.tag_keys()
        if len(keys) > S3_MAX_TAGS:
            raise PolicyError(f"storage: {len(keys)} distinct tag keys {sorted(keys)}, but S3 allows "
                              f"{S3_MAX_TAGS} tags per object, shared by write and delete tags")  # fmt: skip
        if self.data_path is not None and not re.match(r"^s3a?://[^/]+", self.data_path):
            raise PolicyError(f"storage.data_path: {self.data_path!r} is not an s3:// URI")

    def table_properties(self) -> dict[str, str]:
        """Iceberg table properties that record this storage policy on the table."""
        props = {f"s3.write.tags.{k}": str(v) for k, v in self.write_tags.items()}
        props.update({f"s3.delete.tags.{k}": str(v) for k, v in self.delete_tags.items()})
        props["s3.delete-enabled"] = str(self.delete_enabled).lower()
        props["s3.write.table-tag-enabled"] = str(self.table_tag).lower()
        props["s3.write.namespace-tag-enabled"] = str(self.namespace_tag).lower()
        props["write.object-storage.enabled"] = str(self.object_storage).lower()
        if self.data_path:
            props["write.data.path"] = self.data_path
        return props

    def catalog_properties(self) -> dict[str, str]:
        """The FileIO settings among :meth:`table_properties`.

        Iceberg's S3FileIO takes them from the catalog's properties only (measured on 1.10.0: a
        table property ``s3.write.tags.x`` tags nothing), so the job applies them to its
        catalog too; any other writer of the table must do the same in its catalog config.
        """
        return {k: v for k, v in self.table_properties().items() if k.startswith("s3.")}


@dataclass(frozen=True)
class MaintenancePolicy:
    """When each maintenance action is worth running, and with which limits."""

    target_file_size_bytes: int = 512 * MiB
    # A data file smaller than this is "small" (Iceberg's own default: 75% of the target).
    small_file_size_bytes: int | None = None
    # A partition is compacted when more than this share of its data files is small ...
    small_file_ratio: float = 0.3
    # ... and it has at least this many small files (fewer cannot be merged into fewer).
    min_input_files: int = 5
    # Sort key for compaction; empty: the table's sort order if it has one, else binpack.
    sort_key: tuple[str, ...] = ()
    zorder: bool = False
    partial_progress_max_commits: int = 10
    max_concurrent_file_group_rewrites: int = 4
    # Rewrite a partition's data when this share of its rows is deleted by position deletes.
    delete_ratio: float = 0.3
    # Compact a partition's position delete files once it has this many.
    min_delete_files: int = 5
    # Rewrite manifests once there are at least this many and more than twice what their
    # total size needs at Iceberg's 8 MiB manifest target.
    min_manifests: int = 10
    manifest_target_bytes: int = 8 * MiB
    expire_snapshots: bool = True
    snapshot_max_age_days: float = 5.0
    retain_last: int = 5
    remove_orphan_files: bool = True
    orphan_age_days: float = 3.0
    rewrite_manifests: bool = True
    rewrite_position_deletes: bool = True

    @property
    def small_file_bytes(self) -> int:
        if self.small_file_size_bytes is not None:
            return int(self.small_file_size_bytes)
        return int(self.target_file_size_bytes * 0.75)

    @property
    def strategy(self) -> str:
        return "sort" if self.sort_key else "binpack"

    def validate(self) -> None:
        if self.target_file_size_bytes < MiB:
            raise PolicyError(f"policy.target_file_size_bytes: {self.target_file_size_bytes} is under 1 MiB")
        if not 0 < self.small_file_bytes <= self.target_file_size_bytes:
            raise PolicyError(f"policy.small_file_size_bytes: {self.small_file_bytes} must be in "
                              f"(0, target_file_size_bytes={self.target_file_size_bytes}]")  # fmt: skip
        for name in ("small_file_ratio", "delete_ratio"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise PolicyError(f"policy.{name}: {value} must be in [0, 1)")
        for name in ("min_input_files", "min_delete_files", "min_manifests"):
            if getattr(self, name) < 2:
                raise PolicyError(f"policy.{name}: {getattr(self, name)} must be at least 2")
        for name in ("partial_progress_max_commits", "max_concurrent_file_group_rewrites", "retain_last"):
            if getattr(self, name) < 1:
                raise PolicyError(f"policy.{name}: {getattr(self, name)} must be at least 1")
        if self.snapshot_max_age_days < 0:
            raise PolicyError(f"policy.snapshot_max_age_days: {self.snapshot_max_age_days} is negative")
        if self.orphan_age_days < MIN_ORPHAN_AGE_DAYS:
            raise PolicyError(f"policy.orphan_age_days: {self.orphan_age_days} is under the safe minimum of "
                              f"{MIN_ORPHAN_AGE_DAYS} day(s): files of writes still in flight would be removed")  # fmt: skip
        bad = [c for c in self.sort_key if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", c)]
        if bad:
            raise PolicyError(f"policy.sort_key: {bad} are not column names")
        if self.zorder and len(self.sort_key) < 2:
            raise PolicyError("policy.zorder: needs a sort_key of two or more columns")


def _build(cls, given: dict[str, Any] | None, where: str):
    given = dict(given or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise PolicyError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    if "sort_key" in given:
        key = given["sort_key"]
        given["sort_key"] = (
            tuple(c.strip() for c in key.split(",") if c.strip()) if isinstance(key, str) else tuple(key)
        )
    for tag_field in ("write_tags", "delete_tags"):
        if tag_field in given and not isinstance(given[tag_field], dict):
            raise PolicyError(f"{where}.{tag_field}: expected an object of tag key to value")
    try:
        built = cls(**given)
    except TypeError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    for f in fields(built):
        value = getattr(built, f.name)
        if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise PolicyError(f"{where}.{f.name}: {value!r} is not a number")
    built.validate()
    return built


def policy_from(given: dict[str, Any] | None) -> MaintenancePolicy:
    return _build(MaintenancePolicy, given, "policy")


def storage_from(given: dict[str, Any] | None) -> StorageSettings:
    return _build(StorageSettings, given, "storage")


def as_dict(settings: MaintenancePolicy | StorageSettings) -> dict[str, Any]:
    out = asdict(settings)
    if "sort_key" in out:
        out["sort_key"] = list(out["sort_key"])
    return out
