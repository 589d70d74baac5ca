"""The Airflow UI of ``make ui``, driven in a real browser (Debian's chromium, headless).

One Airflow (API server, scheduler, DAG processor, triggerer) on a stack of its own for the
module. Each step leaves a screenshot under ``.state/artifacts/ui/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid

import pytest

from local import postgres
from local.paths import STATE, TMP
from local.stack import Stack
from local.ui import Airflow, free_port
from operators.subnet_health import CONNECTION_ARG

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


@pytest.fixture(scope="module")
def airflow():
    home = TMP / f"ui-{uuid.uuid4().hex[:6]}"
    stack = Stack(home)
    stack.start()
    service = None
    try:
        service = Airflow(stack, free_port())
        service.start()
        if not service.wait_ready():
            tails = {name: service.log(name).read_text()[-2000:] for name in ("api-server", "scheduler")}
            pytest.fail(f"Airflow did not become healthy (exited: {service.exited()}): {tails}")
        yield service
    finally:
        if service is not None:
            service.stop()
        stack.clean()
        shutil.rmtree(home, ignore_errors=True)


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
    port = airflow.stack.info()["postgres"]["port"]
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
    job = json.loads(airflow.env["AIRFLOW_VAR_GLUE_SUBNET_FAILOVER"])["job_name"]  # the form's fallback
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
