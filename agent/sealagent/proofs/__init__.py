"""The SDR proof of replication, bit-exact with rust-fil-proofs.

Pure and synchronous: no Trio, no I/O framework, only files and numpy.  The public API
is named like filecoin-proofs (``seal_pre_commit_phase1`` and so on); Commit2 and seal
verification (``seal_commit_phase2``, ``verify_seal``) are re-exported from
:mod:`sealagent.snark`, which builds on this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sealagent.lazy import lazy_exports

if TYPE_CHECKING:
    from sealagent.proofs.cache_files import (
        PersistentAux,
        StoreConfig,
        TemporaryAux,
        clear_cache,
        clear_synthetic_proofs,
    )
    from sealagent.proofs.chacha import chacha20_ietf_keystream, chacha_keystream
    from sealagent.proofs.challenges import (
        interactive_challenges,
        non_interactive_challenges,
        partition_challenges,
        synthetic_challenges,
        synthetic_porep_challenges,
    )
    from sealagent.proofs.cid import (
        cid_to_sealed_commitment,
        cid_to_unsealed_commitment,
        sealed_commitment_to_cid,
        unsealed_commitment_to_cid,
    )
    from sealagent.proofs.commit import (
        SealCommitPhase1Output,
        check_seal_commit_phase1,
        seal_commit_phase1,
        verify_seal_commit_phase1,
    )
    from sealagent.proofs.fr32 import (
        iter_padded,
        iter_unpadded,
        pad,
        to_padded_size,
        to_unpadded_size,
        unpad,
        unpad_range,
    )
    from sealagent.proofs.graph import StackedGraph, derive_drg_seed, derive_feistel_keys
    from sealagent.proofs.kernels import REFERENCE_KERNELS, SealKernels
    from sealagent.proofs.labels import completed_layers, create_label_layers, generate_labels
    from sealagent.proofs.merkle import (
        POSEIDON_HASHER,
        SHA256_HASHER,
        MerkleProof,
        PathElement,
        TreeHasher,
        TreeLayout,
        TreeShape,
        compound_root,
        default_rows_to_discard,
        merkle_root,
        tree_c_layout,
        tree_d_layout,
        tree_r_last_layout,
        tree_rows,
    )
    from sealagent.proofs.parameters import (
        ParameterFiles,
        parameter_file_stem,
        parameter_files,
        parameter_identifier,
    )
    from sealagent.proofs.parent_cache import (
        PARENT_CACHE_MANIFEST,
        ParentsBuilder,
        load_parents,
        parent_cache_dir,
        parent_cache_file,
        parent_cache_path,
        reference_parents,
    )
    from sealagent.proofs.pieces import (
        AddPieceOutput,
        PieceInfo,
        add_piece,
        check_padded_piece_size,
        check_unpadded_piece_size,
        compute_comm_d,
        fill_pieces,
        generate_data_commitment,
        generate_piece_commitment,
        padded_piece_offsets,
        piece_alignment,
        zero_piece,
        zero_piece_commitment,
    )
    from sealagent.proofs.poseidon import (
        PoseidonConstants,
        poseidon_constant_length,
        poseidon_hash,
        poseidon_hash_ints,
        poseidon_hash_level,
        poseidon_hash_md,
    )
    from sealagent.proofs.seal import (
        PreCommit1Output,
        SealPreCommitOutput,
        generate_replica_id,
        seal_pre_commit_phase1,
        seal_pre_commit_phase2,
    )
    from sealagent.proofs.sha_tree import (
        PairHasher,
        Sha256TreeBuilder,
        hash_pairs,
        sha256_hash_level,
        sha256_root_of_chunks,
        sha256_root_of_stream,
        sha256_tree_levels,
        sha256_tree_root,
    )
    from sealagent.proofs.unseal import (
        unseal_range,
    )
    from sealagent.proofs.vanilla import (
        VanillaProof,
        verify_vanilla_proof,
    )
    from sealagent.snark.seal import seal_commit_phase2, verify_seal
    from sealagent.vocab.registry import (
        ApiVersion,
        Feature,
        RegisteredSealProof,
        SectorShape,
        default_proof,
        parse_sector_size,
        resolve_api_version,
        resolve_proof,
    )

__all__ = [
    "PARENT_CACHE_MANIFEST",
    "POSEIDON_HASHER",
    "REFERENCE_KERNELS",
    "SHA256_HASHER",
    "AddPieceOutput",
    "ApiVersion",
    "Feature",
    "MerkleProof",
    "PairHasher",
    "ParameterFiles",
    "ParentsBuilder",
    "PathElement",
    "PersistentAux",
    "PieceInfo",
    "PoseidonConstants",
    "PreCommit1Output",
    "RegisteredSealProof",
    "SealCommitPhase1Output",
    "SealKernels",
    "SealPreCommitOutput",
    "SectorShape",
    "Sha256TreeBuilder",
    "StackedGraph",
    "StoreConfig",
    "TemporaryAux",
    "TreeHasher",
    "TreeLayout",
    "TreeShape",
    "VanillaProof",
    "add_piece",
    "chacha20_ietf_keystream",
    "chacha_keystream",
    "check_padded_piece_size",
    "check_seal_commit_phase1",
    "check_unpadded_piece_size",
    "cid_to_sealed_commitment",
    "cid_to_unsealed_commitment",
    "clear_cache",
    "clear_synthetic_proofs",
    "completed_layers",
    "compound_root",
    "compute_comm_d",
    "create_label_layers",
    "default_proof",
    "default_rows_to_discard",
    "derive_drg_seed",
    "derive_feistel_keys",
    "fill_pieces",
    "generate_data_commitment",
    "generate_labels",
    "generate_piece_commitment",
    "generate_replica_id",
    "hash_pairs",
    "interactive_challenges",
    "iter_padded",
    "iter_unpadded",
    "load_parents",
    "merkle_root",
    "non_interactive_challenges",
    "pad",
    "padded_piece_offsets",
    "parameter_file_stem",
    "parameter_files",
    "parameter_identifier",
    "parent_cache_dir",
    "parent_cache_file",
    "parent_cache_path",
    "parse_sector_size",
    "partition_challenges",
    "piece_alignment",
    "poseidon_constant_length",
    "poseidon_hash",
    "poseidon_hash_ints",
    "poseidon_hash_level",
    "poseidon_hash_md",
    "reference_parents",
    "resolve_api_version",
    "resolve_proof",
    "seal_commit_phase1",
    "seal_commit_phase2",
    "seal_pre_commit_phase1",
    "seal_pre_commit_phase2",
    "sealed_commitment_to_cid",
    "sha256_hash_level",
    "sha256_root_of_chunks",
    "sha256_root_of_stream",
    "sha256_tree_levels",
    "sha256_tree_root",
    "synthetic_challenges",
    "synthetic_porep_challenges",
    "to_padded_size",
    "to_unpadded_size",
    "tree_c_layout",
    "tree_d_layout",
    "tree_r_last_layout",
    "tree_rows",
    "unpad",
    "unpad_range",
    "unseal_range",
    "unsealed_commitment_to_cid",
    "verify_seal",
    "verify_seal_commit_phase1",
    "verify_vanilla_proof",
    "zero_piece",
    "zero_piece_commitment",
]

_HOMES: Final[dict[str, tuple[str, ...]]] = {
    ".cache_files": (
        "PersistentAux", "StoreConfig", "TemporaryAux", "clear_cache", "clear_synthetic_proofs",
    ),
    ".chacha": ("chacha20_ietf_keystream", "chacha_keystream"),
    ".challenges": (
        "interactive_challenges", "non_interactive_challenges", "partition_challenges",
        "synthetic_challenges", "synthetic_porep_challenges",
    ),
    ".cid": (
        "cid_to_sealed_commitment", "cid_to_unsealed_commitment", "sealed_commitment_to_cid",
        "unsealed_commitment_to_cid",
    ),
    ".commit": (
        "SealCommitPhase1Output", "check_seal_commit_phase1", "seal_commit_phase1",
        "verify_seal_commit_phase1",
    ),
    ".fr32": (
        "iter_padded", "iter_unpadded", "pad", "to_padded_size", "to_unpadded_size", "unpad",
        "unpad_range",
    ),
    ".graph": ("StackedGraph", "derive_drg_seed", "derive_feistel_keys"),
    ".kernels": ("REFERENCE_KERNELS", "SealKernels"),
    ".labels": ("completed_layers", "create_label_layers", "generate_labels"),
    ".merkle": (
        "POSEIDON_HASHER", "SHA256_HASHER", "MerkleProof", "PathElement", "TreeHasher",
        "TreeLayout", "TreeShape", "compound_root", "default_rows_to_discard", "merkle_root",
        "tree_c_layout", "tree_d_layout", "tree_r_last_layout", "tree_rows",
    ),
    ".parameters": (
        "ParameterFiles", "parameter_file_stem", "parameter_files", "parameter_identifier",
    ),
    ".parent_cache": (
        "PARENT_CACHE_MANIFEST", "ParentsBuilder", "load_parents", "parent_cache_dir",
        "parent_cache_file", "parent_cache_path", "reference_parents",
    ),
    ".pieces": (
        "AddPieceOutput", "PieceInfo", "add_piece", "check_padded_piece_size",
        "check_unpadded_piece_size", "compute_comm_d", "fill_pieces", "generate_data_commitment",
        "generate_piece_commitment", "padded_piece_offsets", "piece_alignment", "zero_piece",
        "zero_piece_commitment",
    ),
    ".poseidon": (
        "PoseidonConstants", "poseidon_constant_length", "poseidon_hash", "poseidon_hash_ints",
        "poseidon_hash_level", "poseidon_hash_md",
    ),
    ".seal": (
        "PreCommit1Output", "SealPreCommitOutput", "generate_replica_id", "seal_pre_commit_phase1",
        "seal_pre_commit_phase2",
    ),
    ".sha_tree": (
        "PairHasher", "Sha256TreeBuilder", "hash_pairs", "sha256_hash_level",
        "sha256_root_of_chunks", "sha256_root_of_stream", "sha256_tree_levels",
        "sha256_tree_root",
    ),
    ".unseal": ("unseal_range",),
    ".vanilla": ("VanillaProof", "verify_vanilla_proof"),
    "sealagent.snark.seal": ("seal_commit_phase2", "verify_seal"),
    "sealagent.vocab.registry": (
        "ApiVersion", "Feature", "RegisteredSealProof", "SectorShape", "default_proof",
        "parse_sector_size", "resolve_api_version", "resolve_proof",
    ),
}
"""Where each public name lives: the submodule is imported on first use."""

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
