"""Registered seal proofs, porep ids and the per-sector-size constants.

The table is rust-filecoin-proofs-api's registry: ids 0–4 are the legacy ``V1`` graphs
(API 1.0.0), 5–9 ``V1_1`` (API 1.1.0), 10–14 ``V1_1_Feat_SyntheticPoRep`` and 15–19
``V1_2_Feat_NonInteractivePoRep`` (both API 1.2.0).  The per-size constants (layers,
challenges, partitions, tree shape) are filecoin-proofs' ``constants.rs``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from sealagent.errors import InvalidInputError, UnknownProofError

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB

NODE_SIZE: Final = 32
"""Bytes per node (one field element)."""

MAX_LEGACY_POREP_REGISTERED_PROOF_ID: Final = 4


class ApiVersion(enum.Enum):
    """The proofs API version a registered proof seals with."""

    V1_0_0 = "1.0.0"
    V1_1_0 = "1.1.0"
    V1_2_0 = "1.2.0"

    @property
    def is_legacy(self) -> bool:
        """True for 1.0.0, whose graph has the legacy parent order and expander truncation."""
        return self is ApiVersion.V1_0_0


def resolve_api_version(version: ApiVersion | str) -> ApiVersion:
    """Accept an API version as the enum member, ``"1.1.0"``, ``"V1_1_0"`` or ``"1.1"``."""
    if isinstance(version, ApiVersion):
        return version
    if isinstance(version, str):
        text = version.strip().removeprefix("v").removeprefix("V").replace("_", ".")
        if text.count(".") == 1:
            text += ".0"
        for member in ApiVersion:
            if member.value == text:
                return member
    raise InvalidInputError(
        f"unknown proofs API version {version!r}; expected one of "
        + ", ".join(m.value for m in ApiVersion)
    )


class Feature(enum.Enum):
    """Optional PoRep features selected by the registered proof."""

    SYNTHETIC_POREP = "SyntheticPoRep"
    NON_INTERACTIVE_POREP = "NonInteractivePoRep"


@dataclass(frozen=True)
class SectorShape:
    """Constants that depend only on the sector size."""

    sector_size: int
    layers: int
    min_challenges: int
    partitions: int
    ni_min_challenges: int
    ni_partitions: int
    base_arity: int
    sub_arity: int
    top_arity: int

    @property
    def nodes(self) -> int:
        """Number of 32-byte nodes in the sector."""
        return self.sector_size // NODE_SIZE

    @property
    def unpadded_size(self) -> int:
        """User bytes that fit in the sector after Fr32 padding."""
        return self.sector_size // 128 * 127

    @property
    def challenges_per_partition(self) -> int:
        """Interactive challenges in each partition: ``ceil(min / partitions)``."""
        return -(-self.min_challenges // self.partitions)

    @property
    def ni_challenges_per_partition(self) -> int:
        """Non-interactive challenges in each partition."""
        return -(-self.ni_min_challenges // self.ni_partitions)

    @property
    def base_tree_count(self) -> int:
        """Number of base trees (tree_c / tree_r_last files)."""
        return max(self.sub_arity, 1) * max(self.top_arity, 1)

    @property
    def base_tree_leaves(self) -> int:
        """Leaves in each base tree."""
        return self.nodes // self.base_tree_count

    @property
    def shape_name(self) -> str:
        """The tree shape as ``base-sub-top`` (e.g. ``8-0-0``)."""
        return f"{self.base_arity}-{self.sub_arity}-{self.top_arity}"


SECTOR_SHAPES: Final[dict[int, SectorShape]] = {
    s.sector_size: s
    for s in (
        SectorShape(2 * KIB, 2, 2, 1, 26, 13, 8, 0, 0),
        SectorShape(8 * MIB, 2, 2, 1, 26, 13, 8, 0, 0),
        SectorShape(512 * MIB, 2, 2, 1, 26, 13, 8, 0, 0),
        SectorShape(32 * GIB, 11, 176, 10, 2253, 126, 8, 8, 0),
        SectorShape(64 * GIB, 11, 176, 10, 2253, 126, 8, 8, 2),
    )
}

_SIZE_NAMES: Final = {2 * KIB: "2KiB", 8 * MIB: "8MiB", 512 * MIB: "512MiB",
                      32 * GIB: "32GiB", 64 * GIB: "64GiB"}
_FAMILIES: Final = (
    ("V1", ApiVersion.V1_0_0, None),
    ("V1_1", ApiVersion.V1_1_0, None),
    ("V1_1_Feat_SyntheticPoRep", ApiVersion.V1_2_0, Feature.SYNTHETIC_POREP),
    ("V1_2_Feat_NonInteractivePoRep", ApiVersion.V1_2_0, Feature.NON_INTERACTIVE_POREP),
)


class RegisteredSealProof(enum.IntEnum):
    """Registered seal proof ids, named as Lotus and filecoin-proofs-api name them."""

    StackedDrg2KiBV1 = 0
    StackedDrg8MiBV1 = 1
    StackedDrg512MiBV1 = 2
    StackedDrg32GiBV1 = 3
    StackedDrg64GiBV1 = 4
    StackedDrg2KiBV1_1 = 5
    StackedDrg8MiBV1_1 = 6
    StackedDrg512MiBV1_1 = 7
    StackedDrg32GiBV1_1 = 8
    StackedDrg64GiBV1_1 = 9
    StackedDrg2KiBV1_1_Feat_SyntheticPoRep = 10
    StackedDrg8MiBV1_1_Feat_SyntheticPoRep = 11
    StackedDrg512MiBV1_1_Feat_SyntheticPoRep = 12
    StackedDrg32GiBV1_1_Feat_SyntheticPoRep = 13
    StackedDrg64GiBV1_1_Feat_SyntheticPoRep = 14
    StackedDrg2KiBV1_2_Feat_NonInteractivePoRep = 15
    StackedDrg8MiBV1_2_Feat_NonInteractivePoRep = 16
    StackedDrg512MiBV1_2_Feat_NonInteractivePoRep = 17
    StackedDrg32GiBV1_2_Feat_NonInteractivePoRep = 18
    StackedDrg64GiBV1_2_Feat_NonInteractivePoRep = 19

    @property
    def sector_size(self) -> int:
        """Sector size in bytes."""
        return list(_SIZE_NAMES)[self.value % 5]

    @property
    def shape(self) -> SectorShape:
        """The per-size constants of this proof's sector size."""
        return SECTOR_SHAPES[self.sector_size]

    @property
    def api_version(self) -> ApiVersion:
        """The proofs API version this proof seals with."""
        return _FAMILIES[self.value // 5][1]

    @property
    def feature(self) -> Feature | None:
        """The PoRep feature of this proof, if any."""
        return _FAMILIES[self.value // 5][2]

    @property
    def porep_id(self) -> bytes:
        """``u64_le(id) || u64_le(nonce=0) || 16 zero bytes``."""
        return struct.pack("<QQ", self.value, 0) + bytes(16)

    @property
    def layers(self) -> int:
        """Number of SDR layers."""
        return self.shape.layers

    @property
    def nodes(self) -> int:
        """Number of nodes in the sector."""
        return self.shape.nodes

    @property
    def is_synthetic(self) -> bool:
        """True when the proof uses Synthetic PoRep challenges."""
        return self.feature is Feature.SYNTHETIC_POREP

    @property
    def is_non_interactive(self) -> bool:
        """True when the proof is Non-Interactive PoRep."""
        return self.feature is Feature.NON_INTERACTIVE_POREP

    @property
    def partitions(self) -> int:
        """Number of partitions (Groth16 proofs) the commit proves."""
        s = self.shape
        return s.ni_partitions if self.is_non_interactive else s.partitions

    @property
    def challenges_per_partition(self) -> int:
        """Challenges proven in each partition."""
        s = self.shape
        if self.is_non_interactive:
            return s.ni_challenges_per_partition
        return s.challenges_per_partition

    @property
    def v1_name(self) -> str:
        """The ``V1`` variant name that C1 output uses as its vanilla-proof key."""
        return f"StackedDrg{_SIZE_NAMES[self.sector_size]}V1"


def size_name(sector_size: int) -> str:
    """Format a sector size as Lotus does (``2KiB``, ``32GiB``)."""
    try:
        return _SIZE_NAMES[sector_size]
    except KeyError:
        raise UnknownProofError(f"unsupported sector size {sector_size}") from None


def parse_sector_size(text: str | int) -> int:
    """Parse ``2KiB``/``8MiB``/``512MiB``/``32GiB``/``64GiB`` (or bytes) into bytes."""
    if isinstance(text, int):
        size = text
    else:
        names = {v.lower(): k for k, v in _SIZE_NAMES.items()}
        key = text.strip().lower()
        if key in names:
            size = names[key]
        elif key.isdigit():
            size = int(key)
        else:
            raise UnknownProofError(
                f"unknown sector size {text!r}; expected one of {', '.join(_SIZE_NAMES.values())}"
            )
    if size not in SECTOR_SHAPES:
        raise UnknownProofError(f"unsupported sector size {size}")
    return size


def resolve_proof(proof: RegisteredSealProof | str | int) -> RegisteredSealProof:
    """Accept a registered proof as the enum member, its name, or its integer id."""
    if isinstance(proof, RegisteredSealProof):
        return proof
    if isinstance(proof, bool):
        raise UnknownProofError(f"not a registered seal proof: {proof!r}")
    if isinstance(proof, int):
        try:
            return RegisteredSealProof(proof)
        except ValueError:
            raise UnknownProofError(f"unknown registered seal proof id {proof}") from None
    if isinstance(proof, str):
        text = proof.strip()
        if text.isdigit():
            return resolve_proof(int(text))
        try:
            return RegisteredSealProof[text]
        except KeyError:
            raise UnknownProofError(f"unknown registered seal proof {proof!r}") from None
    raise UnknownProofError(f"not a registered seal proof: {proof!r}")


def default_proof(sector_size: int) -> RegisteredSealProof:
    """The proof Lotus seals new sectors with: ``StackedDrg<size>V1_1``."""
    size = parse_sector_size(sector_size)
    return RegisteredSealProof(5 + list(_SIZE_NAMES).index(size))


def is_legacy_porep_id(porep_id: bytes) -> bool:
    """``u64_le(porep_id[0:8]) <= 4`` (storage-proofs-core)."""
    return int(struct.unpack_from("<Q", porep_id)[0]) <= MAX_LEGACY_POREP_REGISTERED_PROOF_ID
