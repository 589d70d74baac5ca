"""Sample inputs the demo puts on the local stack before running a DAG that needs them."""

from __future__ import annotations

from local.paths import STATE
from local.services.stack import Stack

SAMPLE_MRF_BYTES = 20_000_000
MRF_INCOMING = "mrf/incoming/"


def upload_sample_mrf(stack: Stack) -> str:
    """A generated 20 MB (JSON) in-network-rates file, gzipped, under the data bucket's incoming prefix."""
    from bench.gen_mrf import write_file

    path = STATE / "samples" / f"in-network-rates-{SAMPLE_MRF_BYTES // 1_000_000}MB.json.gz"
    if not path.exists():
        write_file(path, SAMPLE_MRF_BYTES, seed=21, gzip=True)
    bucket = stack.info()["seed"]["buckets"]["data"]
    key = f"{MRF_INCOMING}{path.name}"
    stack.boto3_client("s3").upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"
