"""The resource table: what each task needs, per task type and registered proof.

The defaults are Lotus' ``storiface.ResourceTable`` number for number.  Entries are
written for the V1 proofs (ids 0–4) and copied to ``V1_1`` (5–9) and
``V1_1_Feat_SyntheticPoRep`` (10–14) of the same size, as Lotus does.  Lotus leaves the
``V1_2_Feat_NonInteractivePoRep`` ids (15–19) out of its table, which makes their tasks
free of any resource limit; here they get the V1 entries of their size too (NI-PoRep
seals the same graph; override ``C2_<size>_*`` if its larger proof needs more memory).

A worker may override any entry through its environment (Lotus' names)::

    <SHORT>_<SIZE>_<FIELD>   e.g. PC1_32G_MAX_CONCURRENT=4     (one sector size)
    <SHORT>_<FIELD>          e.g. PC2_MAX_PARALLELISM_GPU=8    (every size)

Size-specific beats generic beats default.  PreCommit1 and Unseal get
``MAX_PARALLELISM = producers + 1`` unless one of their ``MAX_PARALLELISM`` variables is
set, where producers is ``FIL_PROOFS_MULTICORE_SDR_PRODUCERS`` (default 3) when
``FIL_PROOFS_USE_MULTICORE_SDR=1`` and 0 otherwise.  Unlike Lotus, which silently turns
an unparsable value into 0, a bad value raises :class:`~sealagent.errors.ConfigError`
naming the variable.  DataCid does not depend on the sector size, so only ``DC_<FIELD>``
is accepted for it.

Everything here is pure: the environment is passed in as a mapping.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from sealagent.envvars import NumberKind, parse_number
from sealagent.errors import ConfigError, SchedulerError, UnknownProofError
from sealagent.vocab.registry import (
    GIB,
    KIB,
    MIB,
    RegisteredSealProof,
    default_proof,
    resolve_proof,
    size_name,
)
from sealagent.vocab.tasks import TaskType, parse_task_type

PARALLEL_NUM: Final = 92
PARALLEL_DENOM: Final = 100
"""A ``MaxParallelism`` of -1 takes ``cpus * 92 // 100`` threads (Lotus' 92 % rule)."""

DEFAULT_SDR_PRODUCERS: Final = 3
"""Producer threads of multicore SDR when ``FIL_PROOFS_MULTICORE_SDR_PRODUCERS`` is unset."""

