"""What validating a schema-3 host micro-batch costs per flow, JSON feature rows vs binary block.

    python bench/parse_cost.py [--flows 60000] [--host-batch 32]

Renders real shared rows as ``replay --host-batch`` does (both feature forms), then times, per
flow: ``parse_columns`` of each form, and the pieces of the JSON form (``orjson.loads`` with and
without the feature rows, numpy's list conversion) against base64 decoding of the block with
pybase64 and with the standard library. Collection is frozen first, as in the worker.
"""

from __future__ import annotations

import argparse
import base64
import gc
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pybase64

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

from producers.replay import FLUSH_EVERY, load_replay_frame
from stream_ids.datasets import improved_csvs
from stream_ids.wire import BINARY_FEATURES, parse_columns


def per_flow(function: Any, flows: int, repeat: int = 3) -> float:
    """Best of ``repeat`` runs, µs per flow."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / flows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=60_000)
    parser.add_argument("--host-batch", type=int, default=32)
    args = parser.parse_args()
    frame = load_replay_frame(improved_csvs())
    stamp = b"1795874000.5"
    forms = {}
    for binary in (False, True):
        rendered = bench.Rendered(
            frame, args.flows, args.host_batch, FLUSH_EVERY, run="p", binary=binary
        )
        forms[binary] = [v.replace(bench.PLACEHOLDER_BYTES, stamp) for v in rendered.values]
    keys = rendered.keys
    flows = sum(rendered.counts)
    gc.collect()
    gc.freeze()
    objects = [orjson.loads(value) for value in forms[False]]
    without = [orjson.dumps({k: v for k, v in o.items() if k != "features"}) for o in objects]
    blocks = [orjson.loads(value)[BINARY_FEATURES] for value in forms[True]]
    rows = [
        (
            "parse_columns, JSON rows",
            lambda: [parse_columns(v, k) for v, k in zip(forms[False], keys, strict=True)],
        ),
        (
            "parse_columns, binary block",
            lambda: [parse_columns(v, k) for v, k in zip(forms[True], keys, strict=True)],
        ),
        ("orjson.loads, JSON rows", lambda: [orjson.loads(v) for v in forms[False]]),
        ("orjson.loads, without the rows", lambda: [orjson.loads(v) for v in without]),
        ("np.array of the rows", lambda: [np.array(o["features"]) for o in objects]),
        (
            "pybase64 decode + frombuffer",
            lambda: [np.frombuffer(pybase64.b64decode(b), "<f8") for b in blocks],
        ),
        (
            "base64 (stdlib) decode + frombuffer",
            lambda: [np.frombuffer(base64.b64decode(b), "<f8") for b in blocks],
        ),
    ]
    print(
        f"{flows} flows in {len(keys)} messages; bytes per flow: JSON rows "
        f"{sum(map(len, forms[False])) / flows:.0f}, "
        f"binary block {sum(map(len, forms[True])) / flows:.0f}"
    )
    for label, function in rows:
        print(f"{label:40s} {per_flow(function, flows):6.2f} µs/flow")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
