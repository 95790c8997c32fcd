"""``multicore``'s Commit2: the compiled NTT agrees with the reference element for element,
uses exactly the granted threads, and its proofs verify with the verifying key."""

from __future__ import annotations

import io
import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import InvalidInputError
from sealagent.phases import Commit2Request, Phase, SectorRef
from sealagent.plugins import PluginSet
from sealagent.proofs.field import R
from sealagent.snark import ntt as reference
from sealagent.snark.groth16 import Parameters, generate_parameters, prove, verify
from sealagent.snark.kernels import ProverKernels
from sealagent.snark.ntt import Vec, to_vec
from sealagent.snark.parameters import parameters_exist
from sealagent.snark.seal import verify_seal
from tests.unit.test_groth16 import _cubic_witness, _shape, cubic

pytest.importorskip("numba", reason="the multicore backend needs numba (sealagent[multicore])")

import sealagent_multicore
from sealagent_multicore import ntt as compiled
from sealagent_multicore.ntt import CompiledNtt


def _random(size: int, seed: int) -> Vec:
    rng = random.Random(seed)
    out = np.empty(size, dtype=object)
    out[:] = [rng.randrange(R) for _ in range(size)]
    out[: min(size, 3)] = [0, 1, R - 1][: min(size, 3)]  # the edges of the field
    return out


TRANSFORMS: dict[tuple[bool, bool], Callable[[Vec], Vec]] = {
    (False, False): reference.ntt, (True, False): reference.intt,
    (False, True): reference.coset_ntt, (True, True): reference.coset_intt,
}


@pytest.mark.parametrize(("size", "threads"), [(2, 1), (8, 2), (1024, 1), (1 << 13, 2),
                                               (1 << 14, 3)])
def test_transforms_match_the_reference(size: int, threads: int) -> None:
    kernel = CompiledNtt(threads)
    values = _random(size, size + threads)
    for (inverse, coset), transform in TRANSFORMS.items():
        got = kernel.transform(values, inverse=inverse, coset=coset)
        assert got.tolist() == transform(values).tolist(), (inverse, coset)
    assert kernel.transform(kernel.transform(values), inverse=True).tolist() == values.tolist()


@pytest.mark.parametrize(("size", "threads"), [(4, 1), (512, 2), (1 << 14, 2)])
def test_quotient_matches_the_reference(size: int, threads: int) -> None:
    a, b, c = (_random(size, seed) for seed in (1, 2, 3))
    before = [v.tolist() for v in (a, b, c)]
    got = CompiledNtt(threads).quotient(a, b, c)
    assert got.tolist() == reference.quotient_coefficients(a, b, c).tolist()
    assert [v.tolist() for v in (a, b, c)] == before  # inputs untouched


