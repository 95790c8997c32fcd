"""The agent's side of Unseal: the backend's output becomes the sector's unsealed file.

A backend's Unseal writes the original (unpadded) bytes to the request's ``output``
(filecoin-proofs' ``unseal_range``).  The agent points ``output`` at a scratch file, then
Fr32-pads those bytes into the sector's unsealed file, the layout AddPiece gives it, so
the copy is indexed as ``unsealed`` and read back like any other (``sectors check``,
``pieces get``).  The padded file is written aside and renamed into place, so a crash
never leaves half an unsealed file where one is expected.
"""

from __future__ import annotations

import os
from pathlib import Path

from sealagent.errors import StorageError
from sealagent.proofs.fr32 import iter_padded
from sealagent.storage.layout import fetch_temp_path


def write_unsealed(unpadded: Path, unsealed: Path, sector_size: int) -> None:
    """Fr32-pad the bytes of ``unpadded`` into ``unsealed`` (``sector_size`` bytes,
    zero-filled past the data), then delete ``unpadded``.

    :raises StorageError: ``unpadded`` holds more than a sector's bytes.
    """
    tmp = fetch_temp_path(unsealed)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(unpadded, "rb") as source, open(tmp, "wb") as out:
        for chunk in iter_padded(source):
            written += len(chunk)
            if written > sector_size:
                tmp.unlink(missing_ok=True)
                raise StorageError(f"{unpadded} holds more than a {sector_size}-byte "
                                   "sector's data")
            out.write(chunk)
        out.truncate(sector_size)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, unsealed)
    unpadded.unlink()
