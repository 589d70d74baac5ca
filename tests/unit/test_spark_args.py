import io
import zipfile

import pytest

from deploy.layout import SPARK_JOBS_DIR
from operators.spark.arguments import (
    JOBS_ARCHIVE,
    ScriptArgsError,
    conf_pairs,
    emr_spark_submit_parameters,
    glue_conf_value,
    glue_script_args,
    jobs_archive,
)


def test_glue_args_are_pairs_in_order():
    assert glue_script_args(["--input", "s3://a/b", "--n", 3]) == {"--input": "s3://a/b", "--n": "3"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flag"], "odd count"),
        (["input", "x"], "start with '--'"),
        (["--a", "1", "--a", "2"], "given twice"),
        (["--", "x"], "start with '--'"),
    ],
)
def test_glue_args_reject_what_glue_cannot_express(args, message):
    with pytest.raises(ScriptArgsError, match=message):
        glue_script_args(args)


def test_conf_forms_agree():
    conf = {"spark.b": "2", "spark.a": "1"}
    assert conf_pairs(conf) == ["--conf", "spark.a=1", "--conf", "spark.b=2"]
    # Glue takes every property through one --conf argument.
    assert glue_conf_value(conf) == "spark.a=1 --conf spark.b=2"
    assert glue_conf_value({}) is None
    assert emr_spark_submit_parameters(conf, "s3://x/spark_jobs.zip") == (
        "--conf spark.a=1 --conf spark.b=2 --py-files s3://x/spark_jobs.zip"
    )


def test_jobs_archive_holds_the_common_package():
    names = set(zipfile.ZipFile(io.BytesIO(jobs_archive(SPARK_JOBS_DIR))).namelist())
    assert "spark_jobs/__init__.py" in names
    assert "spark_jobs/common/session.py" in names
    # Entry points are uploaded as scripts, not inside the archive.
    assert "spark_jobs/platform_check.py" not in names


def test_jobs_archive_carries_sqlglot_importable_from_the_zip(tmp_path):
    """Glue / EMR do not ship sqlglot: the archive does, and Python imports it from there."""
    import subprocess
    import sys

    archive = tmp_path / "spark_jobs.zip"
    archive.write_bytes(jobs_archive(SPARK_JOBS_DIR))
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sqlglot; "
        "from spark_jobs.redshift.sales_report import warehouse_sql; "
        "assert sqlglot.__file__.startswith(sys.argv[1]), sqlglot.__file__; "
        "print(warehouse_sql('redshift', 2008, 'public'))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", probe, str(archive)], capture_output=True, text=True, check=True)
    assert 'FROM "public"."sales" AS "s" JOIN "public"."date"' in out.stdout


def test_jobs_archive_holds_every_package_the_entry_points_import(tmp_path):
    """Each entry point imports, from the archive alone, every module of ours it needs."""
    import subprocess
    import sys

    archive = tmp_path / JOBS_ARCHIVE
    archive.write_bytes(jobs_archive(SPARK_JOBS_DIR))
    names = set(zipfile.ZipFile(archive).namelist())
    for package in ("common", "mrf", "iceberg", "cost", "redshift"):
        assert f"spark_jobs/{package}/__init__.py" in names
    entry_points = sorted(p.name for p in SPARK_JOBS_DIR.glob("*.py") if p.name != "__init__.py")
    assert entry_points and not any(f"spark_jobs/{name}" in names for name in entry_points)
    # Run each entry point's imports with only the archive for our code (cwd elsewhere, -I).
    probe = (
        "import runpy, sys; sys.path.insert(0, sys.argv[1]); "
        "[runpy.run_path(p, run_name='probe') for p in sys.argv[2:]]; "
        "ours = sorted(m.__name__ for m in list(sys.modules.values()) "
        "if m.__name__.startswith('spark_jobs.') and getattr(m, '__file__', None)); "
        "outside = [n for n in ours if not sys.modules[n].__file__.startswith(sys.argv[1])]; "
        "assert not outside, outside; print(len(ours))"
    )
    scripts = [str(SPARK_JOBS_DIR / name) for name in entry_points]
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(archive), *scripts], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 15
