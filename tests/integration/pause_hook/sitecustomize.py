"""Test hook, loaded by Python at start-up when this directory is on ``PYTHONPATH``.

With ``SEALAGENT_TEST_PC1_PAUSE_AFTER_LAYER=N`` set, a PreCommit1 stops right after it
completed label layer ``N``: it writes its pid to ``$SEALAGENT_TEST_PC1_PAUSED_FILE`` and
sleeps, so a test can kill the agent at a known point of the labeling.

With ``SEALAGENT_TEST_PAUSE_AFTER_MOVE=FILE`` set, an agent that moved a cache directory
here (fetched it and had the holder delete its copy) writes its pid to FILE and stops
there, before it runs or reports the task.
"""

from __future__ import annotations

import os

_LAYER = os.environ.get("SEALAGENT_TEST_PC1_PAUSE_AFTER_LAYER")

if _LAYER:
    import time
    from pathlib import Path
    from typing import Any

    from sealagent.proofs import labels

    _write_layer = labels._write_layer

    def _write_then_pause(path: Path, replica_id: bytes, layer: int, *args: Any) -> None:
        _write_layer(path, replica_id, layer, *args)
        if layer == int(str(_LAYER)):
            Path(os.environ["SEALAGENT_TEST_PC1_PAUSED_FILE"]).write_text(str(os.getpid()))
            time.sleep(3600)

    labels._write_layer = _write_then_pause  # type: ignore[assignment]

_MOVED = os.environ.get("SEALAGENT_TEST_PAUSE_AFTER_MOVE")

if _MOVED:
    from typing import Any

    import trio

    from sealagent.worker import prepare

    _drop_source = prepare.Preparer._drop_source
    _moved_file: str = _MOVED

    async def _drop_then_pause(self: Any, *args: Any, **options: Any) -> Any:
        """Complete the move of a cache directory, then stop before anything else."""
        dropped = await _drop_source(self, *args, **options)
        if args[-1].dir_name == "cache":
            await trio.Path(_moved_file).write_text(str(os.getpid()))
            await trio.sleep_forever()
        return dropped

    prepare.Preparer._drop_source = _drop_then_pause  # type: ignore[method-assign]
