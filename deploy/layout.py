"""What MWAA gets, in one place: the dags/ bundle, plugins.zip, the scripts.

AWS's guidance for custom operators: place them under dags/ (MWAA puts dags/ on
``sys.path``), list every non-DAG file in ``.airflowignore``, and keep plugins.zip for UI
extensions. The local stack and docker-compose reproduce this same layout, so an
``import operators...`` in a DAG resolves identically everywhere:

    dags/<pipeline>.py            the DAG files
    dags/operators/               this repository's operators/ package
    dags/spark_jobs/              the Spark jobs' package (operators share its pure settings
                                  code, e.g. the Iceberg policy checks)
    dags/constraints.txt          MWAA's constraints, referenced by requirements.txt
    dags/.airflowignore           operators/, spark_jobs/ and constraints.txt
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
OPERATORS_DIR = ROOT / "operators"
PLUGINS_DIR = ROOT / "plugins"
SPARK_JOBS_DIR = ROOT / "spark_jobs"
CONSTRAINTS_NAME = "constraints.txt"
# Packages that travel inside dags/ so DAG tasks can import them.
PACKAGES_UNDER_DAGS = ("operators", "spark_jobs")
MWAA_DAGS_PATH = "/usr/local/airflow/dags"


def _skip(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}


def dags_bundle(root: Path = ROOT) -> dict[str, Path]:
    """Relative path under dags/ -> source file, for every file MWAA's dags/ should hold."""
    entries: dict[str, Path] = {}
    for path in sorted((root / "dags").rglob("*")):
        if path.is_file() and not _skip(path):
            entries[path.relative_to(root / "dags").as_posix()] = path
    for package in PACKAGES_UNDER_DAGS:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and not _skip(path):
                entries[f"{package}/{path.relative_to(root / package).as_posix()}"] = path
    return entries


def stage_dags_bundle(dest: Path, root: Path = ROOT) -> Path:
    """Reproduce MWAA's dags/ folder at ``dest`` with symlinks (edits show up live)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES_UNDER_DAGS:
        link = dest / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(root / name, target_is_directory=True)
    for path in sorted((root / "dags").iterdir()):
        if _skip(path):
            continue
        link = dest / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)
    return dest


def plugins_zip(root: Path = ROOT) -> bytes:
    """plugins.zip with the plugins/ folder's files at the archive root (MWAA's layout).

    Byte-for-byte reproducible (fixed timestamps, sorted entries): an unchanged plugins/
    gives an unchanged object, so a deploy does not restart the environment for nothing.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / "plugins").rglob("*")):
            if path.is_file() and not _skip(path):
                info = zipfile.ZipInfo(path.relative_to(root / "plugins").as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def spark_jobs_files(root: Path = ROOT) -> dict[str, Path]:
    """Scripts uploaded under the scripts prefix (entry points plus their package)."""
    return {
        path.relative_to(root / "spark_jobs").as_posix(): path
        for path in sorted((root / "spark_jobs").rglob("*.py"))
        if not _skip(path)
    }
