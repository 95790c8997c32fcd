"""A real manager and two real agents seal a sector with a fetch between them; then every
metric the contrib dashboard and alert rules use is scraped from their ``/debug/metrics``,
and the sector's log tells the assignments and the fetch."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from sealagent.manager.server import serve_manager
from sealagent.worker.agent import Agent, run_agent
from tests.integration.agent_harness import (
    AP_PC1,
    PC2_COMMIT,
    ManagerProbe,
    agent_config,
    manager_repo,
)
from tests.unit.test_contrib import alert_queries, dashboard_queries

SAMPLE_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def scraped(text: str) -> tuple[set[str], dict[str, list[dict[str, str]]]]:
    """Family names exposed, and the label sets of every sample by sample name."""
    families: set[str] = set()
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return families, samples


def base_name(name: str) -> str:
    """A series name without its histogram or counter suffix."""
    for suffix in SAMPLE_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


async def test_metrics_of_manager_and_agents_and_the_sector_story(tmp_path: Path) -> None:
    repo = manager_repo(tmp_path / "miner")
    async with trio.open_nursery() as nursery:
        running = await nursery.start(functools.partial(serve_manager, repo))
        probe = await nursery.start(ManagerProbe.serve, running, repo)
        api = repo.api_info()
        pc1: Agent = await nursery.start(functools.partial(
            run_agent, agent_config(api, tmp_path / "pc1", "pc1-box", AP_PC1)))
        pc2: Agent = await nursery.start(functools.partial(
            run_agent, agent_config(api, tmp_path / "pc2", "pc2-box", PC2_COMMIT)))
        await probe.pledge()
        await probe.wait(lambda: probe.all_proving(1), 90, "the sector in Proving")
        async with httpx.AsyncClient() as client:
            texts = [(await client.get(url + "/debug/metrics")).text
                     for url in (running.url, pc1.url, pc2.url)]
        status = await probe.client.call("Sectors.Status", [0, True])
        workers = await probe.workers()
        for agent in (pc1, pc2):
            agent.stop()
            await agent.finished.wait()
        running.stop()
        nursery.cancel_scope.cancel()

    manager_families, manager = scraped(texts[0])
    agent_families: set[str] = set()
    agents: dict[str, list[dict[str, str]]] = {}
    for text in texts[1:]:
        families, samples = scraped(text)
        agent_families |= families
        for name, labels in samples.items():
            agents.setdefault(name, []).extend(labels)

    used = {name for query in [*dashboard_queries(), *alert_queries()]
            for name in re.findall(r"\bsealagent_[a-z_]+", query)}
    exposed = {base_name(n) for n in manager_families | agent_families}
    missing = {n for n in used if base_name(n) not in exposed}
    assert not missing, f"used but not served: {sorted(missing)}"

    hosts = {labels["host"]: labels for labels in manager["sealagent_worker_up"]}
    assert set(hosts) == {"pc1-box", "pc2-box"}
    assert {labels["state"] for labels in manager["sealagent_sectors"]} == {"Proving"}
    assert {labels["state"] for labels in manager["sealagent_sector_oldest_age_seconds"]} == {
        "Proving"}
    fetched = {labels["file_type"] for labels in manager["sealagent_fetch_bytes_total"]}
    assert {"sealed", "cache"} <= fetched
    assert {labels["file_type"] for labels in agents["sealagent_agent_fetch_bytes_total"]} \
        >= {"sealed", "cache"}
    assert {labels["path_id"] for labels in agents["sealagent_agent_storage_capacity_bytes"]}
    assert "sealagent_agent_enabled" in agents

    # both agents run on this machine with the same CPUs: each is told of the other
    assert {w["name"]: w["shares_cores_with"] for w in workers} == {
        "pc1-box": ["pc2-box"], "pc2-box": ["pc1-box"]}

    story = [entry["message"] for entry in status["log"]]
    assigned = [m for m in story if " assigned to " in m]
    assert any("PreCommit1 task" in m and "pc1-box" in m for m in assigned), story
    assert any("PreCommit2 task" in m and "pc2-box" in m for m in assigned), story
    fetches = [m for m in story if " fetched for " in m]
    assert any(m.startswith("sealed fetched for PreCommit2 task") and "by pc2-box from http"
               in m and "/remote/sealed/" in m for m in fetches), story
    assert all(re.search(r": \d[\d.]* (B|KiB|MiB) in \d+\.\d\ds", m) for m in fetches), fetches
