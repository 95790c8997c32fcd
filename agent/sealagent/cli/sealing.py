"""``sealagent sealing``: workers, jobs, sched-diag, abort (Lotus' layouts)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, Final

from sealagent.cli.commands import COMMANDS
from sealagent.cli.formatting import (
    add_json_argument,
    bar,
    format_table,
    go_duration,
    print_json,
)
from sealagent.cli.miner import add_command_group, add_manager_command, manager_call
from sealagent.units import size_str
from sealagent.vocab.tasks import TASK_TYPES_BY_ORDER

_STATE_ORDER: Final = {"running": 0, "prepared": 1, "assigned": 2, "ret-wait": 3}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``sealing workers|jobs|sched-diag|abort``."""
    sub = add_command_group(subparsers, "sealing", help=COMMANDS["sealing"],
                            description="Inspect and steer the sealing scheduler.")
    add_json_argument(add_manager_command(sub, "workers", run_workers,
                                          help="connected workers and their resources"))
    add_json_argument(add_manager_command(sub, "jobs", run_jobs,
                                          help="tasks on workers: assigned, prepared, "
                                               "running"))
    add_manager_command(sub, "sched-diag", run_sched_diag,
                        help="the scheduler queue (and why each task waits) and windows, "
                             "as JSON")
    abort = add_manager_command(
        sub, "abort", run_abort, help="abort a job",
        description="Abort a job by (a prefix of) its id from `sealing jobs`; with --sched, "
                    "remove a queued task (its id from `sealing sched-diag`).  The sector "
                    "retries the step after its cooldown.")
    abort.add_argument("id", help="the job's id or a prefix of it")
    abort.add_argument("--sched", action="store_true", help="remove a queued task")


def task_summary(counts: Mapping[str, int], limits: Mapping[str, int]) -> str:
    """``PC1(3/4) AP(1)``: tasks per type, in Lotus' task order, with MaxConcurrent."""
    parts = []
    for task_type in TASK_TYPES_BY_ORDER:
        count = counts.get(task_type.value, 0)
        if count:
            limit = limits.get(task_type.value, 0)
            parts.append(f"{task_type.short}({count}{f'/{limit}' if limit else ''})")
    return " ".join(parts)


def format_worker(w: Mapping[str, Any]) -> list[str]:
    """One worker as ``lotus-miner sealing workers`` prints it."""
    res, use = w["resources"], w["usage"]
    disabled = "" if w["enabled"] else " (disabled)"
    lines = [f"Worker {w['worker_id']}, host {w['hostname']}{disabled}"]
    if w.get("shares_cores_with"):
        lines.append(f"\tWARNING: shares CPU cores with {', '.join(w['shares_cores_with'])} "
                     "on this machine; each counts them (give each agent its own cores: "
                     "taskset, cpuset)")
    summary = task_summary(w["task_counts"], w["max_concurrent"])
    if summary:
        lines.append(f"\tTASK: {summary}")
    cpus = res["cpus"]
    lines.append(f"\tCPU:  [{bar(cpus, 0, use['cpu_use'])}] {use['cpu_use']}/{cpus} "
                 f"core(s) in use")
    total = res["mem_physical"]
    tasks = use["mem_used_min"]
    reserved = max(0, res["mem_used"] - tasks)
    lines.append(f"\tRAM:  [{bar(total, reserved, tasks)}] {(tasks + reserved) * 100 // total}% "
                 f"{size_str(tasks + reserved)}/{size_str(total)}")
    vtotal = res["mem_physical"] + res["mem_swap"]
    vtasks = use["mem_used_max"]
    vreserved = max(0, res["mem_used"] + res["mem_swap_used"] - vtasks)
    lines.append(f"\tVMEM: [{bar(vtotal, vreserved, vtasks)}] "
                 f"{(vtasks + vreserved) * 100 // vtotal}% "
                 f"{size_str(vtasks + vreserved)}/{size_str(vtotal)}")
    gpus = res["gpus"]
    if gpus:
        used = float(use["gpu_used"])
        lines.append(f"\tGPU:  [{bar(len(gpus), 0, used)}] {used * 100 / len(gpus):.0f}% "
                     f"{used:.2f}/{len(gpus)} gpu(s) in use")
        for index, gpu in enumerate(gpus):
            busy = used > index
            lines.append(f"\tGPU: {gpu['name']}, {'used' if busy else 'not used'}")
    return lines


def run_workers(args: argparse.Namespace) -> int:
    """Print every connected worker."""
    workers = manager_call(args, "Sealing.Workers")
    if args.json:
        print_json(workers)
        return 0
    for w in sorted(workers, key=lambda w: w["worker_id"]):
        print("\n".join(format_worker(w)))
    if not workers:
        print("no workers connected")
    return 0


def format_jobs(jobs: list[Mapping[str, Any]]) -> str:
    """``lotus-miner sealing jobs``: ID, Sector, Worker, Hostname, Task, State, Time."""
    def order(job: Mapping[str, Any]) -> tuple[int, int, float]:
        return (_STATE_ORDER.get(job["state"], 9), job["window"], -job["elapsed"])

    rows = []
    for job in sorted(jobs, key=order):
        state = job["state"]
        if state == "assigned":
            state = f"assigned({job['window'] + 1})"
        worker = "00000000" if job["state"] == "ret-wait" else (job["worker_id"] or "")[:8]
        rows.append([job["task_id"], str(job["sector"]), worker, job["hostname"],
                     job["short"], state, go_duration(job["elapsed"])])
    return format_table(["ID", "Sector", "Worker", "Hostname", "Task", "State", "Time"], rows)


def run_jobs(args: argparse.Namespace) -> int:
    """Print the jobs table."""
    jobs = manager_call(args, "Sealing.Jobs")
    if args.json:
        print_json(jobs)
    else:
        print(format_jobs(jobs))
    return 0


def run_sched_diag(args: argparse.Namespace) -> int:
    """Print the scheduler diagnostics as JSON."""
    print_json(manager_call(args, "Sealing.SchedDiag"))
    return 0


def run_abort(args: argparse.Namespace) -> int:
    """Abort a job."""
    job = manager_call(args, "Sealing.Abort", [args.id, args.sched])
    where = f", running on host {job['host']}" if job["host"] else ""
    print(f"aborting job {job['task_id']}, task {job['task_type']}, sector {job['sector']}"
          f"{where}")
    return 0
