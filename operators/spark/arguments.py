"""Translate one script invocation into each platform's dialect.

A Spark task is a script from ``spark_jobs/`` plus ``--name value`` arguments. Glue takes
arguments as a map and Spark properties through a single ``--conf`` argument; EMR
Serverless and spark-submit take an argument list and ``--conf k=v`` pairs. These pure
functions keep the three in step, so the script sees the same ``argv`` everywhere.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

JOBS_ARCHIVE = "spark_jobs.zip"
# Pure-Python libraries the jobs import that Glue 5 / EMR 7 do not ship: they travel inside
# spark_jobs.zip (taken from the environment that builds the archive), so no job needs
# --additional-python-modules or network access to PyPI.
BUNDLED_PACKAGES = ("sqlglot",)


class ScriptArgsError(ValueError):
    """Script arguments cannot be expressed on every platform."""


def glue_script_args(args: Sequence[str]) -> dict[str, str]:
    """``["--in", "x", "--out", "y"]`` -> ``{"--in": "x", "--out": "y"}``.

    Glue passes job arguments as a map of ``--name`` to value, so every argument must be a
    ``--name value`` pair (a bare flag has no Glue form: pass ``--flag true``).
    """
    args = [str(a) for a in args]
    if len(args) % 2:
        raise ScriptArgsError(f"script arguments must be '--name value' pairs, got an odd count: {args}")
    pairs: dict[str, str] = {}
    for name, value in zip(args[::2], args[1::2], strict=True):
        if not name.startswith("--") or len(name) < 3:
            raise ScriptArgsError(f"script argument names start with '--': {name!r} in {args}")
        if name in pairs:
            raise ScriptArgsError(f"script argument {name!r} given twice in {args}")
        pairs[name] = value
    return pairs


def validate_script_args(args: Sequence[str]) -> list[str]:
    """Check the args have a Glue form too, so a DAG that works locally works on Glue."""
    glue_script_args(args)
    return [str(a) for a in args]


def conf_pairs(conf: Mapping[str, str]) -> list[str]:
    """``{"k": "v"}`` -> ``["--conf", "k=v"]`` for spark-submit and EMR Serverless."""
    out: list[str] = []
    for key in sorted(conf):
        out += ["--conf", f"{key}={conf[key]}"]
    return out


def glue_conf_value(conf: Mapping[str, str]) -> str | None:
    """Glue's single ``--conf`` argument: ``k1=v1 --conf k2=v2`` (the documented way)."""
    if not conf:
        return None
    return " --conf ".join(f"{key}={conf[key]}" for key in sorted(conf))


def emr_spark_submit_parameters(conf: Mapping[str, str], py_files: str | None) -> str:
    parts = conf_pairs(conf)
    if py_files:
        parts += ["--py-files", py_files]
    return " ".join(parts)


def jobs_archive(scripts_dir: Path, bundled: Sequence[str] = BUNDLED_PACKAGES) -> bytes:
    """``spark_jobs.zip``: the ``spark_jobs`` package with every subpackage the scripts import
    (``common``, ``mrf``, ``iceberg``, ``cost``, ``redshift``: each folder holding an
    ``__init__.py``), and the ``bundled`` pure-Python packages, shipped with
    ``--extra-py-files`` (Glue) / ``--py-files`` (EMR, spark-submit). The entry points at the
    top of ``spark_jobs/`` are uploaded as scripts and stay out of it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(scripts_dir / "__init__.py", "spark_jobs/__init__.py")
        for package in sorted(p.parent for p in scripts_dir.glob("*/__init__.py")):
            for path in sorted(package.rglob("*.py")):
                zf.write(path, f"spark_jobs/{path.relative_to(scripts_dir).as_posix()}")
        for package in bundled:
            root = _package_dir(package)
            for path in sorted(root.rglob("*.py")):
                zf.write(path, f"{package}/{path.relative_to(root).as_posix()}")
    return buf.getvalue()


def _package_dir(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ScriptArgsError(f"{package} is not installed here: it must be, to be bundled into {JOBS_ARCHIVE}")
    root = Path(next(iter(spec.submodule_search_locations)))
    if any(root.rglob("*.so")):
        raise ScriptArgsError(f"{package} has compiled modules: it cannot travel in {JOBS_ARCHIVE}")
    return root
