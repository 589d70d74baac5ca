"""``make ui``: Airflow's web UI and its services on the local stack, until Ctrl-C.

Starts the local stack (its own folder, ``.state/ui``, so a ``make demo`` or a test run
beside it is not disturbed), then what ``airflow standalone`` runs: the API server (UI
included), scheduler, DAG processor and triggerer, all on 127.0.0.1, with the same DAGs, Variables and connection as
``make demo``. Airflow's metadata lives in the stack's PostgreSQL (four services write it
at once, which SQLite does not take well). Login is Airflow's simple auth manager with one
admin user whose password is generated once per folder and printed.

Ctrl-C stops Airflow's services first, then the stack; the folder (runs, logs, data on the
local AWS endpoint) stays for the next ``make ui``. ``--clean`` starts from nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local.paths import STATE
from local.services import postgres
from local.services.stack import Stack, free_port

DEFAULT_HOME = STATE / "ui"
USER = "admin"
READY_TIMEOUT_S = 300
# Each Airflow service gets SERVICE_GRACE_S after SIGTERM before it is killed; the stack's own
# stop is bounded too, so the whole of Ctrl-C ends within STOP_TIMEOUT_S.
SERVICE_GRACE_S = 30
STOP_TIMEOUT_S = SERVICE_GRACE_S + 60


def _secret(path: Path, make) -> str:
    """A value generated once and kept in ``path`` (private to the user)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def login(airflow_home: Path) -> tuple[str, str]:
    """The admin user and its password, in the file the simple auth manager reads."""
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    _secret(passwords, lambda: json.dumps({USER: secrets.token_urlsafe(12)}) + "\n")
    return USER, json.loads(passwords.read_text())[USER]


def ui_env(stack: Stack, port: int) -> dict[str, str]:
    """The stack's Airflow environment, with the metadata DB on PostgreSQL and the API on ``port``."""
    info = stack.info()
    pg_port = info["postgres"]["port"]
    postgres.ensure_database(pg_port, "airflow")
    env = stack.airflow_env()
    home = Path(env["AIRFLOW_HOME"])
    url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{postgres.SUPERUSER}@127.0.0.1:{pg_port}/airflow"
            ),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # a laptop's worth of task processes
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            # One secret for every service: tasks authenticate to the API server with it.
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home / ".jwt_secret", lambda: secrets.token_urlsafe(32)),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        }
    )
    return env


SERVICES = {
    "api-server": ["api-server"],
    # The log servers are not needed (every log is a local file the API server reads) and
    # would listen on every interface: skipped.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


class Airflow:
    """Airflow's four services (what ``airflow standalone`` runs), each logging to its own file."""

    def __init__(self, stack: Stack, port: int):
        self.stack = stack
        self.env = {**os.environ, **ui_env(stack, port)}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.url = self.env["AIRFLOW__API__BASE_URL"]
        # Written before the API server starts, or it would make up its own password.
        self.user, self.password = login(Path(self.env["AIRFLOW_HOME"]))
        self.processes: dict[str, subprocess.Popen] = {}

    def log(self, service: str) -> Path:
        return self.stack.logs / f"ui-{service}.log"

    def start(self) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        migrate_log = self.log("db-migrate")
        with open(migrate_log, "w") as out:
            done = subprocess.run([airflow, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"airflow db migrate failed: see {migrate_log}")
        for service, args in SERVICES.items():
            with open(self.log(service), "w") as out:
                self.processes[service] = subprocess.Popen(
                    [airflow, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )

    def exited(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Until the API server reports every service healthy (False if one exits first)."""
        deadline = time.monotonic() + timeout
        parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        while time.monotonic() < deadline and not self.exited():
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                    health = json.load(response)
                if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                    return True
            time.sleep(2)
        return False

    def stop(self, grace: float = SERVICE_GRACE_S) -> None:
        """SIGTERM to each service's process group (they shut down cleanly), SIGKILL after ``grace``.

        Says which service had to be killed, so a slow shutdown shows in the output."""
        started = time.monotonic()
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = started + grace
        for service, process in self.processes.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            if process.poll() is None:
                print(f"Airflow's {service} did not stop within {grace:.0f} s of SIGTERM: killed", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left
            process.wait()
        print(f"Airflow's services stopped in {time.monotonic() - started:.1f} s", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local.launchers.ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="the UI's port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="the stack folder (default .state/ui)")
    parser.add_argument("--clean", action="store_true", help="remove the folder's stack and runs first")
    args = parser.parse_args(argv)
    # Ctrl-C and a plain ``kill`` both stop cleanly (a shell's background job ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack(args.home)
    if args.clean:
        stack.clean()
        shutil.rmtree(args.home, ignore_errors=True)
    stack.start()
    airflow = None
    try:
        airflow = Airflow(stack, args.port or free_port())
        print(f"starting Airflow at {airflow.url} (logs: {stack.logs}/ui-*.log)", flush=True)
        airflow.start()
        if airflow.wait_ready():
            print(f"\nAirflow is ready: {airflow.url}\nlogin: {airflow.user} / {airflow.password}\n"
                  "Ctrl-C stops it.\n", flush=True)  # fmt: skip
        while not airflow.exited():
            time.sleep(1)
        print(f"Airflow's {', '.join(airflow.exited())} exited: see {stack.logs}/ui-*.log", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nstopping Airflow and the local stack...", flush=True)
        return 0
    finally:
        if airflow is not None:
            airflow.stop()
        stack.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