def test_bad_input_is_refused() -> None:
    kernel = CompiledNtt(1)
    values = _random(8, 0)
    for bad in (R, R + 5, -1, 1 << 256):
        wrong = values.copy()
        wrong[5] = bad
        with pytest.raises(InvalidInputError, match="field element"):
            kernel.transform(wrong)
    for size in (0, 1, 6):
        with pytest.raises(InvalidInputError, match="power-of-two"):
            kernel.transform(_random(size, 0))
    with pytest.raises(InvalidInputError, match="domain"):
        kernel.quotient(values, values, _random(16, 0))
    with pytest.raises(InvalidInputError):
        CompiledNtt(0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_uses_at_most_the_granted_threads(monkeypatch: pytest.MonkeyPatch,
                                          threads: int) -> None:
    seen: set[int] = set()
    spans: list[tuple[int, int, int]] = []
    lock = threading.Lock()
    original = compiled._stage

    def recording(a: compiled.Limbs, twiddles: compiled.Limbs, m: int, lo: int,
                  hi: int) -> None:
        with lock:
            seen.add(threading.get_ident())
            spans.append((m, lo, hi))
        original(a, twiddles, m, lo, hi)

    monkeypatch.setattr(compiled, "_stage", recording)
    values = _random(1 << 15, 7)
    assert CompiledNtt(threads).transform(values).tolist() == reference.ntt(values).tolist()
    # One thread runs every stage on its own; otherwise the last stage's butterflies are
    # split into one share per granted thread, the caller taking one.
    assert len(spans) == (threads if threads > 1 else 0)
    assert len(seen) <= threads
    assert threads == 1 or threading.get_ident() in seen
    assert sorted(hi - lo for _, lo, hi in spans) == sorted(
        (1 << 14) * (i + 1) // threads - (1 << 14) * i // threads for i in range(len(spans)))


def test_toy_proof_with_the_compiled_ntt_verifies() -> None:
    buf = io.BytesIO()
    generate_parameters(_shape(cubic, None), buf)
    params = Parameters(buf.getvalue())
    kernels = sealagent_multicore.prover_kernels(2)
    seen: list[Vec] = []

    def recording(a: Vec, b: Vec, c: Vec) -> Vec:
        h = kernels.quotient(a, b, c)
        expected = reference.quotient_coefficients(a, b, c)
        assert h.tolist() == expected.tolist()  # the H polynomial, element for element
        seen.append(h)
        return h

    cs = _cubic_witness(3)
    proof = prove(params, cs, kernels=ProverKernels(quotient=recording, name="checked"))
    assert len(seen) == 1 and len(seen[0]) == params.count("h") + 1
    assert verify(params.vk, proof, [35])
    assert not verify(params.vk, proof, [36])
    assert verify(params.vk, prove(params, _cubic_witness(4), kernels=kernels), [73])
    # The same evaluations the prover builds, through both kernels.
    size = params.count("h") + 1
    a = to_vec(cs.a + cs.input_values, size)
    b, c = to_vec(cs.b, size), to_vec(cs.c, size)
    assert kernels.quotient(a, b, c).tolist() == reference.quotient_coefficients(a, b, c).tolist()


def test_multicore_offers_commit2_and_warms_the_ntt(_kernel_cache: Path) -> None:
    plugins = PluginSet.load()
    assert plugins.implements("multicore", Phase.COMMIT2)
    lines: list[str] = []
    assert plugins.warm("multicore", lines.append)
    assert any("NTT" in line for line in lines)


def test_preparing_the_kernel_cache_twice_keeps_one_directory_and_its_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sealagent_multicore import environment

    monkeypatch.delenv("SEALAGENT_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    first = environment.prepare_kernel_cache()
    assert first.parent == tmp_path
    assert environment.prepare_kernel_cache() == first  # each kernel set prepares it
    assert environment.kernel_cache_dir() == tmp_path  # still the cache the user chose
    monkeypatch.undo()
    environment.prepare_kernel_cache()  # numba back on the session's cache


@pytest.mark.slow
@pytest.mark.skipif(not parameters_exist("StackedDrg2KiBV1_1"),
                    reason="needs the 2 KiB parameters in FIL_PROOFS_PARAMETER_CACHE "
                           "(sealagent params generate --sector-size 2KiB)")
def test_2kib_commit2_with_multicore_verifies(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    from sealagent.proofs import RegisteredSealProof
    from tests.unit import test_seal

    monkeypatch.setenv("SEALAGENT_THREADS", "2")
    proof = RegisteredSealProof.StackedDrg2KiBV1_1
    sector = SectorRef(miner=1000, number=1, proof=proof.name)
    monkeypatch.setattr(test_seal, "PROVER_ID", sector.prover_id)
    c1 = test_seal.seal_sector(proof, tmp_path, sector_id=1).c1
    assert c1 is not None
    result = sealagent_multicore.sealagent_commit2(Commit2Request(sector,
                                                                  json.dumps(c1.to_json())))
    # Proofs are randomized: compare by verification, not bytes.
    assert verify_seal(proof, c1.comm_r, c1.comm_d, sector.prover_id, 1, test_seal.TICKET,
                       test_seal.SEED, bytes.fromhex(result.proof))
