"""A directory of small JSON records that survive a crash: one file per key.

Each record is written to a temporary file, fsynced, renamed over the old one, and the
directory is fsynced, so after a power cut a record is either the old or the new version,
never a torn one.  The agent keeps its outbox and its task journal this way; both stay
small (one record per task in flight), so a file per record is simpler than a database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, unquote

import structlog

from sealagent.durable import fsync_directory
from sealagent.errors import StorageError
from sealagent.storage.paths import write_json_atomic

_SUFFIX: Final = ".json"
_log = structlog.get_logger(__name__)


class JsonDir:
    """Durable ``key → JSON value`` records in ``directory`` (created if missing)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.directory}: {exc}") from None

    def _file(self, key: str) -> Path:
        if not key:
            raise StorageError("a record key cannot be empty")
        return self.directory / (quote(key, safe="") + _SUFFIX)

    def put(self, key: str, value: Any) -> None:
        """Write ``value`` under ``key`` durably (replacing any previous value)."""
        write_json_atomic(self._file(key), value)

    def get(self, key: str) -> Any:
        """The value under ``key``, or None when there is none."""
        try:
            return json.loads(self._file(key).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read record {key!r} in {self.directory}: {exc}") from None

    def remove(self, key: str) -> bool:
        """Delete the record under ``key``; False if there was none."""
        try:
            self._file(key).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot remove record {key!r}: {exc}") from None
        fsync_directory(self.directory)
        return True

    def items(self) -> list[tuple[str, Any]]:
        """Every record as ``(key, value)``, sorted by key.

        A record that cannot be parsed is renamed to ``<name>.bad`` (kept for the
        operator) and skipped, so one damaged file never stops the agent.
        """
        out = []
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            if path.name.startswith("."):
                continue
            try:
                value = json.loads(path.read_text())
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                _log.warning("unreadable record set aside", file=str(path), error=str(exc))
                path.replace(path.with_name(path.name + ".bad"))
                continue
            out.append((unquote(path.name.removesuffix(_SUFFIX)), value))
        return out
