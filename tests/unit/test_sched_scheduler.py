"""Scheduling passes: windows, selectors, assigners, determinism and cost."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sealagent.errors import ConfigError, SchedulerError
from sealagent.sched.assigners import Assigner
from sealagent.sched.fit import ActiveResources
from sealagent.sched.queue import SchedTask
from sealagent.sched.resources import (
    DEFAULT_TABLE,
    GpuInfo,
    ResourceTable,
    WorkerResources,
    parse_resource_env,
)
from sealagent.sched.scheduler import Scheduler
from sealagent.sched.selectors import (
    AllocSelector,
    ExistingSelector,
    MoveSelector,
    Selector,
    TaskSelector,
)
from sealagent.sched.storage_view import (
    PathKind,
    PathStat,
    StorageView,
    seal_space,
    store_space,
)
from sealagent.sched.windows import Placement, SchedWorker
from sealagent.vocab.registry import GIB, RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import SealTaskType, TaskType

T = TaskType
P32 = RegisteredSealProof.StackedDrg32GiBV1_1
P32S = RegisteredSealProof.StackedDrg32GiBV1_1_Feat_SyntheticPoRep
TIB = 1024 * GIB
SEALING = frozenset(TaskType) - {T.WINDOW_POST, T.WINNING_POST}
ALWAYS = frozenset({T.FETCH, T.COMMIT1, T.PROVE_REPLICA_UPDATE_1, T.FINALIZE,
                    T.FINALIZE_UNSEALED, T.FINALIZE_REPLICA_UPDATE})
SEAL = FileType.SEALED | FileType.CACHE
PC1_SPACE = seal_space(SEAL, 32 * GIB)


def worker(wid: str, tasks: frozenset[TaskType] = SEALING, *, cpus: int = 64,
           ram: int = 256 * GIB, gpus: int = 0, mem_used: int = 0,
           paths: tuple[str, ...] = (), table: ResourceTable = DEFAULT_TABLE,
           ignore: bool = False) -> SchedWorker:
    res = WorkerResources(cpus=cpus, mem_physical=ram, mem_used=mem_used,
                          gpus=tuple(GpuInfo(f"gpu{i}") for i in range(gpus)), table=table)
    return SchedWorker(wid, res, tasks, frozenset(paths), hostname=wid, ignore_resources=ignore)


def scheduler(*workers: SchedWorker, windows: int = 1, assigner: str = "utilization",
              affinity: bool = False) -> Scheduler:
    sched = Scheduler(assigner, sector_affinity=affinity)
    for w in workers:
        sched.add_worker(w)
    for w in workers:
        for _ in range(windows):
            sched.open_window(w.worker_id)
    return sched


def req(task_id: str, task_type: TaskType, number: int, *, proof: RegisteredSealProof = P32,
        priority: int = 0, selector: Selector | None = None) -> SchedTask:
    return SchedTask(task_id, task_type, proof, SectorID(1000, number), priority,
                     selector or TaskSelector())


def placed(assignments: list[Placement]) -> dict[str, str]:
    return {a.task.task_id: a.worker_id for a in assignments}


def storage(*paths: PathStat, sectors: dict[int, str] | None = None) -> StorageView:
    """A view whose sectors hold every file type on the given path."""
    held = {SectorID(1000, n): {t: frozenset({p}) for t in FileType}
            for n, p in (sectors or {}).items()}
    return StorageView({p.path_id: p for p in paths}, held)


def pc1s(count: int, first: int = 1, **kw: object) -> list[SchedTask]:
    return [req(f"pc1-{n}", T.PRECOMMIT1, n, **kw) for n in  # type: ignore[arg-type]
            range(first, first + count)]


# --- windows ------------------------------------------------------------------------------

class TestWindows:
    def test_windows_filled_as_if_idle_even_when_the_worker_is_busy(self) -> None:
        w = worker("w1")
        busy = w.need(T.PRECOMMIT1, P32)
        for i in range(3):
            w.active.add(f"running-{i}", busy, w.resources)
        sched = scheduler(w)
        sched.add_tasks(pc1s(5))
        assert len(sched.schedule()) == 3

    def test_window_that_got_tasks_closes_and_an_empty_one_stays_open(self) -> None:
        sched = scheduler(worker("w1"), windows=2)
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        [a] = sched.schedule()
        assert a.window_id == 1
        assert list(sched.open_windows) == [2]
        assert sched.schedule() == []

    def test_second_window_takes_what_the_first_cannot(self) -> None:
        sched = scheduler(worker("w1"), windows=2)
        sched.add_tasks(pc1s(7))
        windows = [a.window_id for a in sched.schedule()]
        assert windows == [1, 1, 1, 2, 2, 2]
        assert len(sched.queue) == 1 and sched.open_windows == {}

    def test_only_workers_with_the_task_type_enabled_get_it(self) -> None:
        sched = scheduler(worker("w1", ALWAYS | {T.PRECOMMIT1}),
                          worker("w2", ALWAYS | {T.PRECOMMIT2}))
        sched.add_tasks([req("pc2", T.PRECOMMIT2, 1), req("pc1", T.PRECOMMIT1, 2)])
        assert placed(sched.schedule()) == {"pc2": "w2", "pc1": "w1"}

    def test_disabled_worker_gets_nothing_and_loses_its_open_windows(self) -> None:
        sched = scheduler(worker("w1"), windows=2)
        sched.set_enabled("w1", False)
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        assert sched.schedule() == [] and sched.open_windows == {}
        with pytest.raises(SchedulerError, match="disabled"):
            sched.open_window("w1")
        sched.set_enabled("w1", True)
        sched.open_window("w1")
        assert len(sched.schedule()) == 1

    def test_assigned_windows_count_toward_load_until_started(self) -> None:
        sched = scheduler(worker("w1"))
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        [a] = sched.schedule()
        w = sched.workers["w1"]
        assert w.utilization() > 0 and w.count(SealTaskType(P32, T.PRECOMMIT1)) == 1
        window = sched.window_started("w1", a.window_id)
        assert [t.task_id for t in window.todo] == ["pc1"]
        assert w.utilization() == 0 and w.count() == 0

    def test_max_concurrent_counts_tasks_the_worker_already_runs(self) -> None:
        table = parse_resource_env({"PC1_32G_MAX_CONCURRENT": "2"})
        w = worker("w1", ram=TIB, table=table)
        w.active.add("running", w.need(T.PRECOMMIT1, P32), w.resources)
        sched = scheduler(w, windows=2)
        sched.add_tasks(pc1s(5))
        assert len(sched.schedule()) == 1
        assert list(sched.open_windows) == [2]

    def test_task_that_fits_nowhere_does_not_block_later_tasks(self) -> None:
        sched = scheduler(worker("w1", ram=100 * GIB))
        big = req("pc1-64g", T.PRECOMMIT1, 1, proof=RegisteredSealProof.StackedDrg64GiBV1_1,
                  priority=1024)
        sched.add_tasks([big, req("ap", T.ADD_PIECE, 2)])
        assert placed(sched.schedule()) == {"ap": "w1"}
        assert "pc1-64g" in sched.queue

    def test_priority_decides_which_tasks_get_scarce_room(self) -> None:
        sched = scheduler(worker("w1"))
        tasks = pc1s(4)
        tasks.append(req("deal", T.PRECOMMIT1, 5, priority=1024))
        sched.add_tasks(tasks)
        assert [a.task.task_id for a in sched.schedule()] == ["deal", "pc1-1", "pc1-2"]

    def test_queue_order_is_kept_across_competing_groups(self) -> None:
        sched = scheduler(worker("w1"))
        sched.add_tasks([req(f"v11-{n}", T.PRECOMMIT1, n) for n in (1, 4, 6)]
                        + [req(f"syn-{n}", T.PRECOMMIT1, n, proof=P32S) for n in (2, 3, 5)])
        assert [a.task.task_id for a in sched.schedule()] == ["v11-1", "syn-2", "syn-3"]

    def test_ignore_resources_worker_takes_everything_its_limits_allow(self) -> None:
        table = parse_resource_env({"PC1_MAX_CONCURRENT": "8"})
        sched = scheduler(worker("local", ram=GIB, cpus=1, table=table, ignore=True))
        sched.add_tasks(pc1s(10))
        assert len(sched.schedule()) == 8

    def test_remove_worker_returns_the_tasks_of_its_unstarted_windows(self) -> None:
        sched = scheduler(worker("w1"), worker("w2"), windows=2)
        sched.add_tasks(pc1s(2))
        sched.schedule()
        lost = sched.remove_worker("w1")
        assert [t.task_id for t in lost] == ["pc1-1"]
        assert set(sched.open_windows.values()) == {"w2"}
        sched.add_tasks(lost)
        assert placed(sched.schedule()) == {"pc1-1": "w2"}

    def test_window_bookkeeping_errors(self) -> None:
        sched = scheduler(worker("w1"))
        with pytest.raises(SchedulerError):
            sched.open_window("nobody")
        with pytest.raises(SchedulerError):
            sched.close_window(99)
        with pytest.raises(SchedulerError):
            sched.window_started("w1", 1)
        sched.close_window(1)
        assert sched.open_windows == {}

    def test_worker_snapshot_is_validated_and_accepts_short_names(self) -> None:
        res = WorkerResources(cpus=4, mem_physical=GIB)
        w = SchedWorker("w1", res, frozenset({"PC1", "seal/v0/fetch"}))  # type: ignore[arg-type]
        assert w.task_types == {T.PRECOMMIT1, T.FETCH}
        with pytest.raises(SchedulerError):
            SchedWorker("", res, frozenset())
        with pytest.raises(SchedulerError):
            SchedWorker("w2", res, frozenset({"PC9"}))  # type: ignore[arg-type]

    def test_aborted_request_is_not_scheduled(self) -> None:
        sched = scheduler(worker("w1"))
        sched.add_tasks(pc1s(2))
        assert sched.remove_task("pc1-1").task_id == "pc1-1"
        assert placed(sched.schedule()) == {"pc1-2": "w1"}


# --- selectors ----------------------------------------------------------------------------

class TestSelectors:
    alloc = AllocSelector(SEAL)

    def test_alloc_selector_needs_room_for_the_new_files(self) -> None:
        assert PC1_SPACE == 32 * GIB * 141 // 10 + 32 * GIB
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("p2",)))
        view = storage(PathStat("p1", available=PC1_SPACE - 1),
                       PathStat("p2", available=PC1_SPACE))
        sched.add_task(req("pc1", T.PRECOMMIT1, 1, selector=self.alloc), view)
        assert placed(sched.schedule(view)) == {"pc1": "w2"}

    def test_alloc_selector_counts_space_promised_earlier_in_the_pass(self) -> None:
        sched = scheduler(worker("w1", ram=TIB, paths=("p1",)))
        view = storage(PathStat("p1", available=2 * PC1_SPACE + 1))
        sched.add_tasks(pc1s(5, selector=self.alloc), view)
        assert len(sched.schedule(view)) == 2

    def test_alloc_selector_picks_the_roomiest_weighted_path(self) -> None:
        sched = scheduler(worker("w1", ram=TIB, paths=("small", "big")))
        view = storage(PathStat("small", available=PC1_SPACE),
                       PathStat("big", available=2 * PC1_SPACE, weight=1),
                       PathStat("other", available=100 * TIB))
        sched.add_tasks(pc1s(4, selector=self.alloc), view)
        assert len(sched.schedule(view)) == 3

    def test_alloc_selector_for_storage_needs_a_can_store_path(self) -> None:
        store = AllocSelector(FileType.SEALED, PathKind.STORE)
        sched = scheduler(worker("w1", paths=("seal",)), worker("w2", paths=("store",)))
        view = storage(PathStat("seal", available=TIB),
                       PathStat("store", can_seal=False, can_store=True, available=TIB))
        sched.add_task(req("get", T.FETCH, 1, selector=store), view)
        assert placed(sched.schedule(view)) == {"get": "w2"}

    def test_alloc_selector_skips_unhealthy_and_unknown_paths(self) -> None:
        sched = scheduler(worker("w1", paths=("sick",)), worker("w2", paths=("gone",)))
        view = storage(PathStat("sick", available=100 * TIB, healthy=False))
        sched.add_task(req("pc1", T.PRECOMMIT1, 1, selector=self.alloc), view)
        assert sched.schedule(view) == []

    def test_existing_selector_without_fetch_only_goes_to_holders(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("p2",)))
        view = storage(PathStat("p1"), PathStat("p2"), sectors={7: "p2"})
        sched.add_task(req("c1", T.COMMIT1, 7, selector=ExistingSelector(SEAL)), view)
        assert placed(sched.schedule(view)) == {"c1": "w2"}

    def test_existing_selector_without_any_holder_waits(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)))
        view = storage(PathStat("p1", available=TIB))
        sched.add_task(req("pc2", T.PRECOMMIT2, 7,
                           selector=ExistingSelector(SEAL, allow_fetch=True)), view)
        assert sched.schedule(view) == []

    def test_existing_selector_with_fetch_prefers_the_holder(self) -> None:
        w1 = worker("w1", paths=("p1",))
        w2 = worker("w2", paths=("p2",), mem_used=100 * GIB)
        sched = scheduler(w1, w2)
        view = storage(PathStat("p1", available=TIB), PathStat("p2", available=TIB),
                       sectors={7: "p2"})
        sched.add_task(req("pc2", T.PRECOMMIT2, 7,
                           selector=ExistingSelector(SEAL, allow_fetch=True)), view)
        assert placed(sched.schedule(view)) == {"pc2": "w2"}

    def test_busy_holder_keeps_the_task_instead_of_moving_the_data(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",), gpus=1),
                          worker("w2", paths=("p2",), gpus=1))
        view = storage(PathStat("p1", available=TIB), PathStat("p2", available=TIB),
                       sectors={7: "p2", 8: "p2"})
        fetch = ExistingSelector(SEAL, allow_fetch=True)
        sched.add_tasks([req("a", T.PRECOMMIT2, 7, selector=fetch),
                         req("b", T.PRECOMMIT2, 8, selector=fetch)], view)
        assert placed(sched.schedule(view)) == {"a": "w2"}

    @pytest.mark.parametrize(("affinity", "expected"), [(False, {"pc2": "w1"}), (True, {})])
    def test_fetch_fallback_when_the_holder_cannot_run_the_task_unless_affinity(
            self, affinity: bool, expected: dict[str, str]) -> None:
        sched = scheduler(worker("w1", paths=("p1",)),
                          worker("w2", ALWAYS | {T.PRECOMMIT1}, paths=("p2",)),
                          affinity=affinity)
        view = storage(PathStat("p1", available=TIB), PathStat("p2", available=TIB),
                       sectors={7: "p2"})
        sched.add_task(req("pc2", T.PRECOMMIT2, 7,
                           selector=ExistingSelector(SEAL, allow_fetch=True)), view)
        assert placed(sched.schedule(view)) == expected

    def test_fetch_fallback_needs_room_for_the_fetched_files(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)),
                          worker("w2", ALWAYS | {T.PRECOMMIT1}, paths=("p2",)))
        view = storage(PathStat("p1", available=PC1_SPACE - 1), PathStat("p2"),
                       sectors={7: "p2"})
        sched.add_task(req("pc2", T.PRECOMMIT2, 7,
                           selector=ExistingSelector(SEAL, allow_fetch=True)), view)
        assert sched.schedule(view) == []

    @pytest.mark.parametrize(("affinity", "expected"), [(False, "w1"), (True, "w2")])
    def test_sector_affinity_allocates_where_the_sector_already_is(self, affinity: bool,
                                                                   expected: str) -> None:
        sched = scheduler(worker("w1", paths=("p1",)),
                          worker("w2", paths=("p2",), mem_used=100 * GIB), affinity=affinity)
        view = StorageView({"p1": PathStat("p1", available=TIB),
                            "p2": PathStat("p2", available=TIB)},
                           {SectorID(1000, 7): {FileType.UNSEALED: frozenset({"p2"})}})
        sched.add_task(req("pc1", T.PRECOMMIT1, 7, selector=self.alloc), view)
        assert placed(sched.schedule(view)) == {"pc1": expected}

    def test_task_selector_prefers_the_specialized_worker_on_equal_load(self) -> None:
        sched = scheduler(worker("generalist", gpus=1),
                          worker("c2-box", ALWAYS | {T.COMMIT2}, gpus=1))
        sched.add_task(req("c2", T.COMMIT2, 1))
        assert placed(sched.schedule()) == {"c2": "c2-box"}

    def test_refreshed_locality_follows_files_that_moved(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("p2",)))
        before = storage(PathStat("p1"), PathStat("p2"), sectors={7: "p2"})
        after = storage(PathStat("p1"), PathStat("p2"), sectors={7: "p1"})
        sched.add_tasks([req("c1", T.COMMIT1, 7, selector=ExistingSelector(SEAL)),
                         req("other", T.COMMIT1, 8, selector=ExistingSelector(SEAL))], before)
        sched.refresh_locality(["c1", "not-queued"], after)
        assert placed(sched.schedule(after)) == {"c1": "w1"}

    def test_new_worker_holding_the_files_gets_a_waiting_task(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)))
        view = storage(PathStat("p1"), PathStat("p2"), sectors={7: "p2"})
        sched.add_task(req("c1", T.COMMIT1, 7, selector=ExistingSelector(SEAL)), view)
        assert sched.schedule(view) == []
        sched.add_worker(worker("w2", paths=("p2",)))
        sched.open_window("w2")
        assert placed(sched.schedule(view)) == {"c1": "w2"}


# --- why a request waits -------------------------------------------------------------------

class TestMoveSelector:
    """The move to long-term storage: a store path with room, holders first."""

    move = MoveSelector(SEAL)
    room = store_space(SEAL, 32 * GIB)

    def store(self, path_id: str, available: int) -> PathStat:
        return PathStat(path_id, can_seal=False, can_store=True, available=available)

    def test_finalized_files_take_the_sealed_size_and_a_tenth_for_the_cache(self) -> None:
        assert self.room == 32 * GIB + 32 * GIB // 10

    def test_a_holder_with_a_store_path_is_preferred(self) -> None:
        sched = scheduler(worker("w1", paths=("p1", "s1"), mem_used=100 * GIB),
                          worker("w2", paths=("p2", "s2")))
        view = storage(PathStat("p1"), PathStat("p2"), self.store("s1", self.room),
                       self.store("s2", 100 * TIB), sectors={7: "p1"})
        sched.add_task(req("mv", T.FETCH, 7, selector=self.move), view)
        assert placed(sched.schedule(view)) == {"mv": "w1"}

    def test_files_go_to_another_agent_when_the_holder_has_no_store_path(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("s2",)))
        view = storage(PathStat("p1", available=100 * TIB), self.store("s2", self.room),
                       sectors={7: "p1"})
        sched.add_task(req("mv", T.FETCH, 7, selector=self.move), view)
        assert placed(sched.schedule(view)) == {"mv": "w2"}

    def test_without_remote_moves_only_holders_may_take_it(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("s2",)))
        view = storage(PathStat("p1"), self.store("s2", 100 * TIB), sectors={7: "p1"})
        local = MoveSelector(SEAL, allow_remote=False)
        sched.add_task(req("mv", T.FETCH, 7, selector=local), view)
        assert sched.schedule(view) == []
        assert "DisallowRemoteFinalize" in local.requirement(None, affinity=False)

    def test_a_store_path_without_room_or_a_sealing_path_does_not_do(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("s2",)))
        view = storage(PathStat("p1", available=100 * TIB), self.store("s2", self.room - 1),
                       sectors={7: "p1"})
        sched.add_task(req("mv", T.FETCH, 7, selector=self.move), view)
        assert sched.schedule(view) == []

    def test_a_sector_nobody_holds_waits(self) -> None:
        sched = scheduler(worker("w2", paths=("s2",)))
        view = storage(self.store("s2", 100 * TIB))
        sched.add_task(req("mv", T.FETCH, 7, selector=self.move), view)
        assert sched.schedule(view) == []

    def test_the_holders_allow_to_groups_limit_the_store_paths(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("s2",)),
                          worker("w3", paths=("s3",)))
        cold = PathStat("s3", can_seal=False, can_store=True, available=self.room,
                        groups=("cold",))
        view = storage(PathStat("p1", allow_to=("cold",)), self.store("s2", 100 * TIB), cold,
                       sectors={7: "p1"})
        sched.add_task(req("mv", T.FETCH, 7, selector=self.move), view)
        assert placed(sched.schedule(view)) == {"mv": "w3"}
        full = storage(PathStat("p1", allow_to=("cold",)), self.store("s2", 100 * TIB),
                       replace(cold, available=self.room - 1), sectors={7: "p1"})
        sched = scheduler(worker("w2", paths=("s2",)), worker("w3", paths=("s3",)))
        task = req("mv", T.FETCH, 7, selector=self.move)
        sched.add_task(task, full)
        assert sched.schedule(full) == []
        assert "in group cold (AllowTo)" in (sched.waiting_reason("mv", full) or "")

    def test_an_unsealed_copy_that_goes_along_needs_room_too(self) -> None:
        carrying = MoveSelector(SEAL, carries=FileType.UNSEALED)
        with_unsealed = self.room + store_space(FileType.UNSEALED, 32 * GIB)

        def view(available: int, held: FileType) -> StorageView:
            return StorageView({"p1": PathStat("p1"), "s2": self.store("s2", available)},
                               {SectorID(1000, 7): {t: frozenset({"p1"}) for t in held.split()}})

        def schedule(snapshot: StorageView) -> tuple[dict[str, str], str | None]:
            sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("s2",)))
            sched.add_task(req("mv", T.FETCH, 7, selector=carrying), snapshot)
            return placed(sched.schedule(snapshot)), sched.waiting_reason("mv", snapshot)

        assert schedule(view(self.room, SEAL))[0] == {"mv": "w2"}  # no unsealed copy
        assert schedule(view(with_unsealed, SEAL | FileType.UNSEALED))[0] == {"mv": "w2"}
        placed_on, reason = schedule(view(with_unsealed - 1, SEAL | FileType.UNSEALED))
        assert placed_on == {}
        assert "room for the finalized unsealed, sealed, cache files" in (reason or "")


class TestWaitingReasons:
    fetch = ExistingSelector(SEAL, allow_fetch=True)

    def reason(self, sched: Scheduler, task: SchedTask, view: StorageView) -> str:
        sched.add_task(task, view)
        sched.schedule(view)
        reason = sched.waiting_reason(task.task_id, view)
        assert reason is not None
        return reason

    def test_no_worker_offers_the_task_type_or_every_one_is_disabled(self) -> None:
        sched = scheduler(worker("w1", ALWAYS | {T.PRECOMMIT1}))
        assert self.reason(sched, req("pc2", T.PRECOMMIT2, 1), StorageView()) == \
            "no connected worker offers PC2 (seal/v0/precommit/2)"
        sched.set_enabled("w1", False)
        assert sched.waiting_reason("pc2") == \
            "no connected worker offers PC2 (seal/v0/precommit/2)"
        assert self.reason(sched, req("pc1", T.PRECOMMIT1, 2), StorageView()) == \
            "every worker that offers PC1 is disabled (w1)"

    def test_sector_affinity_names_the_holder_that_lacks_the_task_type(self) -> None:
        pc1_only = worker("pc1-box", ALWAYS | {T.ADD_PIECE, T.PRECOMMIT1}, paths=("p1",))
        gpu_box = worker("gpu-box", ALWAYS | {T.PRECOMMIT2}, paths=("p2",))
        view = storage(PathStat("p1", available=TIB), PathStat("p2", available=TIB),
                       sectors={7: "p1"})
        sched = scheduler(pc1_only, gpu_box, affinity=True)
        assert self.reason(sched, req("pc2", T.PRECOMMIT2, 7, selector=self.fetch),
                           view) == (
            "PC2 needs an agent holding the sector's sealed, cache files (SectorAffinity "
            "keeps the sector's files where they are): pc1-box, which does not offer PC2")
        open_sched = scheduler(worker("pc1-box", ALWAYS | {T.PRECOMMIT1}, paths=("p1",)),
                               worker("gpu-box", ALWAYS | {T.PRECOMMIT2}, paths=("p2",)))
        open_sched.add_task(req("pc2", T.PRECOMMIT2, 7, selector=self.fetch), view)
        assert placed(open_sched.schedule(view)) == {"pc2": "gpu-box"}

    def test_files_nobody_holds_and_a_holder_that_is_disabled(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)), worker("w2", paths=("p2",)))
        view = storage(PathStat("p1"), PathStat("p2"), sectors={7: "p2"})
        assert self.reason(sched, req("c1", T.COMMIT1, 8, selector=ExistingSelector(SEAL)),
                           view) == ("C1 needs an agent holding the sector's sealed, cache "
                                     "files, and there is none")
        sched.set_enabled("w2", False)
        assert self.reason(sched, req("c1-7", T.COMMIT1, 7,
                                      selector=ExistingSelector(SEAL)), view) == (
            "C1 needs an agent holding the sector's sealed, cache files: w2, which is "
            "disabled")

    def test_no_room_on_the_paths_of_the_workers_that_may_run_it(self) -> None:
        sched = scheduler(worker("w1", paths=("p1",)))
        view = storage(PathStat("p1", available=PC1_SPACE - 1))
        assert self.reason(sched, req("pc1", T.PRECOMMIT1, 1, selector=TestSelectors.alloc),
                           view) == (
            "PC1 needs a seal path with room for new sealed, cache files: no seal path of w1 "
            "has 483.2 GiB free")

    def test_fits_no_worker_even_idle(self) -> None:
        sched = scheduler(worker("small", ram=32 * GIB), worker("no-swap", ram=128 * GIB))
        task = req("c2", T.COMMIT2, 1)
        assert self.reason(sched, task, StorageView()) == (
            "C2 fits no worker that may run it, even idle: no-swap has 128 GiB of RAM + swap "
            "free, it needs 182 GiB; small has 32 GiB of RAM, it needs 62 GiB")

    def test_max_concurrent_and_waiting_for_a_window(self) -> None:
        table = parse_resource_env({"PC1_32G_MAX_CONCURRENT": "1"})
        w = worker("w1", ram=TIB, table=table)
        w.active.add("running", w.need(T.PRECOMMIT1, P32), w.resources)
        sched = scheduler(w)
        assert self.reason(sched, req("pc1", T.PRECOMMIT1, 1), StorageView()) == \
            "w1 already run(s) MaxConcurrent = 1 PC1 task(s)"
        sched.add_worker(worker("w2"))
        sched.schedule()
        assert sched.waiting_reason("pc1") == "waiting for a window of w2"
        sched.open_window("w2")
        assert sched.waiting_reason("pc1") == "waiting for the next scheduling pass (w2 may " \
            "take it)"
        assert placed(sched.schedule()) == {"pc1": "w2"}
        assert sched.waiting_reason("pc1") is None

    def test_affinity_is_per_agent_not_per_path(self) -> None:
        """The agent holding the unsealed file allocates on another of its own paths, and a
        path several agents share counts for each."""
        home = worker("home", paths=("full", "roomy"))
        other = worker("other", paths=("p3",))
        view = StorageView({"full": PathStat("full", available=0),
                            "roomy": PathStat("roomy", available=TIB),
                            "p3": PathStat("p3", available=TIB)},
                           {SectorID(1000, 7): {FileType.UNSEALED: frozenset({"full"})}})
        sched = scheduler(home, other, affinity=True)
        sched.add_task(req("pc1", T.PRECOMMIT1, 7, selector=TestSelectors.alloc), view)
        assert placed(sched.schedule(view)) == {"pc1": "home"}
        shared = StorageView({"nfs": PathStat("nfs", available=TIB)},
                             {SectorID(1000, 8): {FileType.UNSEALED: frozenset({"nfs"})}})
        sched = scheduler(*(worker(w, paths=("nfs",) if w != "c" else (), ram=100 * GIB)
                            for w in ("a", "b", "c")), affinity=True)
        sched.add_tasks([req(f"pc1-{n}", T.PRECOMMIT1, 8, selector=TestSelectors.alloc)
                         for n in range(2)], shared)
        assert set(placed(sched.schedule(shared)).values()) == {"a", "b"}

    def test_sched_diag_says_why_each_request_waits(self) -> None:
        sched = scheduler(worker("w1", ALWAYS))
        sched.add_tasks([req("pc1", T.PRECOMMIT1, 1), req("pc1-b", T.PRECOMMIT1, 2)])
        waiting = {r["SchedId"]: r["Waiting"] for r in sched.diag()["SchedInfo"]["Requests"]}
        assert waiting == dict.fromkeys(("pc1", "pc1-b"),
                                        "no connected worker offers PC1 (seal/v0/precommit/1)")


# --- assigners ----------------------------------------------------------------------------

class TestAssigners:
    def test_utilization_assigner_picks_the_least_loaded_worker(self) -> None:
        busy = worker("busy")
        busy.active.add("x", busy.need(T.PRECOMMIT1, P32), busy.resources)
        sched = scheduler(busy, worker("idle"))
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        assert placed(sched.schedule()) == {"pc1": "idle"}

    def test_utilization_assigner_spreads_a_batch_over_equal_workers(self) -> None:
        sched = scheduler(*(worker(f"w{i}") for i in range(4)))
        sched.add_tasks(pc1s(4))
        assert sorted(placed(sched.schedule()).values()) == ["w0", "w1", "w2", "w3"]

    def test_ties_go_to_the_worker_whose_window_waited_longest(self) -> None:
        sched = Scheduler()
        for wid in ("w1", "w2"):
            sched.add_worker(worker(wid))
        sched.open_window("w2")
        sched.open_window("w1")
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        assert placed(sched.schedule()) == {"pc1": "w2"}

    def test_spread_assigner_counts_tasks_given_this_pass_not_load(self) -> None:
        busy = worker("busy", mem_used=200 * GIB)
        tasks = [req(f"ap-{n}", T.ADD_PIECE, n) for n in range(4)]
        by_util = scheduler(busy, worker("idle"))
        by_util.add_tasks(tasks)
        assert set(placed(by_util.schedule()).values()) == {"idle"}
        busy = worker("busy", mem_used=200 * GIB)
        by_count = scheduler(busy, worker("idle"), assigner="spread")
        by_count.add_tasks([req(f"ap-{n}", T.ADD_PIECE, n) for n in range(4)])
        assert sorted(placed(by_count.schedule()).values()) == ["busy", "busy", "idle", "idle"]

    @pytest.mark.parametrize(("assigner", "ap_on"), [("spread", "w2"), ("spread-tasks", "w1")])
    def test_spread_tasks_counts_per_task_type(self, assigner: str, ap_on: str) -> None:
        sched = scheduler(worker("w1"), worker("w2"), assigner=assigner)
        sched.add_tasks([req("pc1", T.PRECOMMIT1, 1), req("ap", T.ADD_PIECE, 2)])
        assert placed(sched.schedule()) == {"pc1": "w1", "ap": ap_on}

    @pytest.mark.parametrize(("assigner", "expected"), [
        ("spread", "w1"), ("experiment-spread-qcount", "w2"),
        ("spread-tasks-qcount", "w2")])
    def test_spread_qcount_also_counts_tasks_already_on_the_worker(self, assigner: str,
                                                                   expected: str) -> None:
        w1 = worker("w1")
        w1.active.add("running", w1.need(T.ADD_PIECE, P32), w1.resources)
        sched = scheduler(w1, worker("w2"), assigner=assigner)
        sched.add_task(req("ap", T.ADD_PIECE, 1))
        assert placed(sched.schedule()) == {"ap": expected}

    def test_spread_tasks_qcount_counts_only_the_same_task_type(self) -> None:
        w1 = worker("w1")
        w1.active.add("running", w1.need(T.ADD_PIECE, P32), w1.resources)
        sched = scheduler(w1, worker("w2"), assigner="spread-tasks-qcount")
        sched.add_task(req("pc1", T.PRECOMMIT1, 1))
        assert placed(sched.schedule()) == {"pc1": "w1"}

    def test_random_assigner_is_reproducible_with_its_seed(self) -> None:
        def run(seed: int) -> list[str]:
            sched = Scheduler(Assigner.parse("experiment-random", seed))
            for i in range(8):
                sched.add_worker(worker(f"w{i}"))
                sched.open_window(f"w{i}")
            sched.add_tasks(pc1s(12))
            return [a.worker_id for a in sched.schedule()]
        assert run(3) == run(3)
        assert len(set(run(3))) > 1

    def test_assigner_names_accept_lotus_spellings(self) -> None:
        assert Assigner.parse("").name == "utilization"
        assert Assigner.parse("experiment-spread-tasks-qcount").name == "spread-tasks-qcount"
        with pytest.raises(ConfigError, match="darts"):
            Assigner.parse("darts")


# --- the pass as a whole --------------------------------------------------------------------

def random_cluster(seed: int, tasks: int) -> tuple[Scheduler, StorageView]:
    rng = random.Random(seed)
    sched = Scheduler()
    paths = {}
    for i in range(12):
        kind = rng.choice([ALWAYS | {T.ADD_PIECE, T.PRECOMMIT1}, ALWAYS | {T.PRECOMMIT2},
                           ALWAYS | {T.COMMIT2}, SEALING])
        sched.add_worker(worker(f"w{i:02d}", kind, ram=rng.choice([256, 512]) * GIB,
                                gpus=rng.choice([0, 1, 2]), paths=(f"p{i}",),
                                mem_used=rng.randrange(8) * GIB))
        paths[f"p{i}"] = PathStat(f"p{i}", available=rng.choice([2, 10]) * TIB)
    for wid in list(sched.workers) * 2:
        sched.open_window(wid)
    sectors = {n: f"p{rng.randrange(12)}" for n in range(tasks)}
    view = storage(*paths.values(), sectors=sectors)
    mix: list[tuple[TaskType, Selector]] = [
        (T.ADD_PIECE, AllocSelector(FileType.UNSEALED)), (T.PRECOMMIT1, AllocSelector(SEAL)),
        (T.PRECOMMIT2, ExistingSelector(SEAL, allow_fetch=True)),
        (T.COMMIT1, ExistingSelector(SEAL)), (T.COMMIT2, TaskSelector()),
        (T.FINALIZE, ExistingSelector(FileType.CACHE))]
    queue = []
    for n in range(tasks):
        task_type, selector = rng.choice(mix)
        queue.append(req(f"t{n}", task_type, n, proof=rng.choice([P32, P32S]),
                         priority=rng.choice([0, 0, 1024]), selector=selector))
    sched.add_tasks(queue, view)
    return sched, view


def test_schedule_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        sched, view = random_cluster(5, 400)
        runs.append([(a.task.task_id, a.worker_id, a.window_id, a.threads, a.gpu)
                     for a in sched.schedule(view)])
    assert runs[0] == runs[1] and len(runs[0]) > 20


def test_every_window_holds_only_what_fits_an_idle_worker() -> None:
    sched, view = random_cluster(9, 600)
    assignments = sched.schedule(view)
    replayed = 0
    for w in sched.workers.values():
        for window in w.assigned.values():
            acc = ActiveResources()
            for task in window.todo:
                need = w.need(task.task_type, task.proof)
                assert acc.can_handle(task.task_id, need, w.resources)
                acc.add(task.task_id, need, w.resources)
                replayed += 1
            assert acc.mem_used_min == window.allocated.mem_used_min
            assert acc.cpu_use == window.allocated.cpu_use
    assert replayed == len(assignments) > 50


def test_pass_cost_does_not_grow_with_queue_length() -> None:
    stats = []
    for count in (100, 10_000):
        sched = scheduler(worker("w1"), worker("w2"), windows=2)
        sched.add_tasks(pc1s(count) + [req(f"ap-{n}", T.ADD_PIECE, n) for n in range(count)])
        assigned = len(sched.schedule())
        assert 12 < assigned < count
        stats.append((assigned, sched.last_pass.probes, sched.last_pass.groups_visited))
    assert stats[0] == stats[1]


def test_diag_reports_queue_in_order_open_windows_workers_and_last_pass() -> None:
    sched = scheduler(worker("w1", ram=72 * GIB), worker("w2", ALWAYS), windows=2)
    sched.add_tasks([req("ap", T.ADD_PIECE, 3), req("fin", T.FINALIZE, 9, priority=5),
                     req("pc1", T.PRECOMMIT1, 1, priority=1024)])
    before = sched.diag()
    assert [r["SchedId"] for r in before["SchedInfo"]["Requests"]] == ["fin", "pc1", "ap"]
    assert before["SchedInfo"]["Requests"][1] == {
        "Priority": 1024, "SchedId": "pc1", "Sector": {"Miner": 1000, "Number": 1},
        "TaskType": "seal/v0/precommit/1",
        "Waiting": "waiting for the next scheduling pass (w1 may take it)"}
    assert before["SchedInfo"]["OpenWindows"] == ["w1", "w1", "w2", "w2"]
    sched.schedule()
    after = sched.diag()
    assert after["LastPass"]["Assigned"] == 3 and after["LastPass"]["Queued"] == 3
    assert after["Workers"]["w1"]["AssignedWindows"] == [1]
    assert after["Workers"]["w2"]["AssignedWindows"] == [3]
    assert after["SchedInfo"]["Requests"] == [] and after["SchedInfo"]["OpenWindows"] == [
        "w1", "w2"]
    assert after["Assigner"] == "utilization" and after["SectorAffinity"] is False


def test_waiting_reasons_of_many_tasks_equal_each_ones_reason() -> None:
    sched, view = random_cluster(11, 300)
    sched.schedule(view)
    queued = [t.task_id for t in sched.queue.ordered()]
    assert queued
    reasons = sched.waiting_reasons([*queued, "not-queued"], view)
    assert set(reasons) == set(queued)
    assert reasons == {t: sched.waiting_reason(t, view) for t in queued}
