"""Making file-system changes durable.

A file written, fsynced and renamed into place survives a crash only once the directory
holding the new name is fsynced too; :func:`fsync_directory` does that last step.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make a rename, creation or removal in ``directory`` durable (fsync the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