SDR_TASKS: Final = frozenset({TaskType.PRECOMMIT1, TaskType.UNSEAL})
"""Tasks whose default threads follow the multicore-SDR rule."""


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task needs.  Field order and meaning follow Lotus' ``storiface.Resources``."""

    min_memory: int = 0
    """RAM that must be physically available for decent performance (bytes)."""
    max_memory: int = 0
    """Peak memory, swap included (bytes)."""
    gpu_utilization: float = 0.0
    """Fraction of GPUs the task occupies (0 = no GPU)."""
    max_parallelism: int = 0
    """CPU threads without a GPU; -1 = 92 % of the worker's threads."""
    max_parallelism_gpu: int = 0
    """CPU threads when a GPU is used; 0 = same as ``max_parallelism``."""
    base_min_memory: int = 0
    """Memory shared by all tasks of the kind (e.g. SNARK params): checked, never summed."""
    max_concurrent: int = 0
    """At most this many tasks of this (proof, task type) on one worker; 0 = unlimited."""

    def __post_init__(self) -> None:
        """Refuse values the scheduler cannot reason about."""
        for name in ("min_memory", "max_memory", "base_min_memory", "max_concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"resources: {name} must be an integer ≥ 0, got {value!r}")
        for name in ("max_parallelism", "max_parallelism_gpu"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ConfigError(f"resources: {name} must be an integer ≥ -1, got {value!r}")
        gpu = self.gpu_utilization
        if (isinstance(gpu, bool) or not isinstance(gpu, int | float) or not math.isfinite(gpu)
                or gpu < 0):
            raise ConfigError(f"resources: gpu_utilization must be a number ≥ 0, got {gpu!r}")

    def threads(self, cpus: int, gpus: int) -> int:
        """CPU threads the task takes on a worker with ``cpus`` threads and ``gpus`` GPUs.

        ``max_parallelism_gpu`` replaces ``max_parallelism`` when the task uses a GPU, the
        worker has one and the value is not 0; -1 means ``cpus * 92 // 100`` (or ``cpus``
        when that is 0).
        """
        mp = self.max_parallelism
        if self.gpu_utilization > 0 and gpus > 0 and self.max_parallelism_gpu != 0:
            mp = self.max_parallelism_gpu
        if mp == -1:
            n = cpus * PARALLEL_NUM // PARALLEL_DENOM
            return n if n > 0 else cpus
        return mp

    def to_json(self) -> dict[str, int | float]:
        """The JSON object of the protocol (snake_case field names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> Resources:
        """Parse :meth:`to_json` output; missing fields are 0, unknown fields an error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"resources must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"resources: unknown field(s) {', '.join(map(str, unknown))}")
        return cls(**{k: data[k] for k in known if k in data})


ZERO_RESOURCES: Final = Resources()
"""The needs of a task type without a table entry (Finalize, DownloadSector, ...)."""


@dataclass(frozen=True, slots=True)
class EnvField:
    """One resource field as an environment variable: attribute, suffix, value kind."""

    name: str
    suffix: str
    kind: NumberKind
    minimum: int = 0


ENV_FIELDS: Final[tuple[EnvField, ...]] = (
    EnvField("min_memory", "MIN_MEMORY", "bytes"),
    EnvField("max_memory", "MAX_MEMORY", "bytes"),
    EnvField("gpu_utilization", "GPU_UTILIZATION", "float"),
    EnvField("max_parallelism", "MAX_PARALLELISM", "int", -1),
    EnvField("max_parallelism_gpu", "MAX_PARALLELISM_GPU", "int", -1),
    EnvField("base_min_memory", "BASE_MIN_MEMORY", "bytes"),
    EnvField("max_concurrent", "MAX_CONCURRENT", "int"),
)
"""Resource fields with their env-var suffix, in Lotus' field order."""


# --- the default table ------------------------------------------------------------------

_Row = tuple[int, int, int, int, float, int]
"""(MinMemory, MaxMemory, MaxParallelism, MaxParallelismGPU, GPUUtilization, BaseMinMemory)"""

_SIZES: Final = (2 * KIB, 8 * MIB, 512 * MIB, 32 * GIB, 64 * GIB)


def _rows(r2k: _Row, r8m: _Row, r512m: _Row, r32g: _Row, r64g: _Row) -> dict[int, Resources]:
    return {size: Resources(min_memory=row[0], max_memory=row[1], max_parallelism=row[2],
                            max_parallelism_gpu=row[3], gpu_utilization=row[4],
                            base_min_memory=row[5])
            for size, row in zip(_SIZES, (r2k, r8m, r512m, r32g, r64g), strict=True)}


_ADD_PIECE = _rows((2 * KIB, 2 * KIB, 1, 0, 0, 2 * KIB), (8 * MIB, 8 * MIB, 1, 0, 0, 8 * MIB),
                   (GIB, GIB, 1, 0, 0, GIB), (4 * GIB, 4 * GIB, 1, 0, 0, GIB),
                   (8 * GIB, 8 * GIB, 1, 0, 0, GIB))
_PRECOMMIT1 = _rows((2 * KIB, 2 * KIB, 1, 0, 0, 2 * KIB),
                      (8 * MIB, 8 * MIB, 1, 0, 0, 8 * MIB),
                      (768 * MIB, GIB, 1, 0, 0, MIB), (56 * GIB, 64 * GIB, 1, 0, 0, 10 * MIB),
                      (112 * GIB, 128 * GIB, 1, 0, 0, 10 * MIB))
_PRECOMMIT2 = _rows((2 * KIB, 2 * KIB, -1, 0, 0, 2 * KIB),
                      (8 * MIB, 8 * MIB, -1, 0, 0, 8 * MIB),
                      (GIB, 3 * GIB // 2, -1, 0, 0, GIB), (15 * GIB, 15 * GIB, -1, 6, 1.0, GIB),
                      (30 * GIB, 30 * GIB, -1, 6, 1.0, GIB))
_COMMIT1 = _rows((2 * KIB, 2 * KIB, 0, 0, 0, 2 * KIB), (8 * MIB, 8 * MIB, 0, 0, 0, 8 * MIB),
                  (GIB, GIB, 0, 0, 0, GIB), (GIB, GIB, 0, 0, 0, GIB), (GIB, GIB, 0, 0, 0, GIB))
_COMMIT2 = _rows((2 * KIB, 2 * KIB, 1, 0, 1.0, 2 * KIB),
                  (8 * MIB, 8 * MIB, 1, 0, 1.0, 8 * MIB),
                  (GIB, 3 * GIB // 2, 1, 0, 1.0, 10 * GIB),
                  (30 * GIB, 150 * GIB, -1, 6, 1.0, 32 * GIB),
                  (60 * GIB, 190 * GIB, -1, 6, 1.0, 64 * GIB))
_FETCH = _rows(*[(MIB, MIB, 0, 0, 0, 0)] * 5)
_REPLICA_UPDATE = _rows((2 * KIB, 2 * KIB, 1, 0, 1.0, 2 * KIB),
                        (8 * MIB, 8 * MIB, 1, 0, 1.0, 8 * MIB),
                        (GIB, GIB, 1, 0, 1.0, GIB), (4 * GIB, 4 * GIB, 1, 6, 1.0, GIB),
                        (8 * GIB, 8 * GIB, 1, 6, 1.0, GIB))
_WINDOW_POST = _rows((2 * KIB, 2 * KIB, 1, 0, 1.0, 2 * KIB),
                     (8 * MIB, 8 * MIB, 1, 0, 1.0, 8 * MIB),
                     (GIB, 3 * GIB // 2, 1, 0, 1.0, 10 * GIB),
                     (30 * GIB, 96 * GIB, -1, 6, 1.0, 32 * GIB),
                     (60 * GIB, 120 * GIB, -1, 6, 1.0, 64 * GIB))
_WINNING_POST = _rows((2 * KIB, 2 * KIB, 1, 0, 1.0, 2 * KIB),
                      (8 * MIB, 8 * MIB, 1, 0, 1.0, 8 * MIB),
                      (2 * KIB, 2 * KIB, 1, 0, 1.0, 10 * GIB),  # Lotus' value, sic
                      (GIB, GIB, -1, 6, 1.0, 32 * GIB), (GIB, GIB, -1, 6, 1.0, 64 * GIB))

_BY_SIZE: Final[dict[TaskType, dict[int, Resources]]] = {
    TaskType.ADD_PIECE: _ADD_PIECE,
    TaskType.PRECOMMIT1: _PRECOMMIT1,
    TaskType.PRECOMMIT2: _PRECOMMIT2,
    TaskType.COMMIT1: _COMMIT1,
    TaskType.COMMIT2: _COMMIT2,
    TaskType.FETCH: _FETCH,
    TaskType.REPLICA_UPDATE: _REPLICA_UPDATE,
    TaskType.PROVE_REPLICA_UPDATE_1: _COMMIT1,
    TaskType.PROVE_REPLICA_UPDATE_2: _COMMIT2,
    TaskType.WINDOW_POST: _WINDOW_POST,
    TaskType.WINNING_POST: _WINNING_POST,
    TaskType.UNSEAL: _PRECOMMIT1,
    TaskType.REGEN_SECTOR_KEY: _REPLICA_UPDATE,
    TaskType.DATA_CID: dict.fromkeys(_SIZES, _ADD_PIECE[32 * GIB]),
}


# --- the table ----------------------------------------------------------------------------

TableData = dict[TaskType, dict[RegisteredSealProof, Resources]]


@dataclass(frozen=True)
class ResourceTable:
    """Resources per task type and registered proof (a worker's table, or the defaults)."""

    entries: Mapping[TaskType, Mapping[RegisteredSealProof, Resources]] = field(
        default_factory=dict)

    def spec(self, proof: RegisteredSealProof, task_type: TaskType) -> Resources:
        """The entry for ``(proof, task_type)``; falls back to the defaults, then to zero.

        This is Lotus' ``ResourceSpec``: a worker's table wins where it has the entry.
        """
        entry = self.entries.get(task_type, {}).get(proof)
        if entry is not None:
            return entry
        if self is not DEFAULT_TABLE:
            return DEFAULT_TABLE.spec(proof, task_type)
        return ZERO_RESOURCES

    def items(self) -> Iterator[tuple[TaskType, RegisteredSealProof, Resources]]:
        """Every entry as ``(task type, proof, resources)``, in a stable order."""
        for task_type in sorted(self.entries, key=lambda t: t.value):
            per_proof = self.entries[task_type]
            for proof in sorted(per_proof):
                yield task_type, proof, per_proof[proof]

    def to_json(self) -> dict[str, dict[str, dict[str, int | float]]]:
        """``{"<task type>": {"<proof id>": {"min_memory": ..., ...}}}`` (the protocol shape)."""
        out: dict[str, dict[str, dict[str, int | float]]] = {}
        for task_type, proof, res in self.items():
            out.setdefault(task_type.value, {})[str(int(proof))] = res.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> ResourceTable:
        """Parse :meth:`to_json` output; every error is a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"resource table must be a JSON object, got {type(data).__name__}")
        entries: TableData = {}
        for tt_text, per_proof in data.items():
            try:
                task_type = parse_task_type(str(tt_text))
            except SchedulerError as exc:
                raise ConfigError(f"resource table: {exc}") from None
            if not isinstance(per_proof, Mapping):
                raise ConfigError(f"resource table: {tt_text} must map proof ids to resources")
            for proof_text, res in per_proof.items():
                try:
                    proof = resolve_proof(str(proof_text))
                except UnknownProofError as exc:
                    raise ConfigError(f"resource table: {tt_text}: {exc}") from None
                try:
                    entries.setdefault(task_type, {})[proof] = Resources.from_json(res)
                except ConfigError as exc:
                    raise ConfigError(f"resource table: {tt_text}/{proof_text}: {exc}") from None
        return cls(entries)


def _build_default() -> ResourceTable:
    entries: TableData = {}
    for task_type, by_size in _BY_SIZE.items():
        entries[task_type] = {proof: by_size[proof.sector_size] for proof in RegisteredSealProof}
    return ResourceTable(entries)


DEFAULT_TABLE: Final = _build_default()
"""Lotus' default resource table (see the module docstring for the proof ids)."""


# --- environment overrides ----------------------------------------------------------------

def size_tag(sector_size: int) -> str:
    """The size part of an override name: ``2K``, ``8M``, ``512M``, ``32G``, ``64G``."""
    return size_name(sector_size).removesuffix("iB")


def _sdr_threads(environ: Mapping[str, str]) -> int:
    """PC1/UNS threads without an override: multicore-SDR producers + 1."""
    producers = 0
    if environ.get("FIL_PROOFS_USE_MULTICORE_SDR") == "1":
        producers = DEFAULT_SDR_PRODUCERS
        text = environ.get("FIL_PROOFS_MULTICORE_SDR_PRODUCERS")
        if text is not None:
            producers = int(parse_number("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", text))
    return producers + 1


def _override(task_type: TaskType, sector_size: int, base: Resources,
              environ: Mapping[str, str]) -> Resources:
    """``base`` with the variables of one (task type, sector size) applied."""
    changes: dict[str, Any] = {}
    short = task_type.short
    for f in ENV_FIELDS:
        sized = f"{short}_{size_tag(sector_size)}_{f.suffix}"
        generic = f"{short}_{f.suffix}"
        if not task_type.sector_sized and sized in environ:
            raise ConfigError(f"{sized}: {short} does not depend on the sector size; "
                              f"set {generic} instead")
        name = sized if sized in environ else generic if generic in environ else None
        if name is not None:
            changes[f.name] = parse_number(name, environ[name], f.kind, f.minimum)
        elif f.name == "max_parallelism" and task_type in SDR_TASKS:
            changes[f.name] = _sdr_threads(environ)
    return replace(base, **changes) if changes else base


def parse_resource_env(environ: Mapping[str, str],
                       base: ResourceTable = DEFAULT_TABLE) -> ResourceTable:
    """The table a worker reports: ``base`` with the environment's overrides applied."""
    entries: TableData = {}
    for task_type, per_proof in base.entries.items():
        cache: dict[tuple[int, Resources], Resources] = {}
        out = entries.setdefault(task_type, {})
        for proof, res in per_proof.items():
            key = (proof.sector_size, res)
            if key not in cache:
                cache[key] = _override(task_type, proof.sector_size, res, environ)
            out[proof] = cache[key]
    return ResourceTable(entries)


def _format_value(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def default_env(base: ResourceTable = DEFAULT_TABLE) -> dict[str, str]:
    """Every override variable with its default value (``sealagent resources --default``).

    One variable per (task, size, field) – ``DC_<FIELD>`` for DataCid – taken from the
    V1_1 proof of each size.  The generic ``<SHORT>_<FIELD>`` names have no single default
    and are not listed.
    """
    out: dict[str, str] = {}
    for task_type, proof, res in base.items():
        if proof is not default_proof(proof.sector_size):
            continue
        for f in ENV_FIELDS:
            if task_type.sector_sized:
                name = f"{task_type.short}_{size_tag(proof.sector_size)}_{f.suffix}"
            else:
                name = f"{task_type.short}_{f.suffix}"
            out[name] = _format_value(getattr(res, f.name))
    return out


def set_env(environ: Mapping[str, str], base: ResourceTable = DEFAULT_TABLE) -> dict[str, str]:
    """The override variables present in ``environ`` (what ``sealagent resources`` prints).

    Names that are looked up but do not exist are ignored; the multicore-SDR variables are
    included when set, since they change PC1/UNS threads.
    """
    names = set(default_env(base))
    for task_type in base.entries:
        names.update(f"{task_type.short}_{f.suffix}" for f in ENV_FIELDS)
    names.update(("FIL_PROOFS_USE_MULTICORE_SDR", "FIL_PROOFS_MULTICORE_SDR_PRODUCERS"))
    return {name: environ[name] for name in names if name in environ}


class EnvListing(enum.Enum):
    """What ``sealagent resources`` prints."""

    SET = "set"
    DEFAULT = "default"
    ALL = "all"


def resource_env_lines(environ: Mapping[str, str], listing: EnvListing = EnvListing.SET,
                       base: ResourceTable = DEFAULT_TABLE) -> list[str]:
    """``KEY=VALUE`` lines, sorted, as ``lotus-worker resources`` prints them.

    ``SET``: the overrides set in ``environ`` (validated: a bad value raises
    :class:`ConfigError`); ``DEFAULT``: every variable with its default; ``ALL``: the
    defaults with the set values merged in.
    """
    if listing is EnvListing.DEFAULT:
        chosen = default_env(base)
    else:
        parse_resource_env(environ, base)
        chosen = set_env(environ, base)
        if listing is EnvListing.ALL:
            chosen = {**default_env(base), **chosen}
    return sorted(f"{k}={v}" for k, v in chosen.items())


# --- what a worker reports ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU of a worker."""

    name: str
    memory: int = 0


@dataclass(frozen=True)
class WorkerResources:
    """A worker's hardware and resource table (``WorkerInfo.resources`` of the protocol)."""

    cpus: int
    mem_physical: int
    mem_used: int = 0
    mem_swap: int = 0
    mem_swap_used: int = 0
    gpus: tuple[GpuInfo, ...] = ()
    table: ResourceTable = DEFAULT_TABLE

    def __post_init__(self) -> None:
        """Refuse a report the scheduler could not divide by."""
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1:
            raise ConfigError(f"worker resources: cpus must be ≥ 1, got {self.cpus!r}")
        if (isinstance(self.mem_physical, bool) or not isinstance(self.mem_physical, int)
                or self.mem_physical < 1):
            raise ConfigError(
                f"worker resources: mem_physical must be ≥ 1, got {self.mem_physical!r}")
        for name in ("mem_used", "mem_swap", "mem_swap_used"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"worker resources: {name} must be ≥ 0, got {value!r}")

    @functools.cached_property
    def gpu_count(self) -> int:
        """Number of GPUs."""
        return len(self.gpus)

    @functools.cached_property
    def vmem_total(self) -> int:
        """RAM + swap."""
        return self.mem_physical + self.mem_swap

    @functools.cached_property
    def vmem_floor(self) -> int:
        """RAM + swap in use outside the tasks (the OS and others)."""
        return self.mem_used + self.mem_swap_used

    def spec(self, proof: RegisteredSealProof, task_type: TaskType) -> Resources:
        """What a ``(proof, task_type)`` task needs on this worker."""
        return self.table.spec(proof, task_type)

    def machine_json(self) -> dict[str, Any]:
        """The machine's part of :meth:`to_json` (CPUs, memory, GPUs), without the table."""
        return {"cpus": self.cpus, "mem_physical": self.mem_physical,
                "mem_used": self.mem_used, "mem_swap": self.mem_swap,
                "mem_swap_used": self.mem_swap_used,
                "gpus": [{"name": g.name, "memory": g.memory} for g in self.gpus]}

    def to_json(self) -> dict[str, Any]:
        """The protocol's ``resources`` object."""
        return {**self.machine_json(), "table": self.table.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> WorkerResources:
        """Parse the protocol's ``resources`` object (``table`` absent or null = defaults)."""
        if not isinstance(data, Mapping):
            raise ConfigError("worker resources must be a JSON object")
        gpus_data = data.get("gpus") or []
        if not isinstance(gpus_data, list) or not all(isinstance(g, Mapping) for g in gpus_data):
            raise ConfigError("worker resources: gpus must be a list of {name, memory} objects")
        try:
            gpus = tuple(GpuInfo(str(g["name"]), int(g.get("memory", 0))) for g in gpus_data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"worker resources: bad gpu entry: {exc}") from None
        table_data = data.get("table")
        table = DEFAULT_TABLE if table_data is None else ResourceTable.from_json(table_data)
        return cls(cpus=data.get("cpus", 0), mem_physical=data.get("mem_physical", 0),
                   mem_used=data.get("mem_used", 0), mem_swap=data.get("mem_swap", 0),
                   mem_swap_used=data.get("mem_swap_used", 0), gpus=gpus, table=table)


class ResourceFiltering(enum.StrEnum):
    """``[Storage] ResourceFiltering``: ``disabled`` makes the built-in agent ignore limits.

    With ``disabled`` the manager's co-located agent accepts every task its
    ``MaxConcurrent`` limits allow, whatever its memory, threads and GPUs (Lotus uses this
    for tests and single-box setups).
    """

    HARDWARE = "hardware"
    DISABLED = "disabled"

    @classmethod
    def parse(cls, text: str) -> ResourceFiltering:
        """Parse the config value; anything else is a :class:`ConfigError`."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigError(f"ResourceFiltering must be 'hardware' or 'disabled', "
                              f"got {text!r}") from None

    @property
    def ignores_resources(self) -> bool:
        """True when resource checks are skipped."""
        return self is ResourceFiltering.DISABLED
