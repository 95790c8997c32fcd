"""The parent cache file and SDR labeling: building, verifying, resuming."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from sealagent.errors import (
    CorruptDataError,
    InvalidInputError,
    StorageError,
    UnknownProofError,
)
from sealagent.proofs import parent_cache
from sealagent.proofs.cache_files import layer_path
from sealagent.proofs.graph import StackedGraph
from sealagent.proofs.labels import (
    completed_layers,
    create_label_layers,
    generate_labels,
    label_layer,
    node_zero_label,
)
from sealagent.proofs.parent_cache import (
    PARENT_CACHE_MANIFEST,
    load_parents,
    parent_cache_dir,
    parent_cache_file,
    parent_cache_path,
)
from sealagent.vocab.registry import ApiVersion, RegisteredSealProof

V1_1_2K = RegisteredSealProof.StackedDrg2KiBV1_1
SYNTH_2K = RegisteredSealProof.StackedDrg2KiBV1_1_Feat_SyntheticPoRep
REPLICA = bytes(range(32))
OTHER_REPLICA = bytes([0xAA]) * 32


@pytest.fixture
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A parent cache directory of this test alone."""
    directory = tmp_path / "parents"
    monkeypatch.setenv("FIL_PROOFS_PARENT_CACHE", str(directory))
    return directory


class TestParentCacheDir:
    def test_explicit_setting_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FIL_PROOFS_PARENT_CACHE", "/srv/parents")
        monkeypatch.setenv("FIL_PROOFS_CACHE_DIR", "/elsewhere/")
        assert parent_cache_dir() == Path("/srv/parents")

    def test_cache_dir_is_a_string_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("FIL_PROOFS_PARENT_CACHE")
        monkeypatch.setenv("FIL_PROOFS_CACHE_DIR", "/data/cache/")
        assert parent_cache_dir() == Path("/data/cache/filecoin-parents")
        monkeypatch.setenv("FIL_PROOFS_CACHE_DIR", "/data/cache")
        assert parent_cache_dir() == Path("/data/cachefilecoin-parents")

    def test_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("FIL_PROOFS_PARENT_CACHE")
        monkeypatch.delenv("FIL_PROOFS_CACHE_DIR", raising=False)
        assert parent_cache_dir() == Path("/var/tmp/filecoin-parents")


