"""contrib/ and examples/ match the code: completion, config, units, dashboard, recipes."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import trio

from sealagent.cli import build_parser
from sealagent.cli import miner as cli_miner
from sealagent.cli import run as cli_run
from sealagent.errors import ConfigError
from sealagent.manager.config import APIConfig, ManagerConfig, StorageConfig, load_config
from sealagent.manager.metrics import ManagerMetrics, Snapshot
from sealagent.manager.repo import MinerRepo
from sealagent.manager.server import serve_manager
from sealagent.sched.resources import default_env, resource_env_lines
from sealagent.web.auth import api_info_from_env
from sealagent.worker.metrics import AgentMetrics, AgentSnapshot

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
EXAMPLES = ROOT / "examples"
SYSTEMD = CONTRIB / "systemd"
WORKER_ENV = SYSTEMD / "sealagent-worker.env"
DASHBOARD = CONTRIB / "grafana" / "sealagent-dashboard.json"
PROMETHEUS = CONTRIB / "prometheus" / "prometheus.yml"
ALERTS = CONTRIB / "prometheus" / "alerts.yml"
DOCS = (ROOT / "README.md", CONTRIB / "README.md", CONTRIB / "colocation" / "README.md",
        EXAMPLES / "README.md")

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
COMMAND_ENDS = ("|", "||", "&&", ";", "&", ">", ">>")
ENV_LINE = re.compile(r"^#?(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# Variables of the env file that the agent or the phases read, besides resource overrides
# and SEALAGENT_WORKER_* (checked against the parser) and RUN_FLAGS (the unit's own).
PASSED_THROUGH = {"MINER_API_INFO", "TMPDIR", "FIL_PROOFS_PARENT_CACHE",
                  "FIL_PROOFS_USE_MULTICORE_SDR", "FIL_PROOFS_MULTICORE_SDR_PRODUCERS",
                  "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"}


def load_script(path: Path) -> ModuleType:
    """Import a script of contrib/ or examples/ by path."""
    name = f"_script_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse with the real CLI parser; a usage error fails the test with the command."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`sealagent {shlex.join(argv)}` does not parse (exit {exc.code})")


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file, commented-out examples included."""
    out = {}
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            out[match["key"]] = match["value"].strip().strip('"')
    return out


# --- shell completion ----------------------------------------------------------------------


def test_completion_is_current() -> None:
    generate = load_script(CONTRIB / "completion" / "generate.py")
    expected = generate.completion_script(build_parser())
    assert (CONTRIB / "completion" / "sealagent.bash").read_text() == expected, (
        "regenerate: python contrib/completion/generate.py > contrib/completion/sealagent.bash")


def test_completion_spec_follows_the_parser() -> None:
    generate = load_script(CONTRIB / "completion" / "generate.py")
    specs = dict(generate.command_specs(build_parser()))
    assert specs[("sealing",)].subcommands == ["workers", "jobs", "sched-diag", "abort"]
    assert specs[("miner", "run")].value_options["--log-level"] == "debug info warning error"
    assert specs[("run",)].value_options["--worker-repo"] == "@dir"
    assert "--no-precommit1" in specs[("run",)].options
    assert "--no-precommit1" not in specs[("run",)].value_options
    assert specs[("sectors", "add-piece")].positional == "@file"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("words", "expected"), [
    (["sealagent", "sea"], "sealing"),
    (["sealagent", "sealing", ""], "workers jobs sched-diag abort"),
    (["sealagent", "miner", "run", "--log-level", ""], "debug info warning error"),
    (["sealagent", "miner", "run", "--repo", "/x", "--log"], "--log-level"),
    (["sealagent", "auth", "api-info", "--perm", "a"], "admin"),
    (["sealagent", "run", "--no-default", "--precommit"], "--precommit1 --precommit2"),
    (["sealagent", "sectors", "status", ""], ""),
])
def test_completion_in_bash(words: list[str], expected: str) -> None:
    script = (f"source {shlex.quote(str(CONTRIB / 'completion' / 'sealagent.bash'))}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
              '_sealagent; echo "${COMPREPLY[*]}"\n')
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                         text=True, check=True, timeout=10)
    assert out.stdout.strip() == expected


# --- example config -------------------------------------------------------------------------


