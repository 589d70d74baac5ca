"""PostgreSQL for the local stack: Debian's server, a cluster under the state folder.

It serves the Iceberg JDBC catalog (offline stand-in for the Glue Data Catalog) and the
Redshift stand-in. It listens on 127.0.0.1 only, on a free port, with ``trust`` auth for
loopback connections: a throw-away development cluster, never a deployment target.
PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DATABASES = ("iceberg_catalog", "warehouse")
STATEMENT_LOG = "statements.log"  # under <data_dir>/log/
SUPERUSER = "pipelines"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "run `make system` (apt-get install postgresql)"
        )
    return Path(found[-1]).parent


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str]) -> None:
    subprocess.run(_as_server_user(cmd), check=True, capture_output=True, text=True)


def _chown_for_server(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")


def _server_user_can_reach(path: Path) -> bool:
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)], capture_output=True)
    return probe.returncode == 0


def server_data_dir(requested: Path) -> Path:
    """Where the cluster really lives.

    The ``postgres`` user must be able to reach the data folder. When the project sits
    under a folder it cannot enter (a checkout under /root, say), the cluster goes to a
    folder of its own under the system temp dir and ``requested`` becomes a symlink to
    it, so the state folder still holds (a link to) everything.
    """
    requested.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or _server_user_can_reach(requested.parent):
        return requested
    digest = hashlib.sha1(str(requested.absolute()).encode()).hexdigest()[:12]  # not resolve(): it follows the link
    outside = Path(tempfile.gettempdir()) / f"mwaa-pipelines-pg-{digest}"
    if requested.is_symlink() or requested.exists():
        if requested.is_symlink() and requested.resolve() == outside:
            return outside
        if requested.is_symlink():
            requested.unlink()
        else:
            shutil.rmtree(requested)
    # Nothing in the state folder points at it any more: an orphan from a removed checkout.
    shutil.rmtree(outside, ignore_errors=True)
    requested.symlink_to(outside, target_is_directory=True)
    return outside


def init(data_dir: Path) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    _chown_for_server(data_dir)
    _run([str(bin_dir() / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# local stack\nlisten_addresses = '127.0.0.1'\n"
            "shared_preload_libraries = 'pg_stat_statements'\n"
            "pg_stat_statements.track = all\n"
            "log_statement = 'all'\nlog_line_prefix = '%m [%p] app=%a db=%d '\n"
            # The statement log is readable over SQL (pg_current_logfile + pg_read_file), which
            # is how the Redshift stand-in's verification finds a run's statements by label.
            f"logging_collector = on\nlog_directory = 'log'\nlog_filename = '{STATEMENT_LOG}'\n"
            "log_rotation_age = 0\nlog_rotation_size = 0\n"
        )


def start(port: int, data_dir: Path) -> Path:
    """Start the cluster (initialising it first if needed); return its statement log."""
    data_dir = server_data_dir(data_dir)
    init(data_dir)
    log = data_dir / "server.log"
    log.touch()
    _chown_for_server(log)
    _run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log),
            "-o",
            f"-p {port} -k {data_dir}",
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    for db in DATABASES:
        ensure_database(port, db)
    psql(port, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db="warehouse")
    return data_dir / "log" / STATEMENT_LOG


def ensure_database(port: int, db: str) -> None:
    """Create database ``db`` unless the cluster has it."""
    if not psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{db}'").strip():
        psql(port, f"CREATE DATABASE {db}")


def psql(port: int, sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        [str(bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", db, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def stop(data_dir: Path) -> None:
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    _run([str(bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])


def jdbc_url(port: int, db: str, host: str = "127.0.0.1") -> str:
    """The database's JDBC URL; the user travels apart (Spark's ``user`` option, jdbc.user)."""
    return f"jdbc:postgresql://{host}:{port}/{db}"
