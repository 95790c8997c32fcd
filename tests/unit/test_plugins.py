"""Loading, selecting and running backends, in this process and in a child process."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from sealagent.cli import main
from sealagent.errors import (
    InvalidInputError,
    PhaseCancelledError,
    PhaseFailedError,
    PluginError,
    PluginNotFoundError,
    PluginUnavailableError,
)
from sealagent.phase_progress import ProgressEvent
from sealagent.phases import (
    FinalizeRequest,
    FinalizeResult,
    Phase,
    PreCommit2Request,
    PreCommit2Result,
    SectorPaths,
    SectorRef,
)
from sealagent.plugins import (
    REFERENCE_BACKEND,
    PluginSet,
    PluginTarget,
    Selection,
    peak_rss_bytes,
    phase_environment,
    run_phase,
    run_phase_in_subprocess,
    select_backends,
)

SECTOR = SectorRef(miner=1000, number=1, proof="StackedDrg2KiBV1_1")

# A test double whose Finalize hook does what the last part of ``paths.cache`` says.
FAKE_BACKEND = '''
import os
import time

from sealagent import hookimpl
from sealagent.phase_progress import report_progress
from sealagent.phases import BackendInfo, FinalizeResult


@hookimpl
def sealagent_backend_info():
    return BackendInfo(name=__name__, description="test double", version="9.9",
                       available=AVAILABLE, reason=REASON)


@hookimpl
def sealagent_finalize(request):
    action = os.path.basename(request.paths.cache)
    if action == "env":
        return FinalizeResult((os.environ.get("OMP_NUM_THREADS", "<unset>"),
                               os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")))
    if action == "fail":
        raise ValueError("the disk is on fire")
    if action == "sleep":
        time.sleep(60)
    if action == "crash":
        os._exit(3)
    if action == "decline":
        return None
    if action == "wrong":
        return "not a result"
    if action == "progress":  # half done, wait for the parent's go, then done
        report_progress("work", 1, 2)
        go = os.environ["GO_FILE"]
        for _ in range(3000):
            if os.path.exists(go):
                break
            time.sleep(0.01)
        report_progress("work", 2, 2)
    return FinalizeResult((__name__,))
'''

COMMIT2_ONLY = '''
from sealagent import hookimpl
from sealagent.phases import BackendInfo


@hookimpl
def sealagent_backend_info():
    return BackendInfo(name="gpu", description="", version="1", available=False,
                       reason="no CUDA GPU")


@hookimpl
def sealagent_commit2(request):
    raise AssertionError("never called")
'''

# A wrapper plugin as a tracing or timing plugin is written: it runs no phase, it sees
# each one run (whichever backend runs it) and appends "<phase> <backend result>" to the
# file named by $TRACE_FILE.
TRACER = '''
import os

from sealagent import hookimpl


@hookimpl(wrapper=True)
def sealagent_finalize(request):
    result = yield
    with open(os.environ["TRACE_FILE"], "a") as trace:
        trace.write(f"finalize {request.paths.cache} -> {result.removed}\\n")
    return result
'''

MakePlugin = Callable[..., ModuleType]


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakePlugin]:
    """Write a plugin module under a fresh name into ``tmp_path`` and import it."""
    root = tmp_path / "plugin_modules"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    names: list[str] = []

    def make(name: str, source: str = FAKE_BACKEND, *, available: bool = True,
             reason: str | None = None) -> ModuleType:
        header = f"AVAILABLE = {available!r}\nREASON = {reason!r}\n"
        (root / f"{name}.py").write_text(header + textwrap.dedent(source))
        names.append(name)
        return importlib.import_module(name)

    yield make
    for name in names:
        sys.modules.pop(name, None)


def finalize(action: str) -> FinalizeRequest:
    """A Finalize request that tells the test double what to do."""
    return FinalizeRequest(SECTOR, SectorPaths("/u", "/s", f"/cache/{action}"))


# -- loading --------------------------------------------------------------------------


def test_builtin_cpu_loads_without_entry_points() -> None:
    plugins = PluginSet.load(autoload=False)
    assert REFERENCE_BACKEND in plugins.names()
    (record,) = [r for r in plugins.records() if r.name == "cpu"]
    assert record.source == "built-in"
    assert record.available
    assert Phase.PRECOMMIT1 in record.phases
    assert Phase.COMMIT2 in record.phases


def test_entry_point_plugins_load_by_default() -> None:
    plugins = PluginSet.load(autoload=True)
    (record,) = [r for r in plugins.records() if r.name == "cpu"]
    assert record.source.startswith("entry point")


def test_autoload_can_be_disabled_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALAGENT_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = PluginSet.load()
    assert not plugins.autoload
    assert [r.source for r in plugins.records() if r.name == "cpu"] == ["built-in"]


def test_broken_plugins_are_kept_aside_with_their_error(make_plugin: MakePlugin) -> None:
    invalid = make_plugin("fake_invalid", """
        from sealagent import hookimpl

        @hookimpl
        def sealagent_precommit3(request):
            return None
    """)
    bad_args = make_plugin("fake_bad_args", """
        from sealagent import hookimpl

        @hookimpl
        def sealagent_precommit1(request, extra):
            return None
    """)
    plugins = PluginSet.load(autoload=False,
                             extra={"invalid": invalid, "bad-args": bad_args})
    assert "invalid" not in plugins.names()
    errors = plugins.errors()
    assert "sealagent_precommit3" in errors["invalid"]
    assert "extra" in errors["bad-args"]
    records = {r.name: r for r in plugins.records()}
    assert not records["invalid"].available
    assert records["invalid"].reason == errors["invalid"]
    selection = plugins.select(["invalid"])
    assert selection.skipped == {"invalid": errors["invalid"]}
    assert selection.backend_for(Phase.PRECOMMIT1) == "cpu"


def test_backend_info_failure_makes_a_plugin_unavailable(make_plugin: MakePlugin) -> None:
    module = make_plugin("fake_info_fails", FAKE_BACKEND.replace(
        "return BackendInfo(", "raise RuntimeError('probe crashed')\n    BackendInfo("))
    plugins = PluginSet.load(autoload=False, extra={"flaky": module})
    info = plugins.info("flaky")
    assert not info.available
    assert info.reason == "backend_info failed: RuntimeError: probe crashed"


def test_records_describe_phases_version_and_source(make_plugin: MakePlugin) -> None:
    plugins = PluginSet.load(autoload=False, extra={"fake": make_plugin("fake_records")})
    record = {r.name: r for r in plugins.records()}["fake"]
    assert record.to_json() == {
        "name": "fake", "version": "9.9", "source": "registered",
        "description": "test double", "available": True, "reason": None,
        "phases": ["Finalize"], "kernel_cache": None,
    }


# -- selection ------------------------------------------------------------------------


def test_unknown_plugin_name_lists_the_installed_ones() -> None:
    plugins = PluginSet.load(autoload=False)
    with pytest.raises(PluginNotFoundError, match="unknown plugin 'gpu-cuda'; installed: cpu"):
        plugins.select(["gpu-cuda"])


def test_each_phase_falls_back_to_cpu(make_plugin: MakePlugin) -> None:
    plugins = PluginSet.load(autoload=False, extra={"fake": make_plugin("fake_select")})
    selection = plugins.select(["fake"])
    assert selection.candidates(Phase.FINALIZE) == ("fake", "cpu")
    assert selection.candidates(Phase.PRECOMMIT1) == ("cpu",)
    assert selection.to_json()["phases"]["Finalize"] == "fake"
    assert selection.to_json()["phases"]["PreCommit1"] == "cpu"
    assert plugins.select([]).candidates(Phase.FINALIZE) == ("cpu",)


def test_choice_order_is_the_operator_order(make_plugin: MakePlugin) -> None:
    plugins = PluginSet.load(autoload=False, extra={"a": make_plugin("fake_a"),
                                                    "b": make_plugin("fake_b")})
    assert plugins.select(["b", "a"]).candidates(Phase.FINALIZE) == ("b", "a", "cpu")


def test_unavailable_plugin_is_skipped_with_its_reason(make_plugin: MakePlugin) -> None:
    module = make_plugin("fake_nogpu", available=False, reason="no CUDA GPU")
    selection = PluginSet.load(autoload=False, extra={"gpu": module}).select(["gpu"])
    assert selection.skipped == {"gpu": "no CUDA GPU"}
    assert selection.backend_for(Phase.FINALIZE) == "cpu"


def test_commit2_runs_on_cpu_by_default() -> None:
    selection = PluginSet.load(autoload=False).select()
    assert selection.to_json()["phases"]["Commit2"] == "cpu"
    assert selection.backend_for(Phase.COMMIT2) == "cpu"


def test_a_phase_only_an_unavailable_backend_has_says_why(make_plugin: MakePlugin) -> None:
    module = make_plugin("fake_commit2", COMMIT2_ONLY)
    # registered as "cpu" it replaces the reference, so nothing available has Commit2
    selection = PluginSet.load(autoload=False, extra={"cpu": module}).select(["cpu"])
    with pytest.raises(PluginUnavailableError,
                       match=r"no available backend implements Commit2 \(cpu: no CUDA GPU\)"):
        selection.backend_for(Phase.COMMIT2)


def test_select_backends_uses_the_process_plugins() -> None:
    assert select_backends().backend_for(Phase.ADD_PIECE) == "cpu"
    with pytest.raises(PluginNotFoundError):
        select_backends(["no-such-backend"])


# -- running in this process ------------------------------------------------------------


@pytest.fixture
def selection(make_plugin: MakePlugin) -> Selection:
    """``fake`` first, then ``cpu``."""
    return PluginSet.load(autoload=False,
                          extra={"fake": make_plugin("fake_run")}).select(["fake"])


def test_run_phase_names_the_backend(selection: Selection) -> None:
    run = run_phase(Phase.FINALIZE, finalize("ok"), selection)
    assert run.backend == "fake"
    assert run.result_as(FinalizeResult).removed == ("fake_run",)
    with pytest.raises(PhaseFailedError, match="not PreCommit2Result"):
        run.result_as(PreCommit2Result)


def test_declined_phase_goes_to_the_next_backend(selection: Selection, tmp_path: Path) -> None:
    cache = tmp_path / "decline"
    cache.mkdir()
    request = FinalizeRequest(SECTOR, SectorPaths(str(tmp_path / "u"), str(tmp_path / "s"),
                                                  str(cache)))
    run = run_phase("finalize", request, selection)
    assert run.backend == "cpu"
    assert run.result == FinalizeResult(())


def test_backend_errors_become_phase_failed(selection: Selection) -> None:
    with pytest.raises(PhaseFailedError,
                       match="Finalize failed on backend 'fake': ValueError: the disk is on fire"
                       ) as info:
        run_phase(Phase.FINALIZE, finalize("fail"), selection)
    assert isinstance(info.value.__cause__, ValueError)


def test_wrong_result_type_is_a_failure(selection: Selection) -> None:
    with pytest.raises(PhaseFailedError, match="returned str, not FinalizeResult"):
        run_phase(Phase.FINALIZE, finalize("wrong"), selection)


def test_request_must_match_the_phase(selection: Selection) -> None:
    request = PreCommit2Request(SECTOR, SectorPaths("/u", "/s", "/c"), "{}")
    with pytest.raises(InvalidInputError, match="Finalize needs a FinalizeRequest"):
        run_phase(Phase.FINALIZE, request, selection)


# -- running in a child process -----------------------------------------------------------


def test_phase_environment_sets_threads_and_gpus() -> None:
    env = phase_environment(threads=4, gpus=["0", "2"], env={"EXTRA": "1"})
    assert env["OMP_NUM_THREADS"] == env["RAYON_NUM_THREADS"] == "4"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert env["EXTRA"] == "1"
    assert phase_environment(gpus=[])["CUDA_VISIBLE_DEVICES"] == ""
    with pytest.raises(InvalidInputError):
        phase_environment(threads=0)


def test_child_gets_threads_and_gpus(selection: Selection, tmp_path: Path) -> None:
    process = run_phase_in_subprocess(Phase.FINALIZE, finalize("env"), selection,
                                      threads=3, gpus=["1"], workdir=tmp_path / "job")
    outcome = process.wait()
    assert outcome.backend == "fake"
    assert outcome.result == FinalizeResult(("3", "1"))
    assert outcome.peak_rss_bytes > 1 << 20
    assert outcome.wall_s >= 0 and outcome.cpu_s >= 0
    assert (tmp_path / "job" / "child.log").exists()


def test_child_progress_reaches_the_parent_while_it_runs(selection: Selection,
                                                        tmp_path: Path) -> None:
    go = tmp_path / "go"
    process = run_phase_in_subprocess(Phase.FINALIZE, finalize("progress"), selection,
                                      env={"GO_FILE": str(go)})
    seen: list[ProgressEvent] = []
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        seen = process.progress()
        time.sleep(0.02)
    assert not process.done()
    assert [(e.stage, e.done, e.total) for e in seen] == [("work", 1, 2)]
    go.touch()
    outcome = process.wait()
    assert outcome.backend == "fake"
    rest = process.progress()
    assert [(e.stage, e.done, e.total, e.complete) for e in rest] == [("work", 2, 2, True)]
    assert rest[0].elapsed_s >= seen[0].elapsed_s
    assert process.progress() == []


def test_a_child_that_reports_nothing_has_no_progress(selection: Selection) -> None:
    process = run_phase_in_subprocess(Phase.FINALIZE, finalize("ok"), selection)
    assert process.wait().backend == "fake"
    assert process.progress() == []


def test_child_peak_rss_is_its_own_not_the_parents(selection: Selection) -> None:
    ballast = bytearray(b"\x01") * (256 << 20)  # resident pages in this process
    parent_peak = peak_rss_bytes()
    outcome = run_phase_in_subprocess(Phase.FINALIZE, finalize("ok"), selection).wait()
    assert len(ballast) == 256 << 20
    assert parent_peak > 256 << 20
    assert 1 << 20 < outcome.peak_rss_bytes < parent_peak - (128 << 20)


def test_child_error_comes_back_with_its_message(selection: Selection) -> None:
    process = run_phase_in_subprocess(Phase.FINALIZE, finalize("fail"), selection)
    with pytest.raises(PhaseFailedError,
                       match="Finalize failed on backend 'fake': ValueError: the disk is on fire"):
        process.wait()
    assert not process.job.workdir.exists()


def test_child_that_dies_is_a_failure(selection: Selection) -> None:
    process = run_phase_in_subprocess(Phase.FINALIZE, finalize("crash"), selection)
    with pytest.raises(PhaseFailedError, match="exited with status 3 without a result"):
        process.wait()


def test_killed_child_is_cancelled(selection: Selection) -> None:
    with run_phase_in_subprocess(Phase.FINALIZE, finalize("sleep"), selection) as process:
        process.kill()
        with pytest.raises(PhaseCancelledError, match="Finalize was cancelled"):
            process.wait()
        assert process.done()


# -- wrapper plugins --------------------------------------------------------------------


@pytest.fixture
def traced(make_plugin: MakePlugin, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Selection, Path]:
    """``fake`` then ``cpu``, with the ``tracer`` wrapper loaded; and the trace file."""
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("TRACE_FILE", str(trace))
    plugins = PluginSet.load(autoload=False, extra={"fake": make_plugin("fake_traced"),
                                                    "tracer": make_plugin("tracer", TRACER)})
    return plugins.select(["fake"]), trace


def test_a_wrapper_plugin_sees_phases_but_runs_none(traced: tuple[Selection, Path]) -> None:
    selection, trace = traced
    plugins = selection.plugins
    assert plugins.wrappers(Phase.FINALIZE) == ["tracer"]
    assert not plugins.implements("tracer", Phase.FINALIZE)
    assert selection.candidates(Phase.FINALIZE) == ("fake", "cpu")
    run = run_phase(Phase.FINALIZE, finalize("ok"), selection)
    assert run.backend == "fake"
    assert trace.read_text() == "finalize /cache/ok -> ('fake_traced',)\n"


def test_a_wrapper_plugin_sees_phases_in_a_child(traced: tuple[Selection, Path]) -> None:
    selection, trace = traced
    outcome = run_phase_in_subprocess(Phase.FINALIZE, finalize("ok"), selection).wait()
    assert outcome.backend == "fake"
    assert trace.read_text() == "finalize /cache/ok -> ('fake_traced',)\n"


def test_plugin_targets_import_modules_and_attributes(tmp_path: Path) -> None:
    import os.path

    import sealagent_cpu

    assert PluginTarget("sealagent_cpu").load() is sealagent_cpu
    assert PluginTarget("os.path : join [extra]").load() is os.path.join
    (tmp_path / "target_from_root.py").write_text("VALUE = 42\n")
    try:
        module = PluginTarget("target_from_root", str(tmp_path)).load()
        assert vars(module)["VALUE"] == 42
    finally:
        sys.modules.pop("target_from_root", None)
        sys.path.remove(str(tmp_path))


def test_object_plugins_cannot_run_in_a_child() -> None:
    from sealagent import hookimpl

    class InMemory:
        @hookimpl
        def sealagent_finalize(self, request: FinalizeRequest) -> FinalizeResult:
            return FinalizeResult(())

    selection = PluginSet.load(autoload=False, extra={"mem": InMemory()}).select(["mem"])
    assert run_phase(Phase.FINALIZE, finalize("x"), selection).backend == "mem"
    with pytest.raises(PluginError, match="registered as an object"):
        run_phase_in_subprocess(Phase.FINALIZE, finalize("x"), selection)


# -- the command ------------------------------------------------------------------------


def test_plugins_command_lists_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["cpu"]["available"] is True
    assert "PreCommit1" in records["cpu"]["phases"]
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "AVAILABLE", "PHASES", "SOURCE",
                                "DESCRIPTION"]
    assert any(line.startswith("cpu ") and " PC1 " in line for line in lines[1:])
