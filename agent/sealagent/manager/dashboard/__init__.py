"""The manager's web dashboard: cluster, sectors, jobs, storage and scheduler pages.

Served by the manager at ``/dashboard`` on its API address (:mod:`.app`); who may see and
do what is in :mod:`.guard`, what each page shows in :mod:`.pages`, the charts in
:mod:`.charts`.
"""

from sealagent.manager.dashboard.app import PREFIX, Dashboard

__all__ = ["PREFIX", "Dashboard", "dashboard_url", "login_hint"]


def dashboard_url(manager_url: str) -> str:
    """The dashboard's address on a manager listening at ``manager_url``."""
    return f"{manager_url.rstrip('/')}{PREFIX}/"


def login_hint(manager_url: str) -> str:
    """What ``miner run`` prints: where the dashboard is and how to log in."""
    return (f"dashboard at {dashboard_url(manager_url)}: log in with a token from "
            "`sealagent auth create-token --perm read` (--perm admin to abort tasks)")
