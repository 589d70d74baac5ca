"""The reference approach the JSON-to-Parquet benchmark compares with: split, then Spark.

    python bench/mrf_reference.py --input FILE[.gz] --output DIR [--work DIR]

1. Stream-split with ijson (C backend) into JSON chunk files of 1000 provider references
   and 25 in_network items (the header is read on the way).
2. Spark reads the chunks (multiLine JSON) and explodes them to the same row grain as
   ``spark_jobs/json_to_parquet.py``: inline groups and referenced groups per rate entry
   (``explode_outer`` keeps empty NPI lists and empty group lists as one null row; a left
   join keeps unresolved references), times the entry's prices; written as Parquet.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
from pathlib import Path

import ijson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spark_jobs.mrf.grain import COLUMN_NAMES, HEADER_FIELDS  # noqa: E402

REFS_PER_CHUNK = 1000
ITEMS_PER_CHUNK = 25


def _open(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _write_chunks(out: Path, prefix: str, key: str, values, per_chunk: int) -> int:
    chunk, n, count = [], 0, 0
    for value in values:
        chunk.append(value)
        count += 1
        if len(chunk) == per_chunk:
            (out / f"{prefix}-{n:06d}.json").write_text(json.dumps({key: chunk}))
            chunk, n = [], n + 1
    if chunk:
        (out / f"{prefix}-{n:06d}.json").write_text(json.dumps({key: chunk}))
    return count


def split(source: Path, out: Path) -> dict:
    """Header and provider references in one event pass (stopping where in_network starts),
    then the items with ijson's C-level item builder."""
    header: dict = {}
    refs: list = []
    with _open(source) as f:
        builder = None
        for prefix, event, value in ijson.parse(f, use_float=True):
            if prefix == "in_network" and event == "start_array":
                break
            if prefix == "provider_references.item":
                if event == "start_map":
                    builder = ijson.ObjectBuilder()
                builder.event(event, value)
                if event == "end_map":
                    refs.append(builder.value)
                    builder = None
            elif builder is not None:
                builder.event(event, value)
            elif "." not in prefix and event in ("string", "number", "boolean", "null"):
                header[prefix] = value
    _write_chunks(out, "refs", "provider_references", refs, REFS_PER_CHUNK)
    with _open(source) as f:
        items = _write_chunks(
            out, "items", "in_network", ijson.items(f, "in_network.item", use_float=True), ITEMS_PER_CHUNK
        )
    return {"header": header, "references": len(refs), "items": items}


def explode(spark, chunks: Path, header: dict, source_file: str, output: str) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tin = T.StructType([T.StructField("type", T.StringType()), T.StructField("value", T.StringType())])
    group = T.StructType([T.StructField("npi", T.ArrayType(T.LongType())), T.StructField("tin", tin)])
    price = T.StructType(
        [T.StructField(n, T.DoubleType() if n == "negotiated_rate" else T.StringType())
         for n in ("negotiated_type", "negotiated_rate", "expiration_date", "billing_class", "setting")]
        + [T.StructField("service_code", T.ArrayType(T.StringType())),
           T.StructField("billing_code_modifier", T.ArrayType(T.StringType())),
           T.StructField("additional_information", T.StringType())]
    )  # fmt: skip
    rate = T.StructType(
        [
            T.StructField("provider_references", T.ArrayType(T.LongType())),
            T.StructField("provider_groups", T.ArrayType(group)),
            T.StructField("negotiated_prices", T.ArrayType(price)),
        ]
    )
    item_fields = COLUMN_NAMES[7:13]
    item = T.StructType([T.StructField(n, T.StringType()) for n in item_fields]
                        + [T.StructField("negotiated_rates", T.ArrayType(rate))])  # fmt: skip
    ref = T.StructType(
        [T.StructField("provider_group_id", T.LongType()), T.StructField("provider_groups", T.ArrayType(group))]
    )
    read = spark.read.option("multiLine", True)
    refs = (
        read.schema(T.StructType([T.StructField("provider_references", T.ArrayType(ref))]))
        .json(str(chunks / "refs-*.json"))
        .select(F.explode("provider_references").alias("r"))
        .where(F.col("r.provider_groups").isNotNull())
        .select(F.col("r.provider_group_id").alias("ref_id"), F.explode_outer("r.provider_groups").alias("g"))
        .select(
            "ref_id",
            F.explode_outer("g.npi").alias("npi"),
            F.col("g.tin.type").alias("tin_type"),
            F.col("g.tin.value").alias("tin_value"),
        )  # fmt: skip
    )
    items = (
        read.schema(T.StructType([T.StructField("in_network", T.ArrayType(item))]))
        .json(str(chunks / "items-*.json"))
        .select(F.input_file_name().alias("f"), F.posexplode("in_network").alias("ipos", "it"))
    )
    rates = items.select("f", "ipos", *[F.col(f"it.{n}").alias(n) for n in item_fields],
                         F.posexplode("it.negotiated_rates").alias("rpos", "rate"))  # fmt: skip
    key = ["f", "ipos", "rpos"]
    inline = (
        rates.where(F.col("rate.provider_groups").isNotNull())
        .select(*key, F.explode_outer("rate.provider_groups").alias("g"))
        .select(
            *key,
            F.lit(None).cast("bigint").alias("provider_group_id"),
            F.explode_outer("g.npi").alias("npi"),
            F.col("g.tin.type").alias("tin_type"),
            F.col("g.tin.value").alias("tin_value"),
        )  # fmt: skip
    )
    referenced = (
        rates.select(*key, F.explode("rate.provider_references").alias("ref_id"))
        .join(refs, "ref_id", "left")
        .select(*key, F.col("ref_id").alias("provider_group_id"), "npi", "tin_type", "tin_value")
    )
    bare = rates.where(
        F.col("rate.provider_groups").isNull() & (F.size(F.coalesce("rate.provider_references", F.array())) == 0)
    ).select(*key, *[F.lit(None).cast(t).alias(n) for n, t in
                     (("provider_group_id", "bigint"), ("npi", "bigint"), ("tin_type", "string"),
                      ("tin_value", "string"))])  # fmt: skip
    providers = inline.unionByName(referenced).unionByName(bare)
    prices = rates.select(*key, *item_fields, F.explode("rate.negotiated_prices").alias("p"))
    rows = prices.join(providers, key)
    constants = {name: header.get(name) for name in HEADER_FIELDS}
    constants["source_file"] = source_file
    columns = []
    for name in COLUMN_NAMES:
        if name in constants:
            value = constants[name]
            columns.append(F.lit(None if value is None else str(value)).cast("string").alias(name))
        elif name in item_fields or name in ("provider_group_id", "npi", "tin_type", "tin_value"):
            columns.append(F.col(name))
        else:
            columns.append(F.col(f"p.{name}").alias(name))
    rows.select(*columns).write.mode("overwrite").parquet(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--source-file", help="value of the source_file column (default: the input path)")
    parser.add_argument("--work", type=Path, help="where the chunk files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mrf-chunks-", dir=args.work))
    try:
        meta = split(args.input, work)
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[*]").appName("mrf_reference")
            .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
            .config("spark.sql.shuffle.partitions", "8").getOrCreate()
        )  # fmt: skip
        explode(spark, work, meta["header"], args.source_file or str(args.input), args.output)
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in meta.items() if k != "header"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
