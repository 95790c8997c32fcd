"""``example``: a minimal third-party sealagent backend.

It implements one phase, PreCommit2, by delegating to the ``cpu`` reference backend, and
declines sectors larger than 512 MiB (the next chosen backend, or ``cpu``, runs those).
A real backend would put its own implementation (a GPU tree builder, say) in
:func:`sealagent_precommit2` and keep the same inputs, outputs and files.
"""

from __future__ import annotations

import sealagent_cpu
from sealagent import hookimpl
from sealagent.phases import BackendInfo, PreCommit2Request, PreCommit2Result

__version__ = "0.1.0"

MAX_SECTOR_SIZE = 512 << 20


@hookimpl
def sealagent_backend_info() -> BackendInfo:
    """Describe the backend; it needs nothing special, so it is always available."""
    return BackendInfo(name="example", version=__version__,
                       description="example: PreCommit2 for sectors up to 512 MiB")


@hookimpl
def sealagent_precommit2(request: PreCommit2Request) -> PreCommit2Result | None:
    """Build the trees and the replica, or decline sectors over 512 MiB."""
    if request.sector.registered_proof.sector_size > MAX_SECTOR_SIZE:
        return None
    return sealagent_cpu.sealagent_precommit2(request)