class TestParentCacheFile:
    def test_build_layout_and_load(self, own_cache_dir: Path) -> None:
        path = parent_cache_file(V1_1_2K)
        assert path == parent_cache_path(V1_1_2K)
        assert path.parent == own_cache_dir and path.stat().st_size == 64 * 56
        assert [p.name for p in own_cache_dir.iterdir() if p.suffix == ".tmp"] == []
        expected = StackedGraph.for_proof(V1_1_2K).all_parents()
        assert path.read_bytes() == expected.astype("<u4").tobytes()
        loaded = load_parents("StackedDrg2KiBV1_1")
        assert loaded.shape == (64, 14) and np.array_equal(loaded, expected)
        assert not loaded.flags.writeable

    def test_checked_once_per_process(
        self, own_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        real = parent_cache._file_digest

        def counting(f: io.BufferedReader) -> str:
            calls.append(f.name)
            return real(f)

        monkeypatch.setattr(parent_cache, "_file_digest", counting)
        path = parent_cache_file(V1_1_2K)  # built: digest taken while writing
        parent_cache_file(V1_1_2K)
        assert calls == []
        monkeypatch.setattr(parent_cache, "_verified", set())  # as a fresh process
        parent_cache_file(V1_1_2K)
        parent_cache_file(V1_1_2K)
        assert calls == [str(path)]

    def test_truncated_file(self, own_cache_dir: Path) -> None:
        path = parent_cache_path(V1_1_2K)
        own_cache_dir.mkdir()
        path.write_bytes(bytes(100))
        with pytest.raises(CorruptDataError, match="has 100 bytes, expected 3584") as info:
            parent_cache_file(V1_1_2K)
        assert str(path) in str(info.value) and "delete it" in str(info.value)

    def test_wrong_digest(self, own_cache_dir: Path) -> None:
        good = parent_cache_file(V1_1_2K).read_bytes()
        bad = bytearray(good)
        bad[1000] ^= 1
        path = parent_cache_path(V1_1_2K)
        replacement = path.with_name("replacement")
        replacement.write_bytes(bad)
        replacement.replace(path)
        digest = hashlib.sha256(bad).hexdigest()
        with pytest.raises(CorruptDataError, match=f"has sha256 {digest}") as info:
            parent_cache_file(V1_1_2K)
        assert str(path) in str(info.value)
        with pytest.raises(CorruptDataError):
            load_parents(V1_1_2K)
        path.unlink()
        assert parent_cache_file(V1_1_2K).read_bytes() == good

    def test_unlisted_graph_is_built_and_trusted(self, own_cache_dir: Path) -> None:
        path = parent_cache_file(SYNTH_2K)
        assert path.name.removesuffix(".cache") not in PARENT_CACHE_MANIFEST
        expected = StackedGraph.for_proof(SYNTH_2K).all_parents()
        assert np.array_equal(load_parents(SYNTH_2K), expected)
        path.write_bytes(path.read_bytes()[:-56])
        with pytest.raises(CorruptDataError, match="expected 3584"):
            parent_cache_file(SYNTH_2K)

    def test_unwritable_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        blocker = tmp_path / "file"
        blocker.write_bytes(b"")
        monkeypatch.setenv("FIL_PROOFS_PARENT_CACHE", str(blocker / "sub"))
        with pytest.raises(StorageError, match="cannot build parent cache"):
            parent_cache_file(V1_1_2K)


def _build_in_child(cache_dir: str, log: str, go: multiprocessing.synchronize.Event) -> None:
    """Child process: wait for the start signal, then ask for the parent cache file."""
    os.environ["FIL_PROOFS_PARENT_CACHE"] = cache_dir
    real_build = parent_cache._build

    def logged_build(path: Path, graph: StackedGraph, builder: parent_cache.ParentsBuilder,
                     progress: parent_cache.Progress | None) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        real_build(path, graph, builder, progress)

    parent_cache._build = logged_build
    go.wait(30)
    parent_cache_file(RegisteredSealProof.StackedDrg8MiBV1_1)


def test_concurrent_build_makes_one_file(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    log = tmp_path / "builds.log"
    cache_dir = tmp_path / "parents"
    children = [
        ctx.Process(target=_build_in_child, args=(str(cache_dir), str(log), go))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    assert len(log.read_text().split()) == 1
    files = sorted(p.name for p in cache_dir.iterdir())
    name = parent_cache_path(RegisteredSealProof.StackedDrg8MiBV1_1).name
    assert files == [name, name + ".lock"]
    entry = PARENT_CACHE_MANIFEST[name.removesuffix(".cache")]
    assert hashlib.sha256((cache_dir / name).read_bytes()).hexdigest() == entry.digest


class TestLabels:
    def test_sealing_path_matches_in_memory_labels(self, tmp_path: Path) -> None:
        seen: list[tuple[int, int, int]] = []
        paths = create_label_layers(
            V1_1_2K, REPLICA, tmp_path, progress=lambda *a: seen.append(a)
        )
        assert paths == [layer_path(tmp_path, 1), layer_path(tmp_path, 2)]
        expected = generate_labels(REPLICA, V1_1_2K.porep_id, 64, 2, ApiVersion.V1_1_0)
        assert [p.read_bytes() for p in paths] == expected
        assert seen == [(1, 64, 64), (2, 64, 64)]
        assert completed_layers(tmp_path, V1_1_2K, REPLICA) == 2
        assert completed_layers(tmp_path, V1_1_2K, OTHER_REPLICA) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]

    def test_labels_are_trimmed_and_node_zero_has_no_parents(self) -> None:
        layers = generate_labels(REPLICA, bytes(32), 50, 3, ApiVersion.V1_1_0)
        for layer, data in enumerate(layers, start=1):
            assert len(data) == 50 * 32
            assert all(b <= 0x3F for b in data[31::32])
            assert data[:32] == node_zero_label(REPLICA, layer)
        assert len(set(layers)) == 3

    def test_resume_after_interruption(self, tmp_path: Path) -> None:
        parents = StackedGraph(300, bytes([3]) * 32, ApiVersion.V1_1_0).all_parents()
        full = tmp_path / "full"
        full.mkdir()
        create_label_layers(parents, REPLICA, full, layers=5)

        resumed = tmp_path / "resumed"
        resumed.mkdir()

        def interrupt(layer: int, done: int, total: int) -> None:
            if layer == 4:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            create_label_layers(parents, REPLICA, resumed, layers=5, progress=interrupt)
        assert not layer_path(resumed, 4).exists()
        assert completed_layers(resumed, parents, REPLICA, layers=5) == 3
        start = completed_layers(resumed, parents, REPLICA, layers=5) + 1
        create_label_layers(parents, REPLICA, resumed, layers=5, start_layer=start)
        for layer in range(1, 6):
            assert layer_path(resumed, layer).read_bytes() == layer_path(full, layer).read_bytes()
        assert completed_layers(resumed, parents, layers=5) == 5
        before = layer_path(resumed, 5).stat().st_mtime_ns
        paths = create_label_layers(parents, REPLICA, resumed, layers=5, start_layer=6)
        assert paths == [layer_path(resumed, layer) for layer in range(1, 6)]
        assert layer_path(resumed, 5).stat().st_mtime_ns == before

    def test_resume_refuses_layers_of_another_replica(self, tmp_path: Path) -> None:
        create_label_layers(V1_1_2K, REPLICA, tmp_path)
        with pytest.raises(CorruptDataError, match="not complete for this replica"):
            create_label_layers(V1_1_2K, OTHER_REPLICA, tmp_path, start_layer=2)

    def test_truncated_layer_is_not_complete(self, tmp_path: Path) -> None:
        create_label_layers(V1_1_2K, REPLICA, tmp_path)
        path = layer_path(tmp_path, 1)
        path.write_bytes(path.read_bytes()[:-1])
        assert completed_layers(tmp_path, V1_1_2K) == 0
        with pytest.raises(CorruptDataError):
            create_label_layers(V1_1_2K, REPLICA, tmp_path, start_layer=2)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"replica_id": b"x"}, InvalidInputError, "replica_id must be 32 bytes"),
            ({"start_layer": 4}, InvalidInputError, "not in 1..3"),
            ({"start_layer": 0}, InvalidInputError, "not in 1..3"),
            ({"layers": 11}, InvalidInputError, "has 2 layers"),
            ({"graph": "StackedDrg1KiBV1"}, UnknownProofError, "unknown registered seal proof"),
            ({"graph": np.zeros((64, 14), np.uint32)}, InvalidInputError, "layers is required"),
            ({"graph": np.zeros((64, 6), np.uint32), "layers": 2}, InvalidInputError, "uint32"),
        ],
    )
    def test_bad_arguments(
        self, tmp_path: Path, kwargs: dict[str, object], error: type[Exception], match: str
    ) -> None:
        args: dict[str, object] = {"graph": V1_1_2K, "replica_id": REPLICA, "cache_dir": tmp_path}
        args.update(kwargs)
        with pytest.raises(error, match=match):
            create_label_layers(**args)  # type: ignore[arg-type]

    def test_missing_cache_dir(self, tmp_path: Path) -> None:
        with pytest.raises(StorageError, match="does not exist"):
            create_label_layers(V1_1_2K, REPLICA, tmp_path / "nope")

    def test_bad_parents_are_refused(self) -> None:
        parents = StackedGraph(64, bytes(32), ApiVersion.V1_1_0).all_parents()
        out = memoryview(bytearray(64 * 32))
        forward = parents.copy()
        forward[10, 2] = 10
        with pytest.raises(InvalidInputError, match="does not precede"):
            label_layer(REPLICA, 1, forward, out, None)
        outside = parents.copy()
        outside[5, 9] = 64
        with pytest.raises(InvalidInputError, match="outside the graph"):
            label_layer(REPLICA, 1, outside, out, None)

    def test_layer_buffers_are_checked(self) -> None:
        parents = StackedGraph(64, bytes(32), ApiVersion.V1_1_0).all_parents()
        prev = np.zeros((64, 32), np.uint8)
        with pytest.raises(InvalidInputError, match="2048 writable bytes"):
            label_layer(REPLICA, 1, parents, memoryview(bytearray(10)), None)
        with pytest.raises(InvalidInputError, match="2048 writable bytes"):
            label_layer(REPLICA, 1, parents, memoryview(bytes(2048)), None)
        with pytest.raises(InvalidInputError, match="previous layer"):
            label_layer(REPLICA, 2, parents, memoryview(bytearray(2048)), None)
        with pytest.raises(InvalidInputError, match="previous layer"):
            label_layer(REPLICA, 1, parents, memoryview(bytearray(2048)), prev)
        with pytest.raises(InvalidInputError, match="numbered from 1"):
            label_layer(REPLICA, 0, parents, memoryview(bytearray(2048)), None)


@pytest.mark.parametrize("text", ["1.1.0", "V1_1_0", "1.1"])
def test_generate_labels_accepts_the_api_version_as_text(text: str) -> None:
    as_enum = generate_labels(bytes([9] * 32), bytes([123] * 32), 16, 2, ApiVersion.V1_1_0)
    assert generate_labels(bytes([9] * 32), bytes([123] * 32), 16, 2, text) == as_enum


def test_generate_labels_rejects_an_unknown_api_version() -> None:
    with pytest.raises(InvalidInputError, match="API version"):
        generate_labels(bytes(32), bytes(32), 16, 2, "9.9.9")
