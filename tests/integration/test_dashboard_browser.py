"""The dashboard in a real browser: headless Chromium (Playwright) against a live devnet.

A manager and two agents run as child processes on loopback (``sealagent devnet``'s
:class:`~sealagent.cli.devnet.Cluster`); Playwright's synchronous API drives the system's
Chromium from a worker thread while the test's Trio loop owns the processes.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from sealagent.cli.devnet import Cluster, Plan
from sealagent.rpc.client import RPCClient
from sealagent.web.auth import create_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_DIR = os.environ.get("SEALAGENT_DASHBOARD_SCREENSHOTS")
"""Where to keep the screenshots too (docs/ uses the cluster page's)."""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium); .ci/run installs it")

BOTH_PROVING = """() => ['1', '2'].every(n => {
    const cell = document.querySelector('#sector-' + n + ' .state');
    return cell !== null && cell.textContent === 'Proving';
})"""


def post_abort(page: Any, task_id: str) -> Any:
    """POST the abort form by hand from the page (as a forged or stale form would)."""
    return page.evaluate("""async (taskId) => {
        const csrf = document.querySelector('input[name=csrf]').value;
        const body = new URLSearchParams({csrf: csrf, task_id: taskId, sched: '1'});
        const answer = await fetch('/dashboard/abort', {method: 'POST', body: body});
        return {status: answer.status, text: await answer.text()};
    }""", task_id)


def drive(url: str, tokens: dict[str, str], call: Callable[..., Any],
          start_agents: Callable[[], None], shots: Path) -> None:
    """The browser's side of the test (runs in a thread; ``call`` reaches the manager)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            # Nothing without a token: every page sends the browser to the login form.
            stranger = browser.new_page()
            for path in ("/", "/sectors", "/sectors/0", "/jobs", "/scheduler"):
                stranger.goto(url + path)
                assert stranger.url == url + "/login", stranger.url
                assert stranger.locator("#sector-states, table").count() == 0
            stranger.fill("#token", "not-a-token")
            stranger.click("button[type=submit]")
            assert "invalid token" in stranger.inner_text("[role=alert]")

            number = call("Sectors.Pledge")["number"]      # no agent yet: stays queued
            task_id = wait_for(lambda: call("Sectors.Status", number)["task"])["task_id"]

            # Read-only sees the queued task but may not abort it.
            reader = browser.new_context().new_page()
            log_in(reader, url, tokens["read"])
            reader.goto(url + "/scheduler")
            assert reader.locator(f"#queued-{task_id}").count() == 1
            assert reader.locator("button.danger").count() == 0
            refused = post_abort(reader, task_id)
            assert refused["status"] == 403 and "admin" in refused["text"], refused
            assert call("Sectors.Status", number)["task"]["state"] == "queued"

            # Admin aborts it from the scheduler page.
            admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            admin.on("dialog", lambda dialog: dialog.accept())
            log_in(admin, url, tokens["admin"])
            admin.goto(url + "/scheduler")
            admin.screenshot(path=str(shots / "dashboard-scheduler.png"))
            admin.click(f"#queued-{task_id} button.danger")
            assert f"Queued task {task_id[:8]} aborted" in admin.inner_text("[role=status]")
            assert admin.locator(f"#queued-{task_id}").count() == 0

            # Two sectors reach Proving on an open page that is never reloaded.
            admin.goto(url + "/sectors")
            admin.evaluate("window.notReloaded = true")
            start_agents()
            assert [call("Sectors.Pledge")["number"] for _ in range(2)] == [1, 2]
            admin.wait_for_function(BOTH_PROVING, timeout=150_000, polling=250)
            assert admin.evaluate("window.notReloaded") is True

            # A sector's page: its state, phase times, files and log.
            admin.click("#sector-1 a")
            admin.wait_for_url(url + "/sectors/1")
            assert "Proving" in admin.inner_text("h1")
            phases = admin.inner_text("table.tasks")
            for phase in ("AddPiece", "PreCommit1", "PreCommit2", "Commit1", "Finalize"):
                assert phase in phases
            assert "sealed" in admin.inner_text("table.files")
            assert admin.locator("ol.log li").count() >= 5
            admin.screenshot(path=str(shots / "dashboard-sector.png"), full_page=True)

            admin.goto(url + "/")
            admin.wait_for_selector("#sector-states [data-state=Proving]")
            admin.wait_for_timeout(2500)   # one refresh after the charts' data landed
            assert admin.locator("svg.chart rect > title").count() >= 5   # AP … FIN bars
            admin.screenshot(path=str(shots / "dashboard-cluster.png"), full_page=True)
            phone = browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=2).new_page()
            log_in(phone, url, tokens["read"])
            phone.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the phone layout scrolls sideways ({width}px)"

            # Logging out forgets the token.
            admin.click("header form button")
            admin.wait_for_url(url + "/login")
            admin.goto(url + "/")
            assert admin.url == url + "/login"
        finally:
            browser.close()


def wait_for(check: Callable[[], Any], limit: float = 20.0) -> Any:
    """Poll ``check`` until it returns something other than None."""
    deadline = time.monotonic() + limit
    while (value := check()) is None:
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return value


def log_in(page: Any, url: str, token: str) -> None:
    """Type the token into the login form."""
    page.goto(url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


async def test_dashboard_in_a_browser_against_a_devnet(tmp_path: Path) -> None:
    plan = Plan(tmp_path / "net", sectors=3, sector_size=2048, workers=2, plugins=(),
                snark=False, epoch=0.1, timeout=300)
    cluster = Cluster(plan)
    await trio.to_thread.run_sync(cluster.init_manager)
    shots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    try:
        await cluster.start_manager()
        info = cluster.repo.api_info()
        tokens = {"read": create_token(cluster.repo.secret(), ["read"]),
                  "admin": create_token(cluster.repo.secret(), ["read", "admin"])}
        async with RPCClient(info.url, info.token) as client:
            def call(method: str, *params: Any) -> Any:
                return trio.from_thread.run(client.call, method, list(params))

            def start_agents() -> None:
                trio.from_thread.run(cluster.start_agents)

            await trio.to_thread.run_sync(drive, info.url + "/dashboard", tokens, call,
                                          start_agents, shots)
    finally:
        with trio.CancelScope(shield=True):
            await cluster.stop()
    assert (shots / "dashboard-cluster.png").stat().st_size > 10_000
