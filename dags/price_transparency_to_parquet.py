"""Convert price-transparency in-network-rates files to a partitioned Parquet table."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from operators.spark.script_operator import SparkScriptOperator

TABLE_ASSET = Asset(name="price_transparency_in_network_rates")

DOC = """
### Price transparency to Parquet

Finds in-network-rates files (`.json` or `.json.gz`, one huge JSON object each) under a
prefix, or takes the one file named in the trigger form, and converts each with
`spark_jobs/json_to_parquet.py` (one mapped task per file) on the configured Spark
platform. The job streams the file in bounded memory and publishes
`<table_root>/source_key=<file>/billing_code_bucket=NN/*.parquet` atomically with a
`_SUCCESS` manifest. The DAG then validates every output against its manifest, creates or
updates the Glue table (partitioned by `source_key` and `billing_code_bucket`, where
`billing_code_bucket = crc32(billing_code) % buckets`) and updates the Asset
`price_transparency_in_network_rates`.

Files already converted (same URI and size in their manifest) are skipped unless
`reprocess` is set. Defaults come from the `price_transparency` Variable (JSON with
`source_prefix`, `table_root`, `glue_database`, `glue_table`), else from
`pipelines_data_uri`.

**Params**: `source_uri` (one file; empty: discover under `source_prefix`), `source_prefix`,
`table_root`, `buckets`, `target_file_mb`, `reprocess`.
"""

with DAG(
    dag_id="price_transparency_to_parquet",
    description="Stream huge price-transparency JSON files into a bucketed Parquet table in the Glue catalog",
    doc_md=DOC,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spark", "price-transparency", "parquet"],
    default_args={"owner": "data-platform", "retries": 1},
    max_active_runs=1,
    params={
        "source_uri": Param(
            None,
            type=["null", "string"],
            title="One file",
            pattern=r"^$|^s3a?://.+\.json(\.gz)?$",
            description="s3:// URI of one file to convert; empty: discover under the prefix.",
        ),
        "source_prefix": Param(
            None,
            type=["null", "string"],
            title="Source prefix",
            pattern=r"^$|^s3a?://.+",
            description="Where new files arrive; empty: the Variable, else <data>/mrf/incoming/.",
        ),
        "table_root": Param(
            None,
            type=["null", "string"],
            title="Table location",
            pattern=r"^$|^s3a?://.+",
            description="Empty: the Variable, else <data>/tables/in_network_rates.",
        ),
        "buckets": Param(
            16,
            type="integer",
            minimum=1,
            maximum=256,
            title="billing_code buckets",
            description="Output folders: billing_code_bucket = crc32(billing_code) mod this.",
        ),
        "target_file_mb": Param(
            128,
            type="integer",
            minimum=1,
            maximum=2048,
            title="Target Parquet file size (MB)",
            description="A Parquet file is closed once it reaches about this size.",
        ),
        "reprocess": Param(
            False,
            type="boolean",
            title="Convert again files already converted",
            description="Off: files with a published output are skipped.",
        ),
    },  # fmt: skip
) as dag:

    @task
    def settings(params: dict | None = None) -> dict:
        from operators.price_transparency.tasks import resolve_settings

        return resolve_settings(params or {})

    @task
    def discover(cfg: dict) -> list[dict]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.price_transparency.tasks import discover as find

        s3 = S3Hook(aws_conn_id="aws_default").get_conn()
        files = find(s3, cfg["source"], cfg["table_root"], cfg["reprocess"])
        print(f"{len(files)} file(s) to convert under {cfg['source']}")
        for f in files:
            print(f"  {f['source']} ({f['size'] / 1e6:.1f} MB) -> {f['output']}")
        return files

    @task
    def job_arguments(cfg: dict, files: list[dict]) -> list[list[str]]:
        return [
            ["--input", f["source"], "--output", f["output"], "--buckets", str(cfg["buckets"]),
             "--target-file-mb", str(cfg["target_file_mb"])]
            for f in files
        ]  # fmt: skip

    cfg = settings()
    files = discover(cfg)
    convert = SparkScriptOperator.partial(
        task_id="convert", script="json_to_parquet.py", number_of_workers=2, max_active_tis_per_dagrun=4
    ).expand(script_args=job_arguments(cfg, files))

    @task(trigger_rule="all_success")
    def validate(files: list[dict]) -> list[dict]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from operators.price_transparency.tasks import validate as check

        summaries = check(S3Hook(aws_conn_id="aws_default").get_conn(), [f["output"] for f in files])
        for s in summaries:
            print(f"{s['output']}: {s['rows']:,} rows, {s['items']:,} items, {s['files']} files, "
                  f"{len(s['buckets'])} buckets, {s['unresolved_references']} unresolved references")  # fmt: skip
        return summaries

    @task(outlets=[TABLE_ASSET])
    def register(cfg: dict, summaries: list[dict], outlet_events=None) -> dict:
        from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

        from operators.price_transparency.tasks import register as add

        glue = GlueCatalogHook(aws_conn_id="aws_default").get_conn()
        changes = add(glue, cfg["glue_database"], cfg["glue_table"], cfg["table_root"], summaries)
        table = f"{cfg['glue_database']}.{cfg['glue_table']}"
        print(f"Glue table {table}: {changes['created']} partitions added, {changes['removed']} removed")
        extra = {"table": table, "location": cfg["table_root"], "sources": [s["output"] for s in summaries],
                 "rows": sum(s["rows"] for s in summaries), **changes}  # fmt: skip
        if outlet_events is not None:
            outlet_events[TABLE_ASSET].extra = extra
        return extra

    checked = validate(files)
    convert >> checked
    register(cfg, checked)
