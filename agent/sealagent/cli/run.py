"""``sealagent run``: start an agent (Lotus' ``lotus-worker run``).

The manager is taken from ``MINER_API_INFO`` (``TOKEN:/ip4/HOST/tcp/PORT/http``, from
``sealagent auth api-info --perm admin``), else from the manager repo on this host
(``--miner-repo`` / ``$SEALAGENT_MINER_PATH``).  Task flags follow Lotus: each of
``--addpiece --precommit1 --unseal --precommit2 --commit`` defaults to on, ``--no-…``
turns it off, and with ``--no-default`` only the flags given explicitly are on.  Commit1
and Finalize are always taken.

The environment keeps Lotus' meaning: ``TMPDIR`` (phase scratch files),
``FIL_PROOFS_*`` (passed to the phases; ``FIL_PROOFS_USE_MULTICORE_SDR`` also sets PC1's
threads), ``CUDA_VISIBLE_DEVICES``/``NVIDIA_VISIBLE_DEVICES`` (the GPUs this agent may
use) and the resource overrides ``<TASK>_<SIZE>_<FIELD>`` (``sealagent resources``).

SIGTERM or SIGINT stops gracefully (no new work, unstarted tasks handed back, running
phases get ``--stop-grace`` seconds); a second signal stops at once.  Phases killed that
way resume on the next start.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog
import trio

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import plain_text
from sealagent.envvars import check_tmpdir, env_flag, env_int
from sealagent.errors import ConfigError
from sealagent.manager.logs import configure_logging
from sealagent.manager.repo import MinerRepo
from sealagent.manager.repo import resolve_repo as resolve_miner_repo
from sealagent.vocab.tasks import TaskType
from sealagent.web.auth import APIInfo, api_info_from_env
from sealagent.worker.agent import Agent
from sealagent.worker.config import ALWAYS_ON, DEFAULT_HEARTBEAT, DEFAULT_STOP_GRACE, AgentConfig
from sealagent.worker.repo import REPO_ENV, resolve_repo

TASK_FLAGS: tuple[tuple[str, TaskType, str], ...] = (
    ("addpiece", TaskType.ADD_PIECE, "enable AddPiece"),
    ("precommit1", TaskType.PRECOMMIT1, "enable PreCommit1 (32G: 1 core, 64GiB RAM)"),
    ("unseal", TaskType.UNSEAL, "enable Unseal (32G: 1 core, 64GiB RAM)"),
    ("precommit2", TaskType.PRECOMMIT2, "enable PreCommit2 (32G: many cores or a GPU)"),
    ("commit", TaskType.COMMIT2, "enable Commit2, the SNARK (cores or a GPU)"),
)
"""``--<flag>``: the optional task type it switches and its help."""

ENV_PREFIX = "SEALAGENT_WORKER_"
_log = structlog.get_logger("sealagent.run")
T = TypeVar("T")


@dataclass(frozen=True)
class BadEnvDefault:
    """An option's default whose ``SEALAGENT_WORKER_*`` variable holds a bad value.

    Building the parser must not fail (every other command would), so the error waits in
    the default and :func:`build_config` raises it when the agent is about to run.
    """

    error: ConfigError

    def __str__(self) -> str:
        """How ``--help`` shows the default."""
        return f"invalid: {self.error}"


def _env_default(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _deferred(read: Callable[[], T]) -> T | BadEnvDefault:
    """``read()``, or the ConfigError it raised, kept for :func:`build_config`."""
    try:
        return read()
    except ConfigError as exc:
        return BadEnvDefault(exc)


def _env_flag(name: str) -> bool | BadEnvDefault:
    return _deferred(lambda: env_flag(os.environ, ENV_PREFIX + name))


def _env_count(name: str, default: int) -> int | BadEnvDefault:
    return _deferred(lambda: env_int(os.environ, ENV_PREFIX + name, default, minimum=1))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run``."""
    parser = subparsers.add_parser(
        "run", help=COMMANDS["run"],
        description=plain_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-repo", metavar="DIR",
                        help=f"agent repo (default ${REPO_ENV} or ~/.sealagent-worker)")
    parser.add_argument("--miner-repo", metavar="DIR",
                        help="manager repo to read the API from when MINER_API_INFO is unset")
    parser.add_argument("--name", default=_env_default("NAME", ""),
                        help="name shown in `sealing workers` (default: host name)")
    parser.add_argument("--listen", default=_env_default("LISTEN", "0.0.0.0:3456"),
                        metavar="HOST:PORT", help="API and /remote address "
                        "(default %(default)s; port 0 picks a free one)")
    for flag, _, text in TASK_FLAGS:
        parser.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                            help=f"{text} (default: true unless --no-default)")
    parser.add_argument("--no-default", action="store_true", default=_env_flag("NO_DEFAULT"),
                        help="enable only the task flags given explicitly")
    parser.add_argument("--parallel-fetch-limit", type=int, metavar="N",
                        default=_env_count("PARALLEL_FETCH_LIMIT", 5),
                        help="sector file downloads at once (default %(default)s)")
    parser.add_argument("--no-swap", action="store_true", default=_env_flag("NO_SWAP"),
                        help="report no swap to the scheduler")
    parser.add_argument("--no-local-storage", action="store_true",
                        default=_env_flag("NO_LOCAL_STORAGE"),
                        help="do not make the repo a sealing storage path")
    parser.add_argument("--plugin", action="append", default=[], metavar="NAME",
                        help="backend to prefer, repeatable (cpu is always the fallback)")
    parser.add_argument("--heartbeat", type=float, default=DEFAULT_HEARTBEAT, metavar="S",
                        help="seconds between heartbeats (default %(default)s)")
    parser.add_argument("--stop-grace", type=float, default=DEFAULT_STOP_GRACE, metavar="S",
                        help="seconds running phases get to finish on stop "
                             "(default %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="log level (default info)")
    parser.set_defaults(handler=handle)


def chosen_tasks(args: argparse.Namespace) -> frozenset[TaskType]:
    """The task types the flags enable (Lotus' ``--no-default`` rule)."""
    chosen = set(ALWAYS_ON)
    for flag, task_type, _ in TASK_FLAGS:
        value = getattr(args, flag)
        if value is None:
            value = not args.no_default
        if value:
            chosen.add(task_type)
    return frozenset(chosen)


def manager_api(miner_repo: str | None, environ: Mapping[str, str]) -> APIInfo:
    """``MINER_API_INFO``, else the API of the manager whose repo is on this host."""
    if environ.get("MINER_API_INFO", "").strip():
        return api_info_from_env("MINER_API_INFO", environ)
    root = resolve_miner_repo(miner_repo, environ)
    try:
        return MinerRepo(root).api_info()
    except ConfigError as exc:
        raise ConfigError(f"MINER_API_INFO is not set and no manager was found: {exc}; "
                          "set it with `export $(sealagent auth api-info --perm admin)` "
                          "(on the manager's host; elsewhere, export the line that command "
                          "prints there)") from None


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> AgentConfig:
    """The agent's configuration from the flags and the environment.

    :raises ConfigError: a flag, or a ``SEALAGENT_WORKER_*`` variable behind a default, is
        bad (the error names the variable).
    """
    for value in vars(args).values():
        if isinstance(value, BadEnvDefault):
            raise value.error
    check_tmpdir(environ)
    if args.heartbeat <= 0 or args.stop_grace < 0:
        raise ConfigError("--heartbeat must be positive and --stop-grace not negative")
    kwargs = {"name": args.name} if args.name else {}
    return AgentConfig(
        api_info=manager_api(args.miner_repo, environ),
        repo=resolve_repo(args.worker_repo, environ), task_types=chosen_tasks(args),
        listen=args.listen, local_storage=not args.no_local_storage,
        parallel_fetch_limit=args.parallel_fetch_limit, no_swap=args.no_swap,
        plugins=tuple(args.plugin), environ=dict(environ), heartbeat_interval=args.heartbeat,
        stop_grace=args.stop_grace, **kwargs)


async def run_until_signalled(agent: Agent) -> None:
    """Run ``agent``; the first SIGINT/SIGTERM stops it gracefully, the second at once."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    if agent.stopping or not agent.registered:
                        _log.warning("stopping now", signal=signal.Signals(signum).name)
                        agent.kill()
                    else:
                        _log.info("stopping gracefully (signal again to stop now)",
                                  signal=signal.Signals(signum).name)
                        agent.stop()

            nursery.start_soon(watch)
            await agent.run()
            nursery.cancel_scope.cancel()


def handle(args: argparse.Namespace) -> int:
    """Run the agent until it is stopped."""
    configure_logging(args.log_level)
    config = build_config(args, os.environ)
    trio.run(run_until_signalled, Agent(config))
    print("agent stopped", file=sys.stderr)
    return 0
