"""``stream-ids worker`` whose Faust recovery loses the first delivery of each changelog record.

Fault injection for ``test_recovery_stall.py``: Faust's conductor is patched so that, while the
recovery restores the worker's *active* changelog partitions, every changelog record is dropped
the first time it arrives. Faust's consumer still counts it as read, so, as in the CI run of
docs/reliability.md (fix 5), nothing ever delivers it again by itself. A second delivery (after
the worker's recovery watch seeks the partition back) passes. Run as
``python faulty_worker.py worker --loglevel info``.
"""

from __future__ import annotations

import sys
from typing import Any

from faust.transport import conductor

_compile_handler = conductor.Conductor._compile_message_handler
dropped: set[tuple[Any, int]] = set()


def _dropping_handler(self: Any) -> Any:
    handler = _compile_handler(self)

    async def on_message(message: Any) -> Any:
        recovery = self.app.tables.recovery
        if (
            message.topic.endswith("-changelog")
            and recovery.in_recovery
            and message.tp in recovery.active_tps
            and (message.tp, message.offset) not in dropped
        ):
            dropped.add((message.tp, message.offset))
            if len(dropped) == 1:
                print("faulty_worker: dropping first deliveries of changelog records", flush=True)
            return None
        return await handler(message)

    return on_message


conductor.Conductor._compile_message_handler = _dropping_handler  # type: ignore[method-assign]

if __name__ == "__main__":
    from stream_ids.cli import main  # the harness puts the repository on PYTHONPATH

    sys.exit(main(sys.argv[1:]))
