"""``sealagent devnet``: a whole sealing cluster on this machine, start to finish.

It creates throw-away repos, starts a manager (``sealagent miner run``) and ``--workers``
agents (``sealagent run``) as real child processes on loopback, pledges ``--sectors``
committed-capacity sectors, shows their progress (a live table on a terminal, one line
per change otherwise), stops everything and prints every sector's final state with the
time each phase took (with ``--json FILE``, also as JSON: docs/json.md).  It exits with
status 1 if a sector did not reach Proving.

The devnet runs with ``[Proving] Snark = false`` (Commit1's vanilla proofs are verified
instead of a SNARK) unless ``--snark`` is given, which needs a backend with Commit2
(``--plugin``).  Epochs last ``--epoch-duration``, so the wait for the seed takes about
16 of them.  The manager has a long-term storage path (``<dir>/store``), where its built-in
agent (named ``manager``) moves every finalized sector.  Repos and logs go to ``--dir``
(default: a temporary directory, removed at the end unless ``--keep`` or a failure).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import plain_text
from sealagent.envvars import check_tmpdir
from sealagent.errors import ConfigError, PluginError, SealAgentError
from sealagent.manager import tasks
from sealagent.manager.config import (
    APIConfig,
    ManagerConfig,
    MinerConfig,
    ProvingConfig,
    SealingConfig,
    StorageConfig,
    parse_duration,
)
from sealagent.manager.dashboard import dashboard_url
from sealagent.manager.db import Database
from sealagent.manager.fsm import SectorState
from sealagent.manager.repo import MinerRepo
from sealagent.phase_chain import SEALING_ORDER
from sealagent.phases import Phase
from sealagent.plugins import select_backends
from sealagent.rpc.client import RPCClient
from sealagent.storage.paths import init_path
from sealagent.task_kinds import StorageJob, TaskKind
from sealagent.vocab.registry import default_proof, parse_sector_size, size_name

START_TIMEOUT: Final = 60.0
"""Seconds the manager and the agents may take to come up."""
STOP_TIMEOUT: Final = 30.0
POLL: Final = 0.25
MANAGER_AGENT: Final = "manager"
"""The name of the manager's built-in agent, which moves sectors to the store path."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``devnet``."""
    parser = subparsers.add_parser(
        "devnet", help=COMMANDS["devnet"],
        description=plain_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sectors", type=int, default=2, metavar="N",
                        help="sectors to pledge (default %(default)s)")
    parser.add_argument("--sector-size", default="2KiB",
                        help="2KiB, 8MiB, 512MiB, 32GiB or 64GiB (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, metavar="K",
                        help="agents to start (default %(default)s)")
    parser.add_argument("--plugin", action="append", default=[], metavar="NAME",
                        help="backend the agents prefer, repeatable (cpu is the fallback)")
    parser.add_argument("--snark", action="store_true",
                        help="run Commit2 (needs a backend that has it)")
    parser.add_argument("--epoch-duration", default="100ms", metavar="D",
                        help="length of a devnet epoch (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="give up after this many seconds (default %(default)s)")
    parser.add_argument("--dir", metavar="DIR", help="where repos and logs go "
                        "(default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the repos and logs")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write the result as JSON to FILE (docs/json.md)")
    parser.set_defaults(handler=handle)


@dataclass(frozen=True)
class Plan:
    """What to run."""

    root: Path
    sectors: int
    sector_size: int
    workers: int
    plugins: tuple[str, ...]
    snark: bool
    epoch: float
    timeout: float


@dataclass
class Outcome:
    """How the sectors ended, with each phase's duration and where it ran."""

    states: dict[int, str] = field(default_factory=dict)
    phase_times: dict[int, dict[TaskKind, float]] = field(default_factory=dict)
    hosts: dict[int, list[str]] = field(default_factory=dict)
    total: dict[int, float] = field(default_factory=dict)
    files: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    timed_out: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """True when every sector is in Proving."""
        return (bool(self.states) and not self.interrupted
                and all(s == SectorState.PROVING for s in self.states.values()))


# ------------------------------------------------------------------------ progress views


class PlainView:
    """One line per change: for logs and pipes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()
        self._last: dict[int, str] = {}

    def say(self, text: str) -> None:
        """Print a line of commentary."""
        print(text, file=self.out, flush=True)

    def update(self, sectors: Sequence[dict[str, Any]], names: dict[str, str]) -> None:
        """Print the sectors whose state or task changed."""
        for sector in sectors:
            line = _describe(sector, names)
            if self._last.get(sector["number"]) != line:
                self._last[sector["number"]] = line
                elapsed = time.monotonic() - self.start
                self.say(f"[{elapsed:6.1f}s] sector {sector['number']}: {line}")

    def close(self) -> None:
        """Nothing to tear down."""


class LiveView(PlainView):
    """A table redrawn in place on a terminal (rich)."""

    def __init__(self, console: Console) -> None:
        super().__init__(sys.stdout)
        self.console = console
        self.live = Live(Table(), console=console, auto_refresh=False, transient=True)
        self.live.start()

    def say(self, text: str) -> None:
        """Print above the live table."""
        self.console.print(text, highlight=False)

    def update(self, sectors: Sequence[dict[str, Any]], names: dict[str, str]) -> None:
        """Redraw the table."""
        table = Table(title=f"devnet {time.monotonic() - self.start:.0f}s", expand=False)
        for column in ("Sector", "State", "Task", "Worker", "Waiting"):
            table.add_column(column)
        for sector in sectors:
            task = sector.get("task") or {}
            table.add_row(str(sector["number"]), sector["state"],
                          f"{task.get('short', '')} {task.get('state', '')}".strip(),
                          names.get(task.get("worker_id") or "", ""),
                          sector.get("waiting") or "")
        self.live.update(table, refresh=True)

    def close(self) -> None:
        """Stop redrawing."""
        self.live.stop()


def _describe(sector: dict[str, Any], names: dict[str, str]) -> str:
    task = sector.get("task")
    if not task:
        return str(sector["state"])
    where = names.get(task.get("worker_id") or "", "")
    return (f"{sector['state']} ({task['short']} {task['state']}"
            f"{' on ' + where if where else ''})")


# ------------------------------------------------------------------------- processes


class Cluster:
    """The child processes of the devnet and their logs."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.logs = plan.root / "logs"
        self.repo = MinerRepo(plan.root / "miner")
        self.store = plan.root / "store"
        self.expected_agents = {MANAGER_AGENT} | {
            f"worker-{index}" for index in range(1, plan.workers + 1)}
        self.manager: trio.Process | None = None
        self.agents: list[trio.Process] = []

    def init_manager(self) -> None:
        """Create the manager's repo: devnet epochs, Snark per the plan, a long-term
        storage path (``store``: CanStore, not CanSeal) where every sector ends, and a
        built-in agent that only takes what every agent takes (the agents seal)."""
        plan = self.plan
        config = ManagerConfig(
            api=APIConfig(listen_address="/ip4/127.0.0.1/tcp/0/http"),
            miner=MinerConfig(sector_size=plan.sector_size),
            storage=StorageConfig(allow_add_piece=False, allow_precommit1=False,
                                  allow_precommit2=False, allow_commit=False,
                                  allow_unseal=False, local_worker_name=MANAGER_AGENT),
            proving=ProvingConfig(snark=plan.snark),
            sealing=SealingConfig(epoch_duration=plan.epoch, min_retry_time=5.0))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.repo.init(config, local_storage=False)
        init_path(self.store, can_seal=False, can_store=True)
        self.repo.storage.attach(self.store)

    async def _spawn(self, argv: list[str], log_name: str,
                     env: dict[str, str] | None = None) -> trio.Process:
        with (self.logs / log_name).open("ab") as log:
            return await trio.lowlevel.open_process(
                [sys.executable, "-m", "sealagent", *argv], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    async def start_manager(self) -> None:
        """Start ``miner run`` and wait until it listens."""
        self.manager = await self._spawn(["miner", "run", "--repo", str(self.repo.root)],
                                         "manager.log")
        with trio.move_on_after(START_TIMEOUT):
            while not self.repo.api_file.exists():
                self._check_alive(self.manager, "manager.log")
                await trio.sleep(0.05)
            return
        raise SealAgentError(f"the manager did not start within {START_TIMEOUT:g} s "
                             f"(see {self.logs / 'manager.log'})")

    async def start_agents(self) -> None:
        """Start the agents (``run``), each with its own repo and log."""
        env = {"MINER_API_INFO": str(self.repo.api_info())}
        plugins = [arg for name in self.plan.plugins for arg in ("--plugin", name)]
        for index in range(1, self.plan.workers + 1):
            name = f"worker-{index}"
            self.agents.append(await self._spawn(
                ["run", "--worker-repo", str(self.plan.root / name), "--name", name,
                 "--listen", "127.0.0.1:0", "--heartbeat", "1", *plugins],
                f"{name}.log", env))

    def check(self) -> None:
        """Raise if a child process died."""
        if self.manager is not None:
            self._check_alive(self.manager, "manager.log")
        for index, agent in enumerate(self.agents, 1):
            self._check_alive(agent, f"worker-{index}.log")

    def _check_alive(self, process: trio.Process, log_name: str) -> None:
        if process.returncode is None:
            return
        tail = _tail(self.logs / log_name)
        raise SealAgentError(f"{log_name.removesuffix('.log')} exited with status "
                             f"{process.returncode}:\n{tail}")

    async def stop(self) -> None:
        """SIGTERM the agents, then the manager; SIGKILL whatever does not exit."""
        for group in (self.agents, [self.manager] if self.manager else []):
            for process in group:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in group:
                with trio.move_on_after(STOP_TIMEOUT) as scope:
                    await process.wait()
                if scope.cancelled_caught:
                    process.kill()
                    await process.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------- running


async def _wait_for_workers(client: RPCClient, cluster: Cluster) -> dict[str, str]:
    with trio.move_on_after(START_TIMEOUT):
        while True:
            cluster.check()
            workers = await client.call("Sealing.Workers")
            names = {w["worker_id"]: w["name"] for w in workers}
            if set(names.values()) >= cluster.expected_agents:
                return names
            await trio.sleep(POLL)
    raise SealAgentError(f"the agents did not all register within {START_TIMEOUT:g} s "
                         f"(see {cluster.logs})")


async def _follow(client: RPCClient, cluster: Cluster, view: PlainView,
                  names: dict[str, str], outcome: Outcome) -> None:
    """Show progress until every sector is final or the timeout passes."""
    with trio.move_on_after(cluster.plan.timeout) as scope:
        while True:
            cluster.check()
            sectors = await client.call("Sectors.List")
            view.update(sectors, names)
            outcome.states = {s["number"]: s["state"] for s in sectors}
            if all(SectorState(s["state"]).is_terminal for s in sectors):
                return
            await trio.sleep(POLL)
    outcome.timed_out = scope.cancelled_caught


async def _phase_times(repo: MinerRepo, sectors: Sequence[int], names: dict[str, str],
                       outcome: Outcome) -> None:
    """Each sector's phase durations and hosts, from the stopped manager's database."""
    db = await Database.open(repo.db_file)
    try:
        for number in sectors:
            history = await db.transaction(
                functools.partial(tasks.sector_tasks, sector=number))
            done = [t for t in history if str(t.state) == "done"
                    and t.started_at is not None and t.finished_at is not None]
            outcome.phase_times[number] = {t.phase: (t.finished_at or 0) - (t.started_at or 0)
                                           for t in done}
            outcome.hosts[number] = sorted({names.get(t.worker_id or "", "?") for t in done})
            if history and done:
                outcome.total[number] = (max(t.finished_at or 0 for t in done)
                                         - min(t.created_at for t in history))
    finally:
        await db.aclose()


def warm_backends(names: Sequence[str], say: Callable[[str], None]) -> None:
    """Compile or load the chosen backends' kernels once, before any agent starts.

    An agent warms its backends before it registers; warming them here first means no
    agent spends the devnet's start-up compiling, and the operator sees the progress.

    :raises PluginError: a backend failed to warm (the message names it).
    """
    selection = select_backends(names)
    for name in selection.runnable:

        def progress(line: str, name: str = name) -> None:
            say(f"warming {name}: {line}")

        if selection.plugins.warm(name, progress):
            say(f"{name} is warm")


async def run_devnet(plan: Plan, view: PlainView, outcome: Outcome) -> None:
    """Run the devnet (see the module docstring); ``outcome`` records how it ended."""
    cluster = Cluster(plan)
    names: dict[str, str] = {}
    await trio.to_thread.run_sync(cluster.init_manager)
    try:
        await trio.to_thread.run_sync(warm_backends, plan.plugins, view.say)
        await cluster.start_manager()
        await cluster.start_agents()
        info = cluster.repo.api_info()
        view.say(f"dashboard at {dashboard_url(info.url)}: log in with this admin token: "
                 f"{info.token}")
        async with RPCClient(info.url, info.token) as client:
            names = await _wait_for_workers(client, cluster)
            agents = sorted(n for n in names.values() if n != MANAGER_AGENT)
            view.say(f"{len(agents)} agent(s) registered: {', '.join(agents)} (and the "
                     f"manager's built-in agent, which moves sectors to {cluster.store})")
            for _ in range(plan.sectors):
                await client.call("Sectors.Pledge")
            view.say(f"pledged {plan.sectors} sector(s) of {size_name(plan.sector_size)}")
            await _follow(client, cluster, view, names, outcome)
            for number in sorted(outcome.states):
                status = await client.call("Sectors.Status", [number, False])
                outcome.files[number] = status["files"]
    finally:
        view.close()
        with trio.CancelScope(shield=True):
            await cluster.stop()
    await _phase_times(cluster.repo, sorted(outcome.states), names, outcome)


async def run_until_signalled(plan: Plan, view: PlainView) -> Outcome:
    """:func:`run_devnet`, stopped cleanly (and marked interrupted) by SIGINT/SIGTERM."""
    outcome = Outcome()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    view.say("interrupted: stopping the devnet")
                    outcome.interrupted = True
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await run_devnet(plan, view, outcome)
            nursery.cancel_scope.cancel()
    return outcome


# ----------------------------------------------------------------------------- output


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def result_table(outcome: Outcome, phases: Sequence[TaskKind]) -> Table:
    """Every sector's state and phase times."""
    table = Table(title="devnet result")
    for column in ("Sector", "State", *(p.short for p in phases), "Total", "Workers"):
        table.add_column(column, justify="right" if column not in ("State", "Workers")
                         else "left")
    for number, state in sorted(outcome.states.items()):
        times = outcome.phase_times.get(number, {})
        table.add_row(str(number), state, *(_seconds(times.get(p)) for p in phases),
                      _seconds(outcome.total.get(number)),
                      ", ".join(outcome.hosts.get(number, [])))
    return table


def result_json(outcome: Outcome, plan: Plan) -> dict[str, Any]:
    """The result as ``--json`` writes it (docs/json.md, "sealagent devnet")."""
    return {
        "ok": outcome.ok, "timed_out": outcome.timed_out, "interrupted": outcome.interrupted,
        "sector_size": plan.sector_size, "workers": plan.workers, "snark": plan.snark,
        "sectors": [
            {"number": number, "state": state,
             "phases": {p.short: t for p, t in outcome.phase_times.get(number, {}).items()},
             "total_seconds": outcome.total.get(number),
             "workers": outcome.hosts.get(number, []),
             "files": outcome.files.get(number, [])}
            for number, state in sorted(outcome.states.items())],
    }


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` as JSON, atomically (a temporary file renamed)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_backends(plugins: Sequence[str], snark: bool, sector_size: int) -> None:
    """Fail early when the chosen plugins cannot run what the devnet needs.

    With ``snark`` a backend must offer Commit2 and the circuit's Groth16 parameters must
    be in ``FIL_PROOFS_PARAMETER_CACHE``.
    """
    try:
        selection = select_backends(plugins)
        if snark:
            selection.candidates(Phase.COMMIT2)
    except PluginError as exc:
        hint = " (--snark needs a backend with Commit2)" if snark else ""
        raise ConfigError(f"{exc}{hint}") from None
    if snark:
        from sealagent.snark.parameters import parameters_exist

        if not parameters_exist(default_proof(sector_size)):
            name = size_name(sector_size)
            raise ConfigError(f"--snark needs the Commit2 circuit's Groth16 parameters for "
                              f"{name}; create them once with 'sealagent params generate "
                              f"--sector-size {name}'")


def handle(args: argparse.Namespace) -> int:
    """Run the devnet and print the result; 1 if a sector did not reach Proving."""
    if args.sectors < 1 or args.workers < 1:
        raise ConfigError("--sectors and --workers must be at least 1")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    check_backends(args.plugin, args.snark, parse_sector_size(args.sector_size))
    check_tmpdir(os.environ)
    root = Path(args.dir).absolute() if args.dir else Path(
        tempfile.mkdtemp(prefix="sealagent-devnet-"))
    if args.dir and any(root.iterdir() if root.exists() else ()):
        raise ConfigError(f"{root} is not empty; give the devnet an empty or new directory")
    plan = Plan(root, args.sectors, parse_sector_size(args.sector_size), args.workers,
                tuple(args.plugin), args.snark, parse_duration(args.epoch_duration),
                args.timeout)
    console = Console()
    view: PlainView = LiveView(console) if console.is_terminal else PlainView(sys.stdout)
    view.say(f"devnet in {root}: 1 manager, {plan.workers} agent(s), {plan.sectors} "
             f"sector(s) of {size_name(plan.sector_size)}, epochs of {plan.epoch:g}s")
    view.say("Snark = true: Commit2 runs" if plan.snark else
             "Snark = false: Commit1's vanilla proofs are verified instead of running "
             "Commit2 (use --snark to run it)")
    outcome = trio.run(run_until_signalled, plan, view)
    phases: list[TaskKind] = [p for p in SEALING_ORDER if p is not Phase.COMMIT2 or plan.snark]
    phases.append(StorageJob.MOVE_STORAGE)
    console.print(result_table(outcome, phases))
    if args.json is not None:
        write_json(args.json, result_json(outcome, plan))
        console.print(f"result written to {args.json}")
    if outcome.timed_out:
        console.print(f"timed out after {plan.timeout:g}s")
    if outcome.ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        console.print(f"repos and logs kept in {root}")
    return 0 if outcome.ok else 1
