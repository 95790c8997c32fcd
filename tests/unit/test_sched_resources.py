"""The resource table: Lotus' defaults, the thread rules, env overrides, JSON, the CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from sealagent.cli import COMMAND_MODULES
from sealagent.cli import resources as resources_cli
from sealagent.errors import ConfigError
from sealagent.sched.resources import (
    DEFAULT_TABLE,
    ZERO_RESOURCES,
    EnvListing,
    GpuInfo,
    ResourceFiltering,
    Resources,
    ResourceTable,
    WorkerResources,
    parse_resource_env,
    resource_env_lines,
)
from sealagent.vocab.registry import GIB, KIB, MIB, RegisteredSealProof
from sealagent.vocab.tasks import TaskType

P = RegisteredSealProof
T = TaskType


def spec(task_type: TaskType, proof: RegisteredSealProof = P.StackedDrg32GiBV1_1,
         table: ResourceTable = DEFAULT_TABLE) -> Resources:
    return table.spec(proof, task_type)


# --- thread rules -------------------------------------------------------------------------

@pytest.mark.parametrize(("cpus", "threads"), [(12, 11), (16, 14), (24, 22), (32, 29),
                                               (64, 58), (128, 117)])
def test_threads_92_percent_rule_matches_lotus_table(cpus: int, threads: int) -> None:
    assert Resources(max_parallelism=-1).threads(cpus, 0) == threads


def test_threads_92_percent_rule_16_cpus_gives_14() -> None:
    assert spec(T.PRECOMMIT2).threads(16, 0) == 14


def test_threads_92_percent_rule_one_cpu_rounds_to_zero_so_takes_all() -> None:
    assert Resources(max_parallelism=-1).threads(1, 0) == 1


def test_threads_gpu_variant_applies_only_when_worker_has_gpu() -> None:
    pc2 = spec(T.PRECOMMIT2)
    assert pc2.threads(64, 1) == 6
    assert pc2.threads(64, 0) == 58


def test_threads_gpu_variant_zero_inherits_max_parallelism() -> None:
    c2_512m = spec(T.COMMIT2, P.StackedDrg512MiBV1_1)
    assert c2_512m.max_parallelism_gpu == 0
    assert c2_512m.threads(64, 2) == 1


def test_threads_zero_parallelism_takes_no_thread_slot() -> None:
    assert spec(T.COMMIT1).threads(64, 0) == 0
    assert spec(T.FETCH).threads(64, 0) == 0


# --- the default table --------------------------------------------------------------------

@pytest.mark.parametrize(("task_type", "proof", "expected"), [
    (T.ADD_PIECE, P.StackedDrg64GiBV1, Resources(8 * GIB, 8 * GIB, 0, 1, 0, GIB)),
    (T.PRECOMMIT1, P.StackedDrg32GiBV1, Resources(56 * GIB, 64 * GIB, 0, 1, 0, 10 * MIB)),
    (T.PRECOMMIT1, P.StackedDrg512MiBV1, Resources(768 * MIB, GIB, 0, 1, 0, MIB)),
    (T.PRECOMMIT2, P.StackedDrg64GiBV1, Resources(30 * GIB, 30 * GIB, 1.0, -1, 6, GIB)),
    (T.PRECOMMIT2, P.StackedDrg512MiBV1, Resources(GIB, 3 * GIB // 2, 0, -1, 0, GIB)),
    (T.COMMIT1, P.StackedDrg8MiBV1, Resources(8 * MIB, 8 * MIB, 0, 0, 0, 8 * MIB)),
    (T.COMMIT2, P.StackedDrg32GiBV1, Resources(30 * GIB, 150 * GIB, 1.0, -1, 6, 32 * GIB)),
    (T.COMMIT2, P.StackedDrg64GiBV1, Resources(60 * GIB, 190 * GIB, 1.0, -1, 6, 64 * GIB)),
    (T.COMMIT2, P.StackedDrg512MiBV1, Resources(GIB, 3 * GIB // 2, 1.0, 1, 0, 10 * GIB)),
    (T.FETCH, P.StackedDrg2KiBV1, Resources(MIB, MIB, 0, 0, 0, 0)),
    (T.REPLICA_UPDATE, P.StackedDrg32GiBV1, Resources(4 * GIB, 4 * GIB, 1.0, 1, 6, GIB)),
    (T.REPLICA_UPDATE, P.StackedDrg2KiBV1, Resources(2 * KIB, 2 * KIB, 1.0, 1, 0, 2 * KIB)),
    (T.WINDOW_POST, P.StackedDrg32GiBV1, Resources(30 * GIB, 96 * GIB, 1.0, -1, 6, 32 * GIB)),
    (T.WINNING_POST, P.StackedDrg512MiBV1, Resources(2 * KIB, 2 * KIB, 1.0, 1, 0, 10 * GIB)),
    (T.WINNING_POST, P.StackedDrg64GiBV1, Resources(GIB, GIB, 1.0, -1, 6, 64 * GIB)),
])
def test_default_table_matches_lotus_numbers(task_type: TaskType, proof: RegisteredSealProof,
                                             expected: Resources) -> None:
    assert spec(task_type, proof) == expected


def test_default_table_copies_v1_to_v1_1_and_synthetic_porep_of_same_size() -> None:
    for task_type in DEFAULT_TABLE.entries:
        for size in range(5):
            v1 = spec(task_type, P(size))
            assert spec(task_type, P(size + 5)) == v1
            assert spec(task_type, P(size + 10)) == v1


def test_default_table_maps_ni_porep_ids_to_the_v1_entry_of_their_size() -> None:
    assert spec(T.COMMIT2, P.StackedDrg32GiBV1_2_Feat_NonInteractivePoRep) == spec(
        T.COMMIT2, P.StackedDrg32GiBV1)
    assert spec(T.PRECOMMIT1, P.StackedDrg64GiBV1_2_Feat_NonInteractivePoRep).min_memory \
        == 112 * GIB


def test_derived_entries_unseal_regen_and_replica_update_proofs() -> None:
    for proof in (P.StackedDrg2KiBV1, P.StackedDrg32GiBV1_1, P.StackedDrg64GiBV1_1):
        assert spec(T.UNSEAL, proof) == spec(T.PRECOMMIT1, proof)
        assert spec(T.REGEN_SECTOR_KEY, proof) == spec(T.REPLICA_UPDATE, proof)
        assert spec(T.PROVE_REPLICA_UPDATE_1, proof) == spec(T.COMMIT1, proof)
        assert spec(T.PROVE_REPLICA_UPDATE_2, proof) == spec(T.COMMIT2, proof)


def test_datacid_uses_the_32g_addpiece_entry_for_every_proof() -> None:
    for proof in P:
        assert spec(T.DATA_CID, proof) == spec(T.ADD_PIECE, P.StackedDrg32GiBV1)


@pytest.mark.parametrize("task_type", [T.FINALIZE, T.FINALIZE_UNSEALED,
                                       T.FINALIZE_REPLICA_UPDATE, T.DOWNLOAD_SECTOR])
def test_tasks_without_entry_need_zero_resources(task_type: TaskType) -> None:
    assert spec(task_type) == ZERO_RESOURCES


def test_worker_table_entry_wins_and_missing_entries_fall_back_to_defaults() -> None:
    custom = ResourceTable({T.PRECOMMIT1: {P.StackedDrg32GiBV1_1: Resources(min_memory=1)}})
    assert spec(T.PRECOMMIT1, table=custom).min_memory == 1
    assert spec(T.PRECOMMIT1, P.StackedDrg64GiBV1_1, table=custom).min_memory == 112 * GIB
    assert spec(T.COMMIT2, table=custom) == spec(T.COMMIT2)


@pytest.mark.parametrize("bad", [dict(min_memory=-1), dict(max_parallelism=-2),
                                 dict(gpu_utilization=float("nan")), dict(max_concurrent=1.5)])
def test_resources_refuse_invalid_values(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Resources(**bad)  # type: ignore[arg-type]


# --- environment overrides ----------------------------------------------------------------

def test_env_override_size_specific_beats_generic() -> None:
    table = parse_resource_env({"PC1_32G_MAX_CONCURRENT": "4", "PC1_MAX_CONCURRENT": "2"})
    assert spec(T.PRECOMMIT1, table=table).max_concurrent == 4
    assert spec(T.PRECOMMIT1, P.StackedDrg32GiBV1, table=table).max_concurrent == 4
    assert spec(T.PRECOMMIT1, P.StackedDrg64GiBV1_1, table=table).max_concurrent == 2
    assert spec(T.PRECOMMIT2, table=table).max_concurrent == 0


def test_env_override_parses_each_field_kind() -> None:
    table = parse_resource_env({"C2_64G_GPU_UTILIZATION": "0.5",
                                "PC2_MAX_PARALLELISM_GPU": "8",
                                "GET_32G_MAX_CONCURRENT": "2",
                                "AP_2K_MIN_MEMORY": "4096"})
    assert spec(T.COMMIT2, P.StackedDrg64GiBV1_1, table).gpu_utilization == 0.5
    assert spec(T.PRECOMMIT2, P.StackedDrg2KiBV1, table).max_parallelism_gpu == 8
    assert spec(T.FETCH, table=table).max_concurrent == 2
    assert spec(T.ADD_PIECE, P.StackedDrg2KiBV1_1, table).min_memory == 4096


def test_env_override_unrelated_variables_leave_defaults() -> None:
    assert parse_resource_env({"PATH": "/bin", "PC9_MAX_CONCURRENT": "1"}).entries \
        == DEFAULT_TABLE.entries


@pytest.mark.parametrize(("name", "value"), [
    ("PC1_32G_MAX_CONCURRENT", "x"), ("PC1_32G_MAX_CONCURRENT", "1.5"),
    ("PC1_32G_MAX_CONCURRENT", "-1"), ("C2_MIN_MEMORY", "-1"), ("C2_MIN_MEMORY", "+5"),
    ("C2_64G_GPU_UTILIZATION", "nan"), ("C2_64G_GPU_UTILIZATION", "-0.5"),
    ("PC2_MAX_PARALLELISM", "-2"), ("AP_MAX_MEMORY", ""),
])
def test_env_override_bad_value_raises_config_error_naming_the_variable(name: str,
                                                                        value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        parse_resource_env({name: value})


def test_env_override_minus_one_parallelism_is_the_92_percent_rule() -> None:
    table = parse_resource_env({"AP_MAX_PARALLELISM": "-1"})
    assert spec(T.ADD_PIECE, table=table).threads(32, 0) == 29


def test_env_override_datacid_takes_only_the_size_independent_name() -> None:
    table = parse_resource_env({"DC_MAX_CONCURRENT": "3"})
    assert all(spec(T.DATA_CID, p, table).max_concurrent == 3 for p in P)
    with pytest.raises(ConfigError, match=r"DC_32G_MAX_CONCURRENT.*DC_MAX_CONCURRENT"):
        parse_resource_env({"DC_32G_MAX_CONCURRENT": "3"})


@pytest.mark.parametrize(("env", "threads"), [
    ({}, 1),
    ({"FIL_PROOFS_USE_MULTICORE_SDR": "1"}, 4),
    ({"FIL_PROOFS_USE_MULTICORE_SDR": "1", "FIL_PROOFS_MULTICORE_SDR_PRODUCERS": "7"}, 8),
    ({"FIL_PROOFS_USE_MULTICORE_SDR": "true"}, 1),
    ({"FIL_PROOFS_MULTICORE_SDR_PRODUCERS": "7"}, 1),
])
def test_sdr_rule_pc1_and_unseal_threads_are_producers_plus_one(env: dict[str, str],
                                                                threads: int) -> None:
    table = parse_resource_env(env)
    assert spec(T.PRECOMMIT1, table=table).max_parallelism == threads
    assert spec(T.UNSEAL, P.StackedDrg64GiBV1, table).max_parallelism == threads
    assert spec(T.PRECOMMIT2, table=table) == spec(T.PRECOMMIT2)


def test_sdr_rule_not_applied_when_max_parallelism_is_set() -> None:
    table = parse_resource_env({"FIL_PROOFS_USE_MULTICORE_SDR": "1",
                                "PC1_32G_MAX_PARALLELISM": "2", "UNS_MAX_PARALLELISM": "5"})
    assert spec(T.PRECOMMIT1, table=table).max_parallelism == 2
    assert spec(T.PRECOMMIT1, P.StackedDrg64GiBV1_1, table).max_parallelism == 4
    assert spec(T.UNSEAL, table=table).max_parallelism == 5


def test_sdr_producers_parse_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="FIL_PROOFS_MULTICORE_SDR_PRODUCERS"):
        parse_resource_env({"FIL_PROOFS_USE_MULTICORE_SDR": "1",
                            "FIL_PROOFS_MULTICORE_SDR_PRODUCERS": "three"})


def test_env_listing_default_has_lotus_documented_values() -> None:
    lines = resource_env_lines({}, EnvListing.DEFAULT)
    assert lines == sorted(lines)
    assert "PC1_32G_MIN_MEMORY=60129542144" in lines
    assert "C2_32G_MAX_MEMORY=161061273600" in lines
    assert "PC2_64G_GPU_UTILIZATION=1" in lines
    assert "DC_MIN_MEMORY=4294967296" in lines
    assert not any(line.startswith("DC_32G_") for line in lines)
    assert not any(line.startswith("FIN_") for line in lines)


def test_env_listing_set_prints_only_the_set_overrides_sorted() -> None:
    env = {"PC1_32G_MAX_CONCURRENT": "4", "AP_MAX_CONCURRENT": "1", "HOME": "/root",
           "FIL_PROOFS_USE_MULTICORE_SDR": "1"}
    assert resource_env_lines(env) == ["AP_MAX_CONCURRENT=1", "FIL_PROOFS_USE_MULTICORE_SDR=1",
                                       "PC1_32G_MAX_CONCURRENT=4"]


def test_env_listing_all_merges_set_values_into_defaults() -> None:
    lines = resource_env_lines({"PC1_32G_MAX_CONCURRENT": "4"}, EnvListing.ALL)
    assert "PC1_32G_MAX_CONCURRENT=4" in lines
    assert "PC1_32G_MAX_CONCURRENT=0" not in lines
    assert "PC1_64G_MAX_CONCURRENT=0" in lines


def test_env_listing_set_validates_values() -> None:
    with pytest.raises(ConfigError, match="AP_MAX_CONCURRENT"):
        resource_env_lines({"AP_MAX_CONCURRENT": "many"})


# --- JSON ---------------------------------------------------------------------------------

def test_table_json_round_trip() -> None:
    table = parse_resource_env({"PC1_32G_MAX_CONCURRENT": "4", "C2_GPU_UTILIZATION": "0.5"})
    data = json.loads(json.dumps(table.to_json()))
    assert data["seal/v0/precommit/1"]["8"]["max_concurrent"] == 4
    assert ResourceTable.from_json(data).entries == table.entries


@pytest.mark.parametrize("data", [
    [], {"seal/v0/nope": {}}, {"seal/v0/addpiece": {"99": {}}},
    {"seal/v0/addpiece": {"8": {"min_memory": -1}}},
    {"seal/v0/addpiece": {"8": {"memory": 1}}}, {"seal/v0/addpiece": []},
])
def test_table_json_errors_are_config_errors(data: object) -> None:
    with pytest.raises(ConfigError):
        ResourceTable.from_json(data)


def test_worker_resources_json_round_trip_and_missing_table_means_defaults() -> None:
    res = WorkerResources(cpus=64, mem_physical=256 * GIB, mem_used=GIB, mem_swap=8 * GIB,
                          gpus=(GpuInfo("NVIDIA H100", 80 * GIB),))
    again = WorkerResources.from_json(json.loads(json.dumps(res.to_json())))
    assert again.gpu_count == 1 and again.vmem_total == 264 * GIB
    assert again.table.entries == DEFAULT_TABLE.entries
    data = res.to_json()
    del data["table"]
    assert WorkerResources.from_json(data).table is DEFAULT_TABLE


@pytest.mark.parametrize("data", [{"cpus": 0, "mem_physical": 1}, {"cpus": 4},
                                  {"cpus": 4, "mem_physical": 1, "gpus": [{"memory": 1}]},
                                  {"cpus": 4, "mem_physical": 1, "mem_used": -1}, "x"])
def test_worker_resources_refuse_bad_reports(data: object) -> None:
    with pytest.raises(ConfigError):
        WorkerResources.from_json(data)


def test_resource_filtering_disabled_ignores_resources() -> None:
    assert ResourceFiltering.parse("disabled").ignores_resources
    assert not ResourceFiltering.parse(" Hardware ").ignores_resources
    with pytest.raises(ConfigError):
        ResourceFiltering.parse("off")


# --- the command --------------------------------------------------------------------------

def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sealagent")
    resources_cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_cli_resources_is_a_registered_command() -> None:
    assert "resources" in COMMAND_MODULES


def test_cli_resources_prints_set_overrides(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PC1_32G_MAX_CONCURRENT", "4")
    assert run_cli("resources") == 0
    assert "PC1_32G_MAX_CONCURRENT=4" in capsys.readouterr().out.splitlines()


def test_cli_resources_default_prints_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("resources", "--default") == 0
    out = capsys.readouterr().out.splitlines()
    assert "PC1_32G_MIN_MEMORY=60129542144" in out
    assert len(out) == len(resource_env_lines({}, EnvListing.DEFAULT))


def test_cli_resources_all_shows_the_set_value(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("C2_64G_GPU_UTILIZATION", "0.5")
    assert run_cli("resources", "--all") == 0
    out = capsys.readouterr().out.splitlines()
    assert "C2_64G_GPU_UTILIZATION=0.5" in out and "C2_32G_GPU_UTILIZATION=1" in out


def test_cli_resources_bad_value_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PC1_32G_MAX_CONCURRENT", "lots")
    with pytest.raises(ConfigError, match="PC1_32G_MAX_CONCURRENT"):
        run_cli("resources")
