"""The one exception tree of sealagent.

Every error that sealagent raises on purpose derives from :class:`SealAgentError`, so a
caller can catch everything sealagent-specific with one ``except``.  The subclasses say
which part failed and, where it matters, also derive from the matching builtin
(``ValueError``, ``OSError``) so that generic code keeps working.

::

    SealAgentError
    ├── ConfigError                      bad configuration or command-line usage
    ├── ProofsError                      the PoRep math refused its input
    │   ├── UnknownProofError            not a registered seal proof (ValueError)
    │   ├── InvalidInputError            malformed argument: size, length, range (ValueError)
    │   │   └── PieceSizeError           piece not 127·2^k bytes, or overflowing the sector
    │   ├── CorruptDataError             a truncated or corrupt file (cache, layer, sealed)
    │   ├── CommitmentMismatchError      a commitment does not match the data (e.g. comm_d)
    │   └── VerificationError            a proof was checked and rejected
    ├── PluginError                      plugin loading or selection
    │   ├── PluginNotFoundError          no plugin / implementation by that name
    │   └── PluginUnavailableError       installed but cannot run here (e.g. no GPU)
    ├── PhaseError                       a sealing phase run by a backend failed
    │   ├── PhaseFailedError             the phase raised or its child process died
    │   └── PhaseCancelledError          the phase was aborted
    ├── StorageError                     storage paths and sector files (OSError)
    │   ├── NoSpaceError                 not enough free space for a reservation
    │   └── SectorFileNotFoundError      no path holds the requested sector file
    ├── SchedulerError                   the scheduler refused a request
    ├── ManagerError                     the sealing manager refused a request (sector, state)
    │   └── DatabaseError                the manager's database failed or is too new
    └── RPCError                         the JSON-RPC layer
        ├── RPCTransportError            the peer could not be reached / timed out
        ├── RPCRemoteError               the peer answered with a JSON-RPC error object
        ├── AuthError                    a missing, invalid or insufficient token
        └── SessionError                 an unknown or expired session (reconnect)
"""

from __future__ import annotations

from typing import Any


class SealAgentError(Exception):
    """Base class of every error sealagent raises on purpose."""


class ConfigError(SealAgentError, ValueError):
    """A configuration file, environment variable or command-line flag is invalid."""


class ProofsError(SealAgentError):
    """The proofs library refused its input or its data."""


class UnknownProofError(ProofsError, ValueError):
    """The registered seal proof (enum, name or id) is not known."""


class InvalidInputError(ProofsError, ValueError):
    """An argument has the wrong size, length or range."""


class PieceSizeError(InvalidInputError):
    """A piece is not ``127·2^k`` unpadded bytes, or the pieces overflow the sector."""


class CorruptDataError(ProofsError):
    """A file (parent cache, layer, tree, sealed replica) is truncated or corrupt."""


class CommitmentMismatchError(ProofsError):
    """A commitment does not match the data it should commit to."""


class VerificationError(ProofsError):
    """A proof was checked and rejected."""


class PluginError(SealAgentError):
    """A plugin could not be loaded or selected."""


class PluginNotFoundError(PluginError, LookupError):
    """No plugin, or no implementation of a phase, has the requested name."""


class PluginUnavailableError(PluginError):
    """A plugin is installed but cannot run on this host (e.g. it needs a GPU)."""


class PhaseError(SealAgentError):
    """A sealing phase failed while a backend ran it."""


class PhaseFailedError(PhaseError):
    """The phase raised an error or its child process died."""


class PhaseCancelledError(PhaseError):
    """The phase was aborted before it finished."""


class StorageError(SealAgentError, OSError):
    """A storage path or sector file could not be used."""


class NoSpaceError(StorageError):
    """Not enough free space for a reservation or a write."""


class LinkRefusedError(StorageError):
    """A symbolic link stands where a sector file or its type directory belongs."""


class SectorFileNotFoundError(StorageError, FileNotFoundError):
    """No known storage path holds the requested sector file."""


class SchedulerError(SealAgentError):
    """The scheduler refused a request (unknown task, bad state)."""


class ManagerError(SealAgentError):
    """The sealing manager refused a request: unknown sector, wrong state, bad input."""


class DatabaseError(ManagerError):
    """The manager's database could not be opened, migrated or written."""


class RPCError(SealAgentError):
    """The JSON-RPC layer failed."""


class RPCTransportError(RPCError):
    """The peer could not be reached, or did not answer in time."""


class RPCRemoteError(RPCError):
    """The peer answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class AuthError(RPCError):
    """A token is missing, invalid, or lacks the permission a method needs."""


class SessionError(RPCError):
    """The session is unknown to the manager (e.g. it restarted); the caller reconnects."""