def test_example_config_is_current_and_loads() -> None:
    path = EXAMPLES / "config" / "miner-config.toml"
    generate = load_script(EXAMPLES / "config" / "generate.py")
    assert path.read_text() == generate.example_config(), (
        "regenerate: python examples/config/generate.py > examples/config/miner-config.toml")
    assert load_config(path) == ManagerConfig()


def test_example_config_refuses_a_key_without_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    generate = load_script(EXAMPLES / "config" / "generate.py")
    complete = dict(generate.COMMENTS)
    monkeypatch.setattr(generate, "COMMENTS",
                        {k: v for k, v in complete.items() if k != ("Storage", "Assigner")})
    with pytest.raises(ConfigError, match="Assigner"):
        generate.example_config()
    monkeypatch.setattr(generate, "COMMENTS", {**complete, ("Storage", "Nope"): "x"})
    with pytest.raises(ConfigError, match="Nope"):
        generate.example_config()


# --- systemd -------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Key=value`` settings of a unit file, every value of repeated keys."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def exec_argv(unit: Path, env: dict[str, str]) -> list[str]:
    """ExecStart with ``%i``/``%H`` and ``$VAR`` (split at whitespace) expanded, as systemd does."""
    [command] = unit_settings(unit)["ExecStart"]
    command = command.replace("%i", "pc1").replace("%H", "host")
    argv: list[str] = []
    for word in shlex.split(command):
        if re.fullmatch(r"\$[A-Z_]+", word):
            argv.extend(env.get(word[1:], "").split())
        else:
            argv.append(word)
    return argv


@pytest.mark.parametrize(("unit", "run_flags", "handler"), [
    ("sealagent-miner.service", "", cli_miner.run_manager),
    ("sealagent-worker@.service", "", cli_run.handle),
    ("sealagent-worker@.service", "--no-default --precommit1", cli_run.handle),
    ("sealagent-worker@.service", "--no-default --precommit2 --commit", cli_run.handle),
])
def test_unit_exec_start_parses(unit: str, run_flags: str, handler: object) -> None:
    env = {**env_file(WORKER_ENV), "RUN_FLAGS": run_flags}
    argv = exec_argv(SYSTEMD / unit, env)
    assert Path(argv[0]).name == "sealagent"
    args = parse(argv[1:])
    assert args.handler is handler
    if unit.startswith("sealagent-worker"):
        assert args.worker_repo.endswith("worker-pc1")
        direct = parse(["run", *run_flags.split()])
        assert cli_run.chosen_tasks(args) == cli_run.chosen_tasks(direct)


