"""``stream-ids dashboard``: a live page over the ``verdicts``, ``alerts`` and ``stats`` topics."""

from stream_ids.dashboard.server import Dashboard
from stream_ids.dashboard.state import DashboardState

__all__ = ["Dashboard", "DashboardState"]
