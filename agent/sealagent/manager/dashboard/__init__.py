"""The manager's web dashboard: cluster, sectors, jobs, storage and scheduler pages.

Served by the manager at ``/dashboard`` on its API address (:mod:`.app`); who may see and
do what is in :mod:`.guard`, what each page shows in :mod:`.pages`, the charts in
:mod:`.charts`.
"""

from sealagent.manager.dashboard.app import PREFIX, Dashboard

__all__ = ["PREFIX", "Dashboard"]