@pytest.mark.parametrize("unit", ["sealagent-miner.service", "sealagent-worker@.service"])
def test_unit_stops_gracefully(unit: str) -> None:
    settings = unit_settings(SYSTEMD / unit)
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["KillMode"] == ["mixed"]
    assert settings["Restart"] == ["on-failure"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    args = parse(exec_argv(SYSTEMD / unit, env_file(WORKER_ENV))[1:])
    grace = getattr(args, "stop_grace", 0.0)
    heartbeat = getattr(args, "heartbeat", 0.0)
    # Hand-back waits up to two heartbeats, then running phases get --stop-grace.
    assert int(settings["TimeoutStopSec"][0]) > grace + 2 * heartbeat + 10


def test_worker_env_file_names_real_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_file(WORKER_ENV)
    api = api_info_from_env("MINER_API_INFO", env)
    assert (api.host, api.port) == ("10.0.0.1", 2345)
    resource_env_lines(env)  # validates every override value
    overrides = set(default_env())
    assert "PC1_32G_MAX_CONCURRENT" in env and "CUDA_VISIBLE_DEVICES" in env
    defaults = vars(parse(["run"]))
    for key, value in env.items():
        if key.startswith(cli_run.ENV_PREFIX):
            monkeypatch.setenv(key, value)
            changed = {k for k, v in vars(parse(["run"])).items() if defaults[k] != v}
            monkeypatch.delenv(key)
            assert changed, f"{key} changes no option of `sealagent run`"
        else:
            assert key in overrides | PASSED_THROUGH | {"RUN_FLAGS"}, key


# --- Prometheus and Grafana ----------------------------------------------------------------


def metric_names() -> set[str]:
    """Every series name the manager's and the agents' metrics modules expose."""
    manager = ManagerMetrics(lambda: Snapshot(queue={}, open_windows=0, sectors={}))
    agent = AgentMetrics(lambda: AgentSnapshot(enabled=True, tasks={}, paths={}))
    names: set[str] = set()
    for registry in (manager.registry, agent.registry):
        for family in registry.collect():
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
            elif family.type == "counter":
                names.add(family.name + "_total")
            else:
                names.add(family.name)
    return names


def alert_queries() -> Iterator[str]:
    """Every PromQL expression of the example alert rules (one line each)."""
    yield from re.findall(r"^\s*expr:\s*(.+)$", ALERTS.read_text(), re.MULTILINE)


def dashboard_queries() -> Iterator[str]:
    """Every PromQL text of the dashboard: panel targets and template queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        yield from (target["expr"] for target in panel["targets"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def test_dashboard_uses_only_real_metrics() -> None:
    known = metric_names()
    used = {name for query in dashboard_queries()
            for name in re.findall(r"\bsealagent_[a-z_]+", query)}
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    charted = {n.removesuffix(s) for n in used for s in ("", *HISTOGRAM_SUFFIXES)}
    families = {n.removesuffix("_bucket") for n in known
                if not n.endswith(("_sum", "_count"))}
    assert families <= charted, f"metrics without a panel: {sorted(families - charted)}"


def test_alert_rules_use_real_metrics_and_say_what_fired() -> None:
    text = ALERTS.read_text()
    names = re.findall(r"^\s*- alert:\s*(\w+)$", text, re.MULTILINE)
    queries = list(alert_queries())
    assert len(names) == len(set(names)) == len(queries) >= 10
    assert len(re.findall(r"^\s*severity:\s*(critical|warning|info)$", text, re.MULTILINE)) \
        == len(names)
    assert len(re.findall(r"^\s*summary:\s*\".+\"$", text, re.MULTILINE)) == len(names)
    known = metric_names()
    used = {n for q in queries for n in re.findall(r"\bsealagent_[a-z_]+", q)}
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    for query in queries:
        assert query.count("(") == query.count(")"), query
    assert "alerts.yml" in PROMETHEUS.read_text()


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"


async def test_prometheus_scrape_path_serves_the_metrics(tmp_path: Path) -> None:
    text = PROMETHEUS.read_text()
    path_match = re.search(r"^\s*metrics_path:\s*(\S+)", text, re.MULTILINE)
    assert path_match is not None
    repo = MinerRepo(tmp_path / "repo")
    repo.init(ManagerConfig(api=APIConfig(listen_address="/ip4/127.0.0.1/tcp/0/http"),
                            storage=StorageConfig(local_worker=False)), local_storage=False)
    async with trio.open_nursery() as nursery:
        manager = await nursery.start(functools.partial(serve_manager, repo))
        async with httpx.AsyncClient() as client:
            response = await client.get(manager.url + path_match[1])
        manager.stop()
    assert response.status_code == 200
    exposed = set(re.findall(r"^# TYPE (\S+) ", response.text, re.MULTILINE))
    assert {n for n in metric_names() if not n.endswith(HISTOGRAM_SUFFIXES)
            and not n.startswith("sealagent_agent_")} <= exposed


# --- recipes ---------------------------------------------------------------------------


def documented_commands(path: Path) -> Iterator[list[str]]:
    """``sealagent ...`` command lines of a Markdown file's shell code blocks."""
    block = False
    pending = ""
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            block = line.strip() in ("```sh", "```bash", "```shell", "```console")
            continue
        if not block:
            continue
        text = pending + line.strip().removeprefix("$ ")
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        words = shlex.split(text.replace("$(", " ").replace(")", " "), comments=True)
        for start in (i for i, w in enumerate(words)
                      if w == "sealagent" or w.endswith("/bin/sealagent")):
            argv = words[start + 1:]
            ends = [i for i, w in enumerate(argv) if w in COMMAND_ENDS]
            yield argv[:ends[0]] if ends else argv


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_parse(doc: Path) -> None:
    commands = list(documented_commands(doc))
    if doc.name == "README.md" and doc.parent.name == "colocation":
        assert len(commands) >= 5
    for argv in commands:
        assert parse(argv).handler is not None
    for flags in re.findall(r"^RUN_FLAGS=(.*)$", doc.read_text(), re.MULTILINE):
        assert parse(["run", *flags.split()]).handler is cli_run.handle
