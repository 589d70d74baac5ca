"""The Airflow UI of ``make ui``, driven in a real browser (Debian's chromium, headless).

One ``python -m local.launchers.ui`` (what ``make ui`` runs: API server, scheduler, DAG processor,
triggerer) on a stack of its own for the module, read for its URL and login as a user
would, and stopped with Ctrl-C at the end (checked: nothing left running). Each step leaves
a screenshot under ``.state/artifacts/ui/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.launchers.ui import READY_TIMEOUT_S, STOP_TIMEOUT_S
from local.paths import ROOT, STATE, TMP
from local.services import postgres
from local.services.stack import Stack, free_port
from operators.vpc.health import CONNECTION_ARG

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAG = "glue_subnet_failover"
TASK = "start_on_healthiest_subnet"
SHOTS = STATE / "artifacts" / "ui"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_S = 300
STEPS = pytest.StashKey[list]()
READY = re.compile(r"Airflow is ready: (\S+)\s+login: (\S+) / (\S+)")


@dataclass
class Ui:
    """A running ``python -m local.launchers.ui``: what it printed, and its stack."""

    url: str
    user: str
    password: str
    stack: Stack
    output: list[str]


def _read_until_ready(process: subprocess.Popen, lines: list[str], timeout: float) -> re.Match | None:
    """Collect the command's output (in a thread) until its ready banner, or ``timeout``."""
    ready: list[re.Match] = []

    def read():
        for line in process.stdout:
            lines.append(line)
            if not ready and (m := READY.search("".join(lines[-3:]))):
                ready.append(m)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready and process.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    return ready[0] if ready else None


