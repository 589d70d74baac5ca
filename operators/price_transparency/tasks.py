"""Discovery, validation and catalog registration for the price-transparency pipeline.

The conversion itself is the Spark job ``spark_jobs/json_to_parquet.py``; these functions
are what the DAG does around it, with boto3 clients passed in (so the DAG's tasks stay
thin and the logic is tested against the local stack):

- every source file gets its own output folder ``<table_root>/source_key=<key>/`` (the
  job publishes it atomically with a ``_SUCCESS`` manifest); a file whose manifest records
  the same URI and size is already converted and is skipped unless asked to reprocess;
- validation re-reads each manifest and checks every listed Parquet file exists with the
  recorded size, and that the file row counts add up to the streamed total;
- the Glue table is partitioned by ``source_key`` and ``billing_code_bucket``; its columns
  come from the manifest, so the job is the one place that defines the schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlparse

SUFFIXES = (".json", ".json.gz")
MANIFEST = "_SUCCESS"
PARTITION_KEYS = ("source_key", "billing_code_bucket")


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def source_key(uri: str) -> str:
    """A stable, path-safe partition value for a source file: its name and a short hash."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    for suffix in SUFFIXES[::-1]:
        name = name.removesuffix(suffix)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:80] or "file"
    return f"{slug}-{hashlib.sha1(uri.encode()).hexdigest()[:8]}"


def output_for(table_root: str, uri: str) -> str:
    return f"{table_root.rstrip('/')}/source_key={source_key(uri)}"


def read_manifest(s3, output_uri: str) -> dict | None:
    bucket, key = split_uri(output_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{key.rstrip('/')}/{MANIFEST}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def discover(s3, source: str, table_root: str, reprocess: bool = False) -> list[dict[str, Any]]:
    """Files to convert: ``source`` is one file or a prefix; already converted ones are skipped."""
    bucket, key = split_uri(source)
    if key.endswith(SUFFIXES):
        head = s3.head_object(Bucket=bucket, Key=key)
        objects = [{"Key": key, "Size": head["ContentLength"]}]
    else:
        prefix = key.rstrip("/") + "/" if key else ""
        objects = [
            o
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
            if o["Key"].endswith(SUFFIXES)
        ]
    todo = []
    for obj in sorted(objects, key=lambda o: o["Key"]):
        uri = f"s3://{bucket}/{obj['Key']}"
        output = output_for(table_root, uri)
        done = None if reprocess else read_manifest(s3, output)
        sources = (done or {}).get("sources", [])
        if sources and sources[0].get("source") == uri and sources[0].get("size") == obj["Size"]:
            continue
        todo.append({"source": uri, "output": output, "source_key": source_key(uri), "size": obj["Size"]})
    return todo


def validate(s3, outputs: list[str]) -> list[dict[str, Any]]:
    """Check each published output against its manifest; return one summary per output."""
    summaries = []
    for output in outputs:
        manifest = read_manifest(s3, output)
        if manifest is None:
            raise RuntimeError(f"{output}: no {MANIFEST} manifest: the conversion did not publish")
        bucket, key = split_uri(output)
        listed = {
            o["Key"][len(key.rstrip("/")) + 1 :]: o["Size"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/")
            for o in page.get("Contents", [])
        }
        problems = [f"{f['path']} missing" for f in manifest["files"] if f["path"] not in listed]
        problems += [
            f"{f['path']} is {listed[f['path']]} bytes, manifest says {f['bytes']}"
            for f in manifest["files"]
            if f["path"] in listed and listed[f["path"]] != f["bytes"]
        ]
        if sum(f["rows"] for f in manifest["files"]) != manifest["rows"]:
            problems.append("file row counts do not add up to the streamed total")
        if manifest["rows"] <= 0:
            problems.append("no rows")
        if problems:
            raise RuntimeError(f"{output}: " + "; ".join(problems))
        buckets = sorted({f["path"].split("/", 1)[0].split("=", 1)[1] for f in manifest["files"]})
        summaries.append({"output": output, "rows": manifest["rows"], "items": manifest["items"],
                          "files": len(manifest["files"]), "buckets": buckets, "schema": manifest["schema"],
                          "unresolved_references": manifest["unresolved_references"]})  # fmt: skip
    return summaries


def _storage(location: str, columns: list[dict]) -> dict:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    }


def register(glue, database: str, table: str, table_root: str, summaries: list[dict]) -> dict[str, int]:
    """Create or update the Glue table and add each output's partitions (idempotent)."""
    if not summaries:
        return {"created": 0, "removed": 0}
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "Price-transparency data"})
    except glue.exceptions.AlreadyExistsException:
        pass
    columns = [{"Name": name, "Type": kind} for name, kind in summaries[0]["schema"]]
    table_input = {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
        "StorageDescriptor": _storage(table_root.rstrip("/") + "/", columns),
    }
    try:
        glue.create_table(DatabaseName=database, TableInput=table_input)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=database, TableInput=table_input)
    existing = {
        tuple(p["Values"])
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
        for p in page["Partitions"]
    }
    wanted, created, removed = {}, 0, 0
    for s in summaries:
        key = s["output"].rstrip("/").rsplit("source_key=", 1)[1]
        for bucket in s["buckets"]:
            wanted[(key, bucket)] = f"{s['output'].rstrip('/')}/billing_code_bucket={bucket}/"
    new = [v for v in wanted if v not in existing]
    for start in range(0, len(new), 100):
        inputs = [
            {"Values": list(v), "StorageDescriptor": _storage(wanted[v], columns)} for v in new[start : start + 100]
        ]
        errors = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=inputs)
        if errors.get("Errors"):
            raise RuntimeError(f"Glue refused partitions: {errors['Errors'][:3]}")
        created += len(inputs)
    # a re-converted source may have fewer buckets than before: drop the ones it no longer has
    keys = {k for k, _ in wanted}
    stale = [v for v in existing if v[0] in keys and v not in wanted]
    for start in range(0, len(stale), 25):
        glue.batch_delete_partition(DatabaseName=database, TableName=table,
                                    PartitionsToDelete=[{"Values": list(v)} for v in stale[start:start + 25]])  # fmt: skip
        removed += len(stale[start : start + 25])
    return {"created": created, "removed": removed}


def resolve_settings(params: dict) -> dict[str, Any]:
    """The run's settings: trigger-form params, then the ``price_transparency`` Variable, then
    defaults under the ``pipelines_data_uri`` Variable."""
    from airflow.sdk import Variable

    configured = Variable.get("price_transparency", default=None, deserialize_json=True) or {}
    data = Variable.get("pipelines_data_uri", default=None)

    def pick(name: str, default_suffix: str | None = None) -> str:
        value = params.get(name) or configured.get(name)
        if not value and default_suffix is not None:
            if not data:
                raise ValueError(
                    f"no {name}: set it in the form, the price_transparency Variable or pipelines_data_uri"
                )
            value = f"{data.rstrip('/')}/{default_suffix}"
        return value

    source = params.get("source_uri") or pick("source_prefix", "mrf/incoming/")
    return {
        "source": source,
        "table_root": pick("table_root", "tables/in_network_rates").rstrip("/"),
        "glue_database": configured.get("glue_database", "price_transparency"),
        "glue_table": configured.get("glue_table", "in_network_rates"),
        "buckets": int(params.get("buckets") or configured.get("buckets") or 16),
        "target_file_mb": int(params.get("target_file_mb") or configured.get("target_file_mb") or 128),
        "reprocess": bool(params.get("reprocess")),
    }
