"""The dashboard over real HTTP: a manager on loopback, httpx as the browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sealagent.manager import tasks
from sealagent.manager.db import Transaction
from sealagent.phases import Phase
from sealagent.web.auth import create_token, token_id
from tests.integration.test_manager_pipeline import Cluster, cluster, fast_config


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, fast_config()) as running:
        yield running


def browser(net: Cluster) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=net.manager.url + "/dashboard")


def token(net: Cluster, *perms: str, expires_in: float | None = None) -> str:
    return create_token(net.repo.secret(), perms, expires_in=expires_in)


async def log_in(client: httpx.AsyncClient, net: Cluster, tok: str) -> str:
    """Log in; return the CSRF token of the cluster page."""
    answer = await client.post("/login", data={"token": tok},
                               headers={"origin": net.manager.url})
    assert answer.status_code == 303, answer.text
    page = await client.get("/")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match is not None
    return match[1]


async def queued(net: Cluster) -> bool:
    diag = await net.client.call("Sealing.SchedDiag")
    return bool(diag["SchedInfo"]["Requests"])


async def test_nothing_is_visible_without_a_token(net: Cluster) -> None:
    await net.client.call("Sectors.Pledge")
    async with browser(net) as client:
        for path in ("/", "/sectors", "/sectors/0", "/jobs", "/storage", "/scheduler"):
            answer = await client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
            live = await client.get(path, headers={"x-dashboard-fragment": "1"})
            assert live.status_code == 401 and "Packing" not in live.text
        client.cookies.set("sealagent_dashboard", "not-a-token")
        assert (await client.get("/")).status_code == 303
        client.cookies.clear()
        bare = await client.get(net.manager.url + "/dashboard")
        assert bare.status_code in (303, 307), bare.status_code
        login = await client.get("/login")
        assert login.status_code == 200 and 'name="token"' in login.text
        assert "default-src 'self'" in login.headers["content-security-policy"]


async def test_login_sets_a_strict_http_only_cookie_and_refuses_bad_tokens(net: Cluster) -> None:
    async with browser(net) as client:
        bad = await client.post("/login", data={"token": "nonsense"},
                                headers={"origin": net.manager.url})
        assert bad.status_code == 401 and "invalid token" in bad.text
        no_read = await client.post("/login", data={"token": token(net, "sign")},
                                    headers={"origin": net.manager.url})
        assert no_read.status_code == 401 and "read permission" in no_read.text
        cross = await client.post("/login", data={"token": token(net, "read")},
                                  headers={"origin": "http://evil.example"})
        assert cross.status_code == 401 and "cross-site" in cross.text
        good = await client.post("/login", data={"token": token(net, "read")},
                                 headers={"origin": net.manager.url})
        assert good.status_code == 303
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/dashboard/" in cookie
        assert (await client.get("/")).status_code == 200


async def test_read_sees_admin_aborts_a_queued_task_with_csrf_and_origin(net: Cluster) -> None:
    number = (await net.client.call("Sectors.Pledge"))["number"]
    with trio.fail_after(10):
        while not await queued(net):  # noqa: ASYNC110 - polls the manager
            await trio.sleep(0.05)
        diag = await net.client.call("Sealing.SchedDiag")
    task_id = diag["SchedInfo"]["Requests"][0]["SchedId"]
    form = {"task_id": task_id, "sched": "1"}
    origin = {"origin": net.manager.url}
    async with browser(net) as reader, browser(net) as admin:
        read_csrf = await log_in(reader, net, token(net, "read"))
        page = await reader.get("/scheduler")
        assert task_id in page.text and "Abort" not in page.text.split("<main")[1]
        refused = await reader.post("/abort", data={**form, "csrf": read_csrf}, headers=origin)
        assert refused.status_code == 403 and "admin" in refused.text
        admin_csrf = await log_in(admin, net, token(net, "read", "admin"))
        assert admin_csrf != read_csrf
        for data, headers in (({**form, "csrf": read_csrf}, origin),        # another's CSRF
                              ({**form, "csrf": admin_csrf}, {}),           # no Origin
                              ({**form, "csrf": admin_csrf}, {"origin": "http://evil"})):
            answer = await admin.post("/abort", data=data, headers=headers)
            assert answer.status_code == 403
        assert task_id in (await admin.get("/scheduler")).text
        done = await admin.post("/abort", data={**form, "csrf": admin_csrf}, headers=origin)
        assert done.status_code == 303 and done.headers["location"].endswith(task_id)
        after = await admin.get(done.headers["location"].removeprefix("/dashboard"))
        assert f"Queued task {task_id[:8]} aborted" in after.text
        again = await admin.post("/abort", data={**form, "csrf": admin_csrf}, headers=origin)
        assert again.status_code == 409
        sector = await admin.get(f"/sectors/{number}")
        assert "task aborted" in sector.text


async def test_an_expired_token_stops_working(net: Cluster) -> None:
    async with browser(net) as client:
        await log_in(client, net, token(net, "read", expires_in=1))
        with trio.fail_after(5):
            while (await client.get("/")).status_code == 200:  # noqa: ASYNC110 - the clock
                await trio.sleep(0.2)
        assert (await client.get("/", headers={"x-dashboard-fragment": "1"})).status_code == 401


async def test_a_revoked_token_stops_working_at_once(net: Cluster) -> None:
    revoked, kept = token(net, "read", "admin"), token(net, "read", "admin")
    async with browser(net) as client, browser(net) as other:
        csrf = await log_in(client, net, revoked)
        await log_in(other, net, kept)
        assert await net.client.call("Auth.Revoke", [token_id(revoked)]) is True
        page = await client.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        act = await client.post("/abort", data={"task_id": "t-1", "sched": "1", "csrf": csrf},
                                headers={"origin": net.manager.url})
        assert act.status_code == 401 and "revoked" in act.text
        assert (await other.get("/")).status_code == 200


async def test_pages_render_and_fragments_hold_only_the_live_part(net: Cluster) -> None:
    await net.client.call("Sectors.Pledge")
    async with browser(net) as client:
        await log_in(client, net, token(net, "read"))
        for path in ("/", "/sectors", "/sectors?state=Packing", "/sectors/0", "/jobs",
                     "/storage", "/scheduler"):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert "<html" in page.text
            live = await client.get(path, headers={"x-dashboard-fragment": "1"})
            assert live.status_code == 200 and "<html" not in live.text
            assert "updated" in live.text
            assert int(live.headers["x-dashboard-refresh"]) >= 2000
        assert (await client.get("/sectors/99")).status_code == 404
        assert (await client.get("/sectors?state=Bogus")).status_code == 400
        assert (await client.get("/static/dashboard.js")).status_code == 200


async def test_charts_show_tasks_finished_before_the_manager_started(net: Cluster) -> None:
    service = net.manager.service
    now = service.clock()

    def finished_earlier(tx: Transaction) -> None:
        for number, took in ((7, 40.0), (8, 20.0)):
            task = tasks.insert_task(tx, number, Phase.PRECOMMIT1, 0, 0, {}, now - 900)
            tx.execute("UPDATE tasks SET state = 'done', started_at = ?, finished_at = ? "
                       "WHERE task_id = ?", (now - 600 - took, now - 600, task.task_id))

    await service.db.transaction(finished_earlier)
    async with browser(net) as client:
        await log_in(client, net, token(net, "read"))
        page = (await client.get("/")).text
        assert re.search(r"<title>\d\d:\d\d PC1: 2</title>", page), page
        again = (await client.get("/")).text      # read once: not counted twice
        assert re.search(r"<title>\d\d:\d\d PC1: 2</title>", again)


async def test_admin_aborts_a_job_running_on_an_agent(net: Cluster, tmp_path: Path) -> None:
    release = trio.Event()

    async def hold(assignment: dict[str, Any], report: dict[str, Any]) -> None:
        await release.wait()

    agent = await net.agent("holder", tmp_path, before_report=hold)
    await net.client.call("Sectors.Pledge")
    with trio.fail_after(20):
        while not await net.client.call("Sealing.Jobs"):  # noqa: ASYNC110 - polls the manager
            await trio.sleep(0.05)
    job = (await net.client.call("Sealing.Jobs"))[0]
    async with browser(net) as client:
        csrf = await log_in(client, net, token(net, "read", "admin"))
        page = await client.get("/jobs")
        assert job["task_id"][:8] in page.text and "holder" in page.text
        done = await client.post("/abort", data={"task_id": job["task_id"], "sched": "0",
                                                 "csrf": csrf},
                                 headers={"origin": net.manager.url})
        assert done.status_code == 303 and "/dashboard/jobs?aborted=" in done.headers["location"]
        after = await client.get(done.headers["location"].removeprefix("/dashboard"))
        assert f"Task {job['task_id'][:8]} aborted" in after.text
    with trio.fail_after(10):
        while job["task_id"] not in agent.aborted:  # noqa: ASYNC110 - the agent's heartbeat
            await trio.sleep(0.05)
    release.set()
