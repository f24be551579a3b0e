"""Stage timing probe for a benchmark worker (never loaded by the product itself).

Put this folder first on the worker's ``PYTHONPATH`` and Python imports it at start-up::

    python bench/run.py ... --env PYTHONPATH=bench/stage_probe:. \
        STREAM_IDS_PROBE_OUT=/tmp/probe.json
    python bench/stage_probe_summary.py /tmp/probe.json

It wraps ``BatchScorer``'s stages and records (stage, start, end, flows) for each call: the
scoring thread's ``compute``, and on the event loop ``process`` (a batch), ``validate``,
``start_scoring``, ``publish`` and ``write_state``; the list is written as JSON when the
worker exits (``STREAM_IDS_PROBE_OUT``, default ``/tmp/stream-ids-probe-<pid>.json``).
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

import orjson

from stream_ids.agents import scoring

RECORDS: list[tuple[str, float, float, int]] = []
_clock = time.perf_counter


def _timed(name: str, size: Any, asynchronous: bool) -> None:
    original = getattr(scoring.BatchScorer, name)

    if asynchronous:

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = _clock()
            result = await original(self, *args, **kwargs)
            RECORDS.append((name, started, _clock(), size(args, result)))
            return result

    else:

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = _clock()
            result = original(self, *args, **kwargs)
            RECORDS.append((name, started, _clock(), size(args, result)))
            return result

    setattr(scoring.BatchScorer, name, wrapper)


_timed("compute", lambda args, _result: len(args[0].keys), asynchronous=False)
_timed("process", lambda args, _result: len(args[0]), asynchronous=True)
_timed("validate", lambda _args, result: len(result.flows), asynchronous=True)
_timed("start_scoring", lambda args, _result: len(args[0].keys), asynchronous=False)
_timed("publish", lambda args, _result: len(args[1]), asynchronous=True)
_timed("write_state", lambda _args, _result: 0, asynchronous=False)


@atexit.register
def _write() -> None:
    path = os.environ.get("STREAM_IDS_PROBE_OUT", f"/tmp/stream-ids-probe-{os.getpid()}.json")  # noqa: S108  (a benchmark's scratch file)
    with open(path, "wb") as out:
        out.write(orjson.dumps(RECORDS))