@pytest.fixture(scope="module")
def airflow():
    """``make ui``'s command on a stack folder of its own; stopped with Ctrl-C (SIGINT) at the end,
    which must stop every Airflow service and the stack."""
    home = TMP / f"ui-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "local.launchers.ui", "--port", str(free_port()), "--home", str(home)]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines: list[str] = []
    try:
        ready = _read_until_ready(process, lines, READY_TIMEOUT_S)
        assert ready, f"make ui did not become ready: {''.join(lines)[-3000:]}"
        url, user, password = ready.groups()
        yield Ui(url, user, password, Stack(home), lines)
        pids = _airflow_pids(home)
        assert len(pids) >= 4, "the four Airflow services run with this stack's environment"
        process.send_signal(signal.SIGINT)
        assert process.wait(STOP_TIMEOUT_S) == 0, "".join(lines)[-3000:]
        assert "stopped" in "".join(lines[-5:])
        time.sleep(1)
        assert [p for p in pids if _alive(p)] == [], "Ctrl-C left Airflow services running"
        assert not Stack(home).info() or not _alive(Stack(home).info()["moto"]["pid"]), "the stack is still up"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _airflow_pids(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        Stack(home).clean()
        shutil.rmtree(home, ignore_errors=True)


def _airflow_pids(home) -> list[int]:
    """Processes whose environment points at this stack folder (Airflow's services and tasks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if str(home).encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "stat").read_text().split()[2] != "Z"
    return False


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, airflow, request):
    """A page signed in as the admin user of ``make ui``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(airflow.url)
    page.get_by_label("Username").fill(airflow.user)
    page.get_by_label("Password").fill(airflow.password)
    shot(page, request, "login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield page
    context.close()


def shot(page, request, step: str) -> None:
    """Save the page as ``<test>-<n>-<step>.png`` (n counts this test's steps)."""
    counter = request.node.stash.setdefault(STEPS, [0])
    counter[0] += 1
    page.screenshot(path=str(SHOTS / f"{request.node.name}-{counter[0]:02d}-{step}.png"))


def open_trigger_form(page, airflow, request):
    page.goto(f"{airflow.url}/dags/{DAG}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    return dialog


def dag_runs(airflow) -> int:
    port = airflow.stack.info()["postgres"]["port"]  # make ui keeps Airflow's metadata there
    return int(postgres.psql(port, f"SELECT count(*) FROM dag_run WHERE dag_id = '{DAG}'", db="airflow"))


def wait_for_state(page, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
    """Reload the run page until the state badge beside its title shows a finished state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        header = page.get_by_role("heading", name=run_id, exact=True).locator("xpath=..")
        header.wait_for()
        badge = header.get_by_test_id("state-badge")
        state = badge.inner_text().strip() if badge.count() else ""
        if state in ("Success", "Failed"):
            return state
        page.wait_for_timeout(3000)
        page.reload()
    return "timed out"


def test_dry_run_triggered_from_the_form_reports_its_choice(page, airflow, request):
    job = json.loads(airflow.stack.variable("glue_subnet_failover"))["job_name"]  # form fallback
    runs_before = dag_runs(airflow)
    dialog = open_trigger_form(page, airflow, request)
    dialog.locator("#element_avoid_zones").fill("us-east-1a")
    dialog.locator("label#switch\\:element_dry_run").click()
    assert dialog.locator("input[name=element_dry_run]").is_checked()
    shot(page, request, "form-filled")
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    page.wait_for_url(f"**/dags/{DAG}/runs/**")
    run_id = page.url.split("/runs/", 1)[1].split("/")[0]
    shot(page, request, "run-started")
    state = wait_for_state(page, run_id)
    shot(page, request, "run-finished")
    assert state == "Success"
    assert dag_runs(airflow) == runs_before + 1

    task_url = f"{airflow.url}/dags/{DAG}/runs/{run_id}/tasks/{TASK}"
    page.goto(f"{task_url}?try_number=1")
    page.get_by_text("Dry run: would start").wait_for()
    log = page.locator("body").inner_text()
    shot(page, request, "task-log")
    assert "zone us-east-1a is on the avoid list" in log  # the ranking table, with reasons
    page.goto(f"{task_url}/details")  # the task's extra links are listed there
    subnet_link = page.get_by_role("link", name="Chosen subnet")
    subnet_link.wait_for()
    subnet_href = subnet_link.get_attribute("href")
    shot(page, request, "extra-links")

    page.goto(f"{task_url}/xcom")
    page.get_by_role("cell", name="return_value").wait_for()
    page.get_by_role("button", name="Expand all extra JSON").click()
    value = page.get_by_role("row").filter(has_text="return_value").get_by_test_id("xcom-value")
    value.get_by_text('"chosen"').first.wait_for()
    text = value.inner_text()
    shot(page, request, "xcom")
    # The value is shown in a code editor that renders only the lines in view: read the keys.
    chosen = re.search(r'"chosen":\s*"([^"]+)"', text).group(1)
    assert re.search(r'"dry_run":\s*true', text)
    assert f"Dry run: would start {job} on {chosen}" in log

    glue = airflow.stack.boto3_client("glue")
    requirements = glue.get_connection(Name=chosen)["Connection"]["PhysicalConnectionRequirements"]
    assert requirements["AvailabilityZone"] != "us-east-1a"
    assert subnet_href.endswith(f"#SubnetDetails:subnetId={requirements['SubnetId']}")
    started = [r for r in glue.get_job_runs(JobName=job)["JobRuns"] if CONNECTION_ARG in (r.get("Arguments") or {})]
    assert started == [], "a dry run starts nothing"


def test_invalid_zone_is_refused_with_its_message_and_no_run(page, airflow, request):
    runs_before = dag_runs(airflow)
    dialog = open_trigger_form(page, airflow, request)
    dialog.locator("#element_avoid_zones").fill("middle-earth")
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    message = dialog.get_by_text("Invalid input for param avoid_zones")
    message.wait_for()
    shot(page, request, "refused")
    assert "'middle-earth' does not match" in message.inner_text()
    assert "/runs/" not in page.url
    assert dag_runs(airflow) == runs_before
