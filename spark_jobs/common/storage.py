"""Files on local disk or S3 through one pyarrow filesystem API, and atomic publishing.

The S3 endpoint comes from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (the local stack) or,
inside a Spark job, from ``spark.hadoop.fs.s3a.endpoint``; credentials come from the default
AWS chain (environment or instance role), never from arguments.

Publishing: a run writes everything to a staging location and only then makes it the output.
On a local disk that is a directory rename (the previous output is moved aside first and
restored by the next run if a crash happened between the two renames). S3 has no rename: the
staged objects are copied into place under deterministic names, then objects of the previous
output that the new one does not have are deleted, and ``_SUCCESS`` (the manifest) is written
last; a run interrupted while publishing leaves its staging, which the next run replaces.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs

log = logging.getLogger(__name__)
MANIFEST = "_SUCCESS"


def s3_endpoint() -> str | None:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return endpoint
    try:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    except ImportError:
        return None
    return spark.conf.get("spark.hadoop.fs.s3a.endpoint", None) if spark else None


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path, file:// URI or s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        endpoint = s3_endpoint()
        kwargs = {"region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
        if endpoint:
            ep = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
            kwargs.update(endpoint_override=ep.netloc, scheme=ep.scheme or "http", force_virtual_addressing=False)
        return pafs.S3FileSystem(**kwargs), f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
        return pafs.LocalFileSystem(), os.path.abspath(path)
    raise ValueError(f"unsupported location {uri!r}: use a local path, file:// or s3://")


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def list_inputs(uri: str, suffixes: tuple[str, ...] = (".json", ".json.gz")) -> list[tuple[str, int]]:
    """(uri, size) of the file ``uri``, or of every file under the prefix/folder ``uri``."""
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    scheme = "s3://" if not is_local(fs) else ""
    if info.type == pafs.FileType.File:
        return [(uri, info.size)]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"input {uri!r} does not exist")
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    files = [
        (f"{scheme}{f.path}", f.size)
        for f in found
        if f.type == pafs.FileType.File and f.path.endswith(suffixes) and "/_" not in f.path[len(path) :]
    ]
    if not files:
        raise FileNotFoundError(f"no {'/'.join(suffixes)} files under {uri!r}")
    return sorted(files)


@dataclass
class Staging:
    """Where a run writes before publishing to ``output``."""

    fs: pafs.FileSystem
    output: str  # path within fs
    path: str  # staging path within fs
    run_id: str

    @classmethod
    def create(cls, output_uri: str, run_id: str | None = None) -> Staging:
        fs, output = filesystem(output_uri)
        run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        if is_local(fs):
            recover_local(output)
            path = f"{output}.staging-{run_id}"
        else:
            path = f"{output}/_staging/{run_id}"
        if is_local(fs):  # S3 has no folders (pyarrow would leave marker objects)
            fs.create_dir(path, recursive=True)
        return cls(fs, output, path, run_id)

    def abort(self) -> None:
        try:
            self.fs.delete_dir(self.path)
            if not is_local(self.fs):  # pyarrow leaves a marker for the emptied parent
                parent = f"{self.output}/_staging"
                if not self.fs.get_file_info(pafs.FileSelector(parent, recursive=True, allow_not_found=True)):
                    self.fs.delete_dir(parent)
        except (FileNotFoundError, OSError):
            pass

    def publish(self, manifest: dict) -> None:
        """Make the staged files the output, manifest included; nothing else changes on failure."""
        text = json.dumps(manifest, indent=2, sort_keys=True).encode()
        if is_local(self.fs):
            with self.fs.open_output_stream(f"{self.path}/{MANIFEST}") as out:
                out.write(text)
            previous = f"{self.output}.previous-{self.run_id}"
            had_output = os.path.exists(self.output)
            if had_output:
                os.rename(self.output, previous)
            os.rename(self.path, self.output)
            if had_output:
                self.fs.delete_dir(previous)
            return
        staged = [
            f.path
            for f in self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True))
            if f.type == pafs.FileType.File
        ]
        new_keys = set()
        for src in staged:
            rel = src[len(self.path) + 1 :]
            new_keys.add(rel)
            self.fs.copy_file(src, f"{self.output}/{rel}")
        existing = self.fs.get_file_info(pafs.FileSelector(self.output, recursive=True, allow_not_found=True))
        for f in existing:
            rel = f.path[len(self.output) + 1 :]
            if f.type == pafs.FileType.File and not rel.startswith("_") and rel not in new_keys:
                self.fs.delete_file(f.path)
        with self.fs.open_output_stream(f"{self.output}/{MANIFEST}") as out:
            out.write(text)
        self.abort()


def recover_local(output: str) -> None:
    """Undo a publish that stopped between its two renames: restore the previous output."""
    parent, name = posixpath.split(output)
    if os.path.exists(output) or not os.path.isdir(parent or "."):
        return
    leftovers = sorted(e for e in os.listdir(parent or ".") if e.startswith(f"{name}.previous-"))
    if leftovers:
        os.rename(os.path.join(parent, leftovers[-1]), output)
        log.warning("restored %s from %s (a previous run stopped while publishing)", output, leftovers[-1])


def read_manifest(output_uri: str) -> dict | None:
    fs, output = filesystem(output_uri)
    try:
        with fs.open_input_stream(f"{output}/{MANIFEST}") as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError):
        return None
