"""The request queue: Lotus' order (tier, priority, task order, sector number) and groups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealagent.errors import SchedulerError
from sealagent.sched.queue import RequestQueue, SchedTask, packed_key, queue_key
from sealagent.sched.selectors import AllocSelector, ExistingSelector
from sealagent.vocab.registry import RegisteredSealProof
from sealagent.vocab.sectors import FileType, SectorID
from sealagent.vocab.tasks import TaskType

T = TaskType
P32 = RegisteredSealProof.StackedDrg32GiBV1_1
P64 = RegisteredSealProof.StackedDrg64GiBV1_1


def order_of(*tasks: SchedTask) -> list[str]:
    queue = RequestQueue()
    for task in tasks:
        queue.add(task)
    return [t.task_id for t in queue.ordered()]


def req(task_id: str, task_type: TaskType, number: int, priority: int = 0,
        proof: RegisteredSealProof = P32) -> SchedTask:
    return SchedTask(task_id, task_type, proof, SectorID(1000, number), priority)


def test_queue_order_high_priority_tier_before_sector_priority() -> None:
    assert order_of(req("pc1-deal", T.PRECOMMIT1, 1, priority=1024),
                    req("fin", T.FINALIZE, 2), req("get", T.FETCH, 3)) == [
        "fin", "get", "pc1-deal"]


def test_queue_order_priority_before_task_type_order() -> None:
    assert order_of(req("c1", T.COMMIT1, 1), req("ap-deal", T.ADD_PIECE, 2, priority=1024)) \
        == ["ap-deal", "c1"]


def test_queue_order_priority_decides_inside_the_high_priority_tier() -> None:
    assert order_of(req("wnp", T.WINNING_POST, 1), req("get", T.FETCH, 2, priority=5)) == [
        "get", "wnp"]


def test_queue_order_task_type_order_before_sector_number() -> None:
    assert order_of(req("ap", T.ADD_PIECE, 1), req("pc1", T.PRECOMMIT1, 9),
                    req("pc2", T.PRECOMMIT2, 20), req("uns", T.UNSEAL, 30)) == [
        "uns", "pc2", "pc1", "ap"]


def test_queue_order_sector_number_ascending_across_proofs() -> None:
    assert order_of(req("b", T.PRECOMMIT1, 7, proof=P64), req("c", T.PRECOMMIT1, 9),
                    req("a", T.PRECOMMIT1, 3)) == ["a", "b", "c"]


def test_queue_order_arrival_breaks_full_ties() -> None:
    assert order_of(req("first", T.PRECOMMIT1, 5), req("second", T.PRECOMMIT1, 5)) == [
        "first", "second"]


def test_queue_order_fru_is_ordinary_tier_before_unseal() -> None:
    assert order_of(req("uns", T.UNSEAL, 1), req("fru", T.FINALIZE_REPLICA_UPDATE, 2),
                    req("get", T.FETCH, 3)) == ["get", "fru", "uns"]
    assert order_of(req("uns", T.UNSEAL, 1, priority=1),
                    req("fru", T.FINALIZE_REPLICA_UPDATE, 2)) == ["uns", "fru"]


def test_queue_groups_interchangeable_requests() -> None:
    queue = RequestQueue()
    alloc = AllocSelector(FileType.SEALED | FileType.CACHE)
    for i, proof in enumerate([P32, P32, P64]):
        queue.add(SchedTask(f"pc1-{i}", T.PRECOMMIT1, proof, SectorID(1, i), 0, alloc))
    existing = ExistingSelector(FileType.CACHE)
    queue.add(SchedTask("fin-a", T.FINALIZE, P32, SectorID(1, 10), 0, existing), "path-a")
    queue.add(SchedTask("fin-b", T.FINALIZE, P32, SectorID(1, 11), 0, existing), "path-b")
    assert sorted(len(g.entries) for g in queue.groups) == [1, 1, 1, 2]


def test_queue_add_many_sorts_like_add() -> None:
    queue = RequestQueue()
    queue.add_many((req(f"t{n}", T.PRECOMMIT1, n), None) for n in (5, 1, 3))
    queue.add(req("t2", T.PRECOMMIT1, 2))
    assert [t.task_id for t in queue.ordered()] == ["t1", "t2", "t3", "t5"]


def test_queue_remove_and_refuse_duplicates() -> None:
    queue = RequestQueue()
    queue.add(req("a", T.PRECOMMIT1, 1))
    queue.add(req("b", T.PRECOMMIT1, 2))
    with pytest.raises(SchedulerError, match="already queued"):
        queue.add(req("a", T.PRECOMMIT1, 3))
    assert queue.remove("a").task_id == "a"
    assert "a" not in queue and len(queue) == 1 and queue.get("b") is not None
    with pytest.raises(SchedulerError, match="no queued task"):
        queue.remove("a")
    queue.remove("b")
    assert queue.groups == [] and list(queue.ordered()) == []


def test_queue_relocate_changes_group_but_keeps_the_place() -> None:
    queue = RequestQueue()
    existing = ExistingSelector(FileType.CACHE)
    for n, where in ((1, "path-a"), (2, "path-b"), (3, "path-a")):
        queue.add(SchedTask(f"fin-{n}", T.FINALIZE, P32, SectorID(1, n), 0, existing), where)
    queue.relocate("fin-1", "path-b")
    queue.relocate("fin-2", "path-b")  # unchanged
    groups = {g.key[3]: [e[-1].task_id for e in g.entries] for g in queue.groups}
    assert groups == {"path-a": ["fin-3"], "path-b": ["fin-1", "fin-2"]}
    assert [t.task_id for t in queue.ordered()] == ["fin-1", "fin-2", "fin-3"]
    moved = queue.get("fin-1")
    assert moved is not None and moved.locality == "path-b"
    queue.relocate("fin-3", "path-c")
    assert sorted(str(g.key[3]) for g in queue.groups) == ["path-b", "path-c"]
    with pytest.raises(SchedulerError, match="no queued task"):
        queue.relocate("fin-9", "path-a")


@pytest.mark.parametrize("kwargs", [dict(task_id=""), dict(task_type="PC9"), dict(proof=99),
                                    dict(sector=(1,)), dict(sector=(1, -2)),
                                    dict(priority="high")])
def test_sched_task_refuses_malformed_requests(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = dict(task_id="t", task_type="PC1", proof=8, sector=(1000, 1))
    args.update(kwargs)
    with pytest.raises(SchedulerError):
        SchedTask(**args)  # type: ignore[arg-type]


def test_sched_task_normalizes_names_and_ids() -> None:
    task = SchedTask("t", "PC1", "8", (1000, 4))  # type: ignore[arg-type]
    assert task.task_type is T.PRECOMMIT1 and task.proof is P32
    assert task.sector == SectorID(1000, 4)


_keys = st.tuples(st.sampled_from(list(TaskType)), st.integers(-(2**63), 2**63 - 1),
                  st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))


@given(_keys, _keys)
def test_packed_key_orders_exactly_like_the_queue_key(a: tuple[TaskType, int, int, int],
                                                      b: tuple[TaskType, int, int, int]) -> None:
    ka, kb = queue_key(a[0], a[1], a[2]), queue_key(b[0], b[1], b[2])
    pa, pb = packed_key(ka, a[3]), packed_key(kb, b[3])
    assert (pa < pb) == ((*ka, a[3]) < (*kb, b[3]))
    assert (pa == pb) == ((*ka, a[3]) == (*kb, b[3]))


def test_queue_refuses_priorities_and_numbers_outside_lotus_ranges() -> None:
    with pytest.raises(SchedulerError, match="64-bit"):
        req("t", T.PRECOMMIT1, 1, priority=2**63)
    with pytest.raises(SchedulerError, match="out of range"):
        SchedTask("t", T.PRECOMMIT1, P32, (1000, 2**64), 0)  # type: ignore[arg-type]
